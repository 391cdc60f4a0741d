// What a task wrote to stderr, kept for its logs: the last bytes only (the end of a log says why it
// ended), with the total so a reader can tell the start was cut. Results carry it back to the
// submitter (TaskResult.stderr), failed tasks included: an executor attaches it to its error.

/** Bytes of a task's stderr kept (its tail); the submitter caps what it stores to the same. */
export const TASK_LOG_TAIL_BYTES = 64 * 1024

/** A task's captured stderr: the kept tail and how many bytes it wrote in all. */
export interface TaskLog { stderr: Uint8Array, stderrBytes: number }

/** Keeps the last `cap` bytes pushed into it, in a ring, whatever the chunk sizes. */
export class TailBuffer {
  private readonly ring: Uint8Array
  private end = 0
  /** Bytes pushed in all. */
  total = 0

  constructor (readonly cap = TASK_LOG_TAIL_BYTES) {
    this.ring = new Uint8Array(Math.max(0, cap))
  }

  push (chunk: Uint8Array): void {
    this.total += chunk.length
    const cap = this.ring.length
    if (cap === 0) return
    const part = chunk.length > cap ? chunk.subarray(chunk.length - cap) : chunk
    const first = Math.min(part.length, cap - this.end)
    this.ring.set(part.subarray(0, first), this.end)
    this.ring.set(part.subarray(first), 0)
    this.end = (this.end + part.length) % cap
  }

  /** The kept bytes, oldest first. */
  bytes (): Uint8Array {
    const cap = this.ring.length
    if (this.total <= cap) return this.ring.slice(0, this.total)
    const out = new Uint8Array(cap)
    out.set(this.ring.subarray(this.end), 0)
    out.set(this.ring.subarray(0, this.end), cap - this.end)
    return out
  }

  text (): string { return new TextDecoder().decode(this.bytes()) }

  log (): TaskLog { return { stderr: this.bytes(), stderrBytes: this.total } }
}

const logs = new WeakMap<object, TaskLog>()

/** Marks a task's error with what the task wrote before it failed; returns the error. */
export function withTaskLog<E extends object> (err: E, log: TaskLog | undefined): E {
  if (log !== undefined && log.stderrBytes > 0 && typeof err === 'object' && err !== null) logs.set(err, log)
  return err
}

/** The stderr a failed task left (withTaskLog), if its executor kept any. */
export function taskLogOf (err: unknown): TaskLog | undefined {
  return typeof err === 'object' && err !== null ? logs.get(err) : undefined
}

/** The last `n` characters of a log as one trimmed line of text, for an error message. */
export function logSnippet (log: TaskLog | undefined, n = 500): string {
  if (log === undefined) return ''
  const text = new TextDecoder().decode(log.stderr).trim()
  return text.length > n ? text.slice(-n) : text
}
