// Frames written on a lease stream within one turn of the event loop leave as one stream write:
// one yamux data frame, one Noise message, one socket write, and one window update back from the
// reader, for all of them (each frame was its own send, and yamux answers every data frame it
// reads with a window update). With 18 tasks in flight on a lease this halved the wire's CPU per
// task; with 4 it changes little. The frames themselves are unchanged (length-prefixed, read one
// by one), so the reader's limits and budgets still apply per frame.
import type { AbortOptions } from '@libp2p/interface'
import type { FramedStream } from './framed.js'
import { encodeFrame } from '../wire/frame.js'
import { untilWritable, raceSignal } from './stream-drain.js'

/** A batch is written at once when it reaches this size (larger frames leave alone, in order). */
export const LEASE_WRITE_BATCH_BYTES = 64 * 1024
/**
 * How long a write that asks to linger (a result while more of its lease's tasks run) may wait for
 * the next ones before its batch goes out: results of tiny tasks leave several to a write instead
 * of one each (one Noise message, one socket write and one yamux window update back for them all,
 * and one runner step at the submitter). A write that does not linger sends the batch next turn.
 */
export const LEASE_WRITE_LINGER_MS = 1

export interface CoalescingWriterInit {
  /**
   * How long the stream may stay full (its reader not reading) before every write waiting on it
   * fails: one timer per stall, not one per write. Absent: writes wait for the drain or their signal.
   */
  drainTimeoutMs?: number
  /** How long a lingering write may wait for more (default LEASE_WRITE_LINGER_MS). */
  lingerMs?: number
}

export interface CoalescingWriteOptions extends AbortOptions {
  /** More frames follow soon (a lease's other tasks run): the batch may wait up to lingerMs for them. */
  linger?: boolean
}

/** One write waiting for its batch to go out (an object, not closures: tsx names each closure it makes, per write). */
class Waiter {
  private settled = false
  /** Its frame is still in the writer's batch (not handed to the stream yet). */
  queued = true
  constructor (private readonly owner: CoalescingWriter, private readonly resolve: () => void, private readonly reject: (err: Error) => void, private readonly signal: AbortSignal | undefined) {
    signal?.addEventListener('abort', this, { once: true })
  }

  /**
   * The signal fired: this wait stops. A frame still in the batch is dropped (a cancelled task
   * would cost its provider an unpaid run); one handed to the stream goes out in order.
   */
  handleEvent (): void {
    if (this.queued) this.owner.unqueue(this)
    this.done(this.signal?.reason ?? new Error('aborted'))
  }

  done (err?: Error): void {
    if (this.settled) return
    this.settled = true
    this.signal?.removeEventListener('abort', this)
    if (err !== undefined) this.reject(err)
    else this.resolve()
  }
}

export class CoalescingWriter {
  private frames: Uint8Array[] = []
  private bytes = 0
  private waiters: Waiter[] = []
  private scheduled = false
  /** The batch waits on a linger timer (a write that does not linger sends it at the next turn instead). */
  private lingering: ReturnType<typeof setTimeout> | undefined
  /** A send the stream did not take at once: later batches wait for its drain. */
  private draining = false
  /** Settles when the send the writer waits on drained (or the writer failed). */
  private drained: Promise<void> = Promise.resolve()
  private closed: Error | undefined
  /** Writes asked and stream sends made (what the batching saves: tests, benches). */
  framesWritten = 0
  sends = 0
  /** Frames dropped from a batch because their write was aborted before it went out. */
  framesDropped = 0

  constructor (readonly framed: FramedStream, private readonly init: CoalescingWriterInit = {}) {}

  /** How long a lingering write may wait for more (what batches with its writes waits as long: receipt-batcher.ts). */
  get lingerMs (): number { return this.init.lingerMs ?? LEASE_WRITE_LINGER_MS }

  /**
   * Queues one frame; resolves once its batch went to the stream (after the stream's drain when it
   * was full). `signal` stops the wait; a frame still queued in the batch then never goes out.
   */
  async write (payload: Uint8Array, options: CoalescingWriteOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    if (this.closed !== undefined) throw this.closed
    const frame = encodeFrame(payload)
    if (this.bytes > 0 && this.bytes + frame.byteLength > LEASE_WRITE_BATCH_BYTES) this.flush()
    this.frames.push(frame)
    this.bytes += frame.byteLength
    this.framesWritten++
    const done = new Promise<void>((resolve, reject) => { this.waiters.push(new Waiter(this, resolve, reject, options.signal)) })
    if (this.bytes >= LEASE_WRITE_BATCH_BYTES) this.flush()
    else if (options.linger === true && !this.scheduled) {
      this.lingering ??= setTimeout(this.onTurn, this.lingerMs)
    } else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.onTurn)
    }
    await done
  }

  private readonly onTurn = (): void => { this.scheduled = false; this.flush() }

  /** An aborted write's frame leaves the batch it was queued in (frames and waiters are parallel). */
  unqueue (w: Waiter): void {
    const at = this.waiters.indexOf(w)
    if (at < 0) return
    this.bytes -= this.frames[at].byteLength
    this.frames.splice(at, 1)
    this.waiters.splice(at, 1)
    this.framesDropped++
  }

  /** Sends what is queued now (close() does so first; a full batch does at once). */
  flush (): void {
    if (this.lingering !== undefined) { clearTimeout(this.lingering); this.lingering = undefined }
    if (this.draining || this.frames.length === 0) return
    const frames = this.frames
    const waiters = this.waiters
    const bytes = this.bytes
    this.frames = []
    this.waiters = []
    this.bytes = 0
    for (const w of waiters) w.queued = false
    let out: Uint8Array
    if (frames.length === 1) out = frames[0]
    else {
      out = new Uint8Array(bytes)
      let at = 0
      for (const f of frames) { out.set(f, at); at += f.byteLength }
    }
    let taken: boolean
    try {
      this.sends++
      taken = this.framed.stream.send(out)
    } catch (err) {
      this.fail(err as Error, waiters)
      return
    }
    if (taken) { for (const w of waiters) w.done(); return }
    // the stream holds the bytes but wants a drain before more (a drain that sent nothing does
    // not count, and the stall clock restarts only when bytes left: src/net/stream-drain.ts)
    this.draining = true
    this.drained = untilWritable(this.framed.stream, { stallMs: this.init.drainTimeoutMs, sentBytes: out.byteLength }).then(() => {
      if (this.closed !== undefined) return
      this.draining = false
      for (const w of waiters) w.done()
      this.flush()
    }, (err: Error) => {
      this.fail(err, waiters)
    })
  }

  /** Every write waiting or queued fails, and every later one. */
  private fail (err: Error, waiting: Waiter[]): void {
    this.closed ??= err
    if (this.lingering !== undefined) { clearTimeout(this.lingering); this.lingering = undefined }
    const queued = this.waiters
    this.frames = []
    this.waiters = []
    this.bytes = 0
    for (const w of waiting) w.done(err)
    for (const w of queued) w.done(err)
  }

  /** Sends what is queued, then closes the stream's writing end (as FramedStream.close). */
  async close (options: AbortOptions = {}): Promise<void> {
    for (;;) {
      this.flush()
      if (!this.draining || this.closed !== undefined) break
      await raceSignal(this.drained, options.signal)
    }
    await this.framed.close(options)
  }
}
