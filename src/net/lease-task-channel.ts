// Submitter side of a lease's own stream (/dbc/task/1.0.0; the protocol and the provider's side:
// task-lease-stream.ts): reads the provider's heartbeats and results, sends tasks and cancels.
import { FramedStream } from './framed.js'
import { CoalescingWriter } from './lease-writer.js'
import { decodeMessage } from '../wire/decode.js'
import { dbc } from '../wire/gen/wire.js'
import { DbcError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import { resultCode } from '../core/scheduler/ports.js'
import { LEASE_STREAM_CANCEL_GRACE_MS, LEASE_STREAM_CLOSE_GRACE_MS, LEASE_STREAM_IDLE_FRAME, LEASE_STREAM_MAX_CANCELLED, LEASE_STREAM_MAX_TASK_BYTES, LEASE_STREAM_MAX_UNKNOWN_RESULTS } from './task-lease-stream.js'
import { bundleFrame, taskFrame, taskFrameBytes } from './task-frames.js'

const TaskMessage = dbc.task.v1.TaskMessage

/** How a copy goes out: `bundle` > 1 lets it leave in one TaskBundle frame with the lease's other copies of this turn. */
export interface ChannelRunOptions {
  signal?: AbortSignal
  /** The most tasks of a TaskBundle frame this copy may share (the lease's offer said so; absent or 1: a Task frame of its own). */
  bundle?: number
  /** The copy was handed to the stream's writer in a frame of n tasks. */
  onSent?: (tasksInFrame: number) => void
}

/** A copy waiting for the end of the turn to leave in a bundle (or alone, when no other came). */
interface Batched { id: string, task: dbc.task.v1.ITask, bytes: Uint8Array, bundle: number, onSent?: (n: number) => void, dropped: boolean }

/**
 * Submitter side of one lease stream: reads heartbeats and results until the stream ends, sends
 * tasks and cancels. A copy in flight when the stream ends is lost (a plain Error, not a typed
 * failure: the runner counts it as unreachable and sends it again elsewhere).
 */
export class LeaseTaskChannel {
  private readonly pending = new Map<string, (r: dbc.task.v1.ITaskResult | Error) => void>()
  /** Copies cancelled lately (id → when): their result may still come, and is dropped uncounted. */
  private readonly cancelled = new Map<string, number>()
  private ended: Error | undefined
  /** Results for no copy in flight nor cancelled lately (a provider sending them is ended at LEASE_STREAM_MAX_UNKNOWN_RESULTS). */
  unknownResults = 0
  /** Tasks and cancels written in one turn leave as one stream write. */
  readonly writer: CoalescingWriter
  /** Copies of this turn that may share a TaskBundle frame (sent at the turn's end). */
  private batch: Batched[] = []
  /** Frames of several tasks written, and the tasks in them (tests, benches). */
  bundleFrames = 0
  bundledTasks = 0

  constructor (readonly framed: FramedStream, private readonly onHeartbeat: () => void) {
    this.writer = new CoalescingWriter(framed)
  }

  get open (): boolean { return this.ended === undefined }

  /**
   * The largest frame the provider may send now: a heartbeat's while no copy is in flight or
   * cancelled lately, else a result up to `resultCap` (the task protocol's frame limit).
   */
  frameLimit (resultCap: number): number {
    this.expireCancels()
    return this.pending.size > 0 || this.cancelled.size > 0 ? resultCap : LEASE_STREAM_IDLE_FRAME
  }

  private expireCancels (now = Date.now()): void {
    for (const [id, at] of this.cancelled) {
      if (at + LEASE_STREAM_CANCEL_GRACE_MS > now && this.cancelled.size <= LEASE_STREAM_MAX_CANCELLED) break
      this.cancelled.delete(id)
    }
  }

  /** Reads the provider's frames until the stream ends; then every copy in flight is lost. */
  async pump (): Promise<void> {
    let why = new Error('the lease stream ended')
    try {
      for (;;) {
        const f = await this.framed.read()
        if (f === undefined) break
        const m = decodeMessage(TaskMessage, f)
        if (!m.ok) { why = new Error(`the provider sent an unreadable frame on the lease stream: ${m.error.message}`); this.framed.abort(why); break }
        if (m.value.heartbeat != null) { this.onHeartbeat(); continue }
        const r = m.value.result
        if (r != null) {
          const id = toHex(r.taskId ?? new Uint8Array())
          const waiting = this.pending.get(id)
          if (waiting !== undefined) { waiting(r); continue }
          // a result for a copy cancelled meanwhile is dropped; one for no copy at all is counted
          if (this.cancelled.delete(id)) continue
          if (++this.unknownResults < LEASE_STREAM_MAX_UNKNOWN_RESULTS) continue
          why = new Error(`the provider sent ${this.unknownResults} results for tasks not in flight on the lease stream`)
          this.framed.abort(why)
          break
        }
        why = new Error('the provider ended the lease stream with a refusal or an unexpected message')
        this.framed.abort(why)
        break
      }
    } catch (err) {
      why = new Error(`the lease stream broke: ${(err as Error).message}`)
      // a frame past the limit (or any read error) leaves the stream open underneath: end it
      this.framed.abort(why)
    }
    this.ended = why
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const w of waiting) w(why)
  }

  /**
   * Sends one task and waits for its result. `bytes`: the Task encoded (dbc.task.v1.Task, encoded
   * once: a bundle frame wraps the same bytes). With `opts.bundle` > 1 the copy waits for the turn's
   * end: the copies of one turn leave in TaskBundle frames of at most their `bundle` tasks and
   * LEASE_STREAM_MAX_TASK_BYTES each; a copy alone in its turn leaves as a plain Task frame.
   */
  async run (task: dbc.task.v1.ITask, bytes: Uint8Array, opts: ChannelRunOptions = {}): Promise<dbc.task.v1.ITaskResult> {
    const signal = opts.signal
    if (this.ended !== undefined) throw new DbcError('LEASE_LOST', `the lease stream is closed (${this.ended.message}); the task runs under another lease`)
    signal?.throwIfAborted()
    const id = toHex(task.taskId ?? new Uint8Array())
    if (this.pending.has(id)) throw new DbcError('TASK_DUPLICATE', 'this copy is already in flight on the lease')
    const bundle = Math.floor(opts.bundle ?? 1)
    const batched: Batched | undefined = bundle > 1 ? { id, task, bytes, bundle, onSent: opts.onSent, dropped: false } : undefined
    return await new Promise<dbc.task.v1.ITaskResult>((resolve, reject) => {
      const onAbort = (): void => {
        if (this.pending.delete(id)) {
          if (batched !== undefined && !batched.dropped && this.batch.includes(batched)) {
            // still waiting for the turn's end: it never goes out, nothing to cancel
            batched.dropped = true
          } else {
            this.cancelled.set(id, Date.now())
            this.expireCancels()
            if (this.pending.size === 0 && this.framed.midFrame) {
              // a frame is arriving and no copy is in flight: it is a cancelled copy's result (dropped
              // unread anyway) or nothing we asked for; the stream ends, releasing what it holds
              const why = new Error('a copy was cancelled while a frame was arriving and no other copy is in flight on the lease')
              this.framed.fail(why)
            } else {
              void this.writer.write(TaskMessage.encode({ cancelTaskId: task.taskId }).finish()).catch(() => {})
            }
          }
        }
        reject(signal?.reason ?? new Error('aborted'))
      }
      this.pending.set(id, (r) => {
        this.pending.delete(id)
        signal?.removeEventListener('abort', onAbort)
        if (r instanceof Error) reject(r)
        else resolve(r)
      })
      signal?.addEventListener('abort', onAbort, { once: true })
      if (batched !== undefined) {
        this.batch.push(batched)
        if (this.batch.length === 1) setImmediate(this.sendBatch)
        return
      }
      opts.onSent?.(1)
      this.writer.write(taskFrame(bytes), signal !== undefined ? { signal } : {}).catch((err: Error) => { this.notSent([id], err) })
    })
  }

  /** Copies not written: they never reached the provider (lost, unless aborted by the caller meanwhile). */
  private notSent (ids: readonly string[], err: Error): void {
    for (const id of ids) this.pending.get(id)?.(new Error(`the task did not go out on the lease stream: ${err.message}`))
  }

  /** The turn ended: its batched copies leave in TaskBundle frames (a lone one as a Task frame), then the writer sends them. */
  private readonly sendBatch = (): void => {
    const all = this.batch
    this.batch = []
    const live = all.filter(b => !b.dropped && this.pending.has(b.id))
    if (this.ended !== undefined) { this.notSent(live.map(b => b.id), this.ended); return }
    let chunk: Batched[] = []
    let chunkBytes = 0
    let most = Infinity
    const send = (): void => {
      if (chunk.length === 0) return
      const ids = chunk.map(b => b.id)
      const frame = chunk.length === 1 ? taskFrame(chunk[0].bytes) : bundleFrame(chunk.map(b => b.bytes))
      if (chunk.length > 1) { this.bundleFrames++; this.bundledTasks += chunk.length }
      for (const b of chunk) b.onSent?.(chunk.length)
      this.writer.write(frame).catch((err: Error) => { this.notSent(ids, err) })
      chunk = []; chunkBytes = 0; most = Infinity
    }
    for (const b of live) {
      // (a copy's own frame already fits the bound: tasks.ts sends larger ones on streams of their own)
      const add = taskFrameBytes(b.bytes.length)
      const cap = Math.min(most, b.bundle)
      if (chunk.length > 0 && (chunk.length + 1 > cap || taskFrameBytes(chunkBytes + add) > LEASE_STREAM_MAX_TASK_BYTES)) send()
      chunk.push(b)
      chunkBytes += add
      most = Math.min(most, b.bundle)
    }
    send()
    // the frames of this turn go now, not a turn later
    this.writer.flush()
  }

  /**
   * Closes the lease: sends what is queued and closes our end; the provider then closes its own.
   * A frame in arrival ends the stream at once, and a stream still open
   * LEASE_STREAM_CLOSE_GRACE_MS later (a provider that never closes) is reset, so nothing it holds
   * outlives the lease.
   */
  async close (): Promise<void> {
    const stream = this.framed.stream
    // a frame in arrival on a closed lease is nobody's result any more: the stream ends now
    if (this.framed.midFrame) { this.framed.fail(new Error('the lease was closed while a frame was arriving')); return }
    const timer = setTimeout(() => { if (stream.status === 'open' || stream.status === 'closing') this.framed.fail(new Error('the provider did not close the lease stream after the lease was closed')) }, LEASE_STREAM_CLOSE_GRACE_MS)
    timer.unref?.()
    stream.addEventListener('close', () => { clearTimeout(timer) }, { once: true })
    await this.writer.close({ signal: AbortSignal.timeout(LEASE_STREAM_CLOSE_GRACE_MS) }).catch(() => {})
  }
}

/** The code of a result that came back, as the submitter may trust it. */
export function trustedResult (r: dbc.task.v1.ITaskResult): dbc.task.v1.ITaskResult {
  if (r.ok !== true) r.code = resultCode(r) ?? 'TASK_FAILED'
  return r
}
