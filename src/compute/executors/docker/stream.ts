// Docker's multiplexed attach/log stream, read as it arrives: frames of an 8-byte header (stream
// id: 1 stdout, 2 stderr; 3 zero bytes; u32 BE length) and a payload, split anywhere across chunks.
// Stdout is kept up to a cap; the first byte past it calls onOverflow (the executor stops the
// container) and nothing more is kept. Stderr keeps only its tail (output-tail.ts), for the task's log.
import { TailBuffer, type TaskLog } from '../output-tail.js'

export interface DemuxInit {
  /** Largest stdout kept, bytes. */
  maxStdoutBytes: number
  /** Bytes of stderr kept (the last ones). */
  stderrTailBytes?: number
  /** Called once, when stdout passes maxStdoutBytes. */
  onOverflow?: () => void
  /** false: stdout is only counted (and checked against the cap), not kept. Default true. */
  keepStdout?: boolean
}

const HEADER = 8

export class StreamDemuxer {
  /** Stdout bytes seen, kept or not. */
  stdoutBytes = 0
  overflowed = false
  private readonly kept: Uint8Array[] = []
  private keptBytes = 0
  private readonly stderr: TailBuffer
  private readonly header = new Uint8Array(HEADER)
  private headerFill = 0
  /** Payload bytes left in the current frame, and its stream. */
  private left = 0
  private stream = 0

  constructor (private readonly init: DemuxInit) {
    this.stderr = new TailBuffer(init.stderrTailBytes ?? 2048)
  }

  push (chunk: Uint8Array): void {
    let i = 0
    while (i < chunk.length) {
      if (this.left === 0) {
        const n = Math.min(HEADER - this.headerFill, chunk.length - i)
        this.header.set(chunk.subarray(i, i + n), this.headerFill)
        this.headerFill += n
        i += n
        if (this.headerFill < HEADER) return
        this.headerFill = 0
        this.stream = this.header[0]
        this.left = new DataView(this.header.buffer).getUint32(4)
        continue
      }
      const n = Math.min(this.left, chunk.length - i)
      this.payload(chunk.subarray(i, i + n))
      this.left -= n
      i += n
    }
  }

  private payload (part: Uint8Array): void {
    if (this.stream === 2) {
      this.stderr.push(part)
      return
    }
    if (this.stream !== 1) return
    this.stdoutBytes += part.length
    if (this.overflowed) return
    const room = this.init.maxStdoutBytes - this.keptBytes
    if (part.length > room) {
      this.overflowed = true
      this.init.onOverflow?.()
      return
    }
    if (this.init.keepStdout !== false) this.kept.push(part.slice())
    this.keptBytes += part.length
  }

  stdout (): Uint8Array {
    const out = new Uint8Array(this.keptBytes)
    let o = 0
    for (const p of this.kept) { out.set(p, o); o += p.length }
    return out
  }

  stderrTail (): string {
    return this.stderr.text()
  }

  /** The kept stderr and how much the container wrote in all. */
  stderrLog (): TaskLog {
    return this.stderr.log()
  }
}

/** A whole multiplexed buffer's stdout (for logs read at once). */
export function demuxDockerStream (b: Uint8Array): Uint8Array {
  const d = new StreamDemuxer({ maxStdoutBytes: Number.MAX_SAFE_INTEGER, stderrTailBytes: 0 })
  d.push(b)
  return d.stdout()
}
