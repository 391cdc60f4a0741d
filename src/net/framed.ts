// Frames over a libp2p v3 stream: an event-driven reader feeding the bounded FrameDecoder,
// and a writer that honours backpressure. A malformed or oversized frame surfaces as a
// WireError from read(); the protocol handler tells the peer why and aborts the stream.
import type { Stream, AbortOptions } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, encodeFrame, encodeFramePrefix, DEFAULT_MAX_FRAME_BYTES, type FrameLimit } from '../wire/frame.js'
import { WireError } from '../errors.js'
import { untilWritable } from './stream-drain.js'
import { FRAME_OVERHEAD_BYTES, type FrameHooks, type ReadMeter, type FramedStreamInit, type FrameListener } from './framed-types.js'

export { FRAME_OVERHEAD_BYTES, type FrameHooks, type ReadMeter, type FramedStreamInit, type FrameListener } from './framed-types.js'

export class FramedStream {
  readonly stream: Stream
  private readonly decoder: FrameDecoder
  private readonly queue: Uint8Array[] = []
  private readonly highWater: number
  private waiter: { resolve: (f: Uint8Array | undefined) => void, reject: (e: Error) => void } | undefined
  private listener: FrameListener | undefined
  private error: Error | undefined
  private ended = false
  private paused = false
  private readonly hooks: FrameHooks | undefined
  /** Bytes reserved in all (frames being read, decoded-but-unread, held undecoded), the queued ones, the held ones. */
  private reservedAll = 0
  private reservedQueued = 0
  private reservedHeld = 0
  private readonly accounting: boolean
  private startedAt = -1
  private decoded = 0
  private meter: ReadMeter | undefined
  /** Reading stopped by a read budget (beside the queue's own pause). */
  private budgetPaused = false
  /** Bytes of the frames queued unread. */
  private queuedBytes = 0
  /** Bytes received on the stream so far. */
  bytesReceived = 0

  constructor (stream: Stream, init: FramedStreamInit = {}) {
    this.stream = stream
    this.hooks = init.hooks
    const reserve = init.hooks?.reserve
    this.accounting = reserve !== undefined
    this.decoder = new FrameDecoder({
      maxFrameBytes: init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      admit: reserve === undefined
        ? undefined
        : (n, limit) => {
            const bytes = n + FRAME_OVERHEAD_BYTES
            const refused = reserve(bytes, limit + FRAME_OVERHEAD_BYTES)
            if (refused === undefined) this.reservedAll += bytes
            return refused
          }
    })
    this.highWater = init.highWaterFrames ?? 64
    stream.addEventListener('message', (evt) => { this.onData(evt.data) })
    stream.addEventListener('remoteCloseWrite', () => { this.onEnd() })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null && this.error === undefined) this.error = evt.error
      this.releaseAll()
      this.onEnd()
      this.unwatch()
    })
  }

  /**
   * Reports the bytes this stream holds to `meter` after each change, from now on (a stream this
   * node opened: its reading is paused while the node's read budget is used up).
   */
  watch (meter: ReadMeter): void {
    this.meter = meter
    this.report()
  }

  private unwatch (): void {
    const m = this.meter
    this.meter = undefined
    m?.closed()
  }

  /** Bytes of the peer's frames held now: a partial frame's bytes received so far, and frames decoded and unread. */
  get heldBytes (): number { return this.decoder.buffered + this.queuedBytes + this.queue.length * FRAME_OVERHEAD_BYTES }

  private report (): void { this.meter?.held(this.heldBytes) }

  /** True while a read budget stopped this stream's reading. */
  get readingPaused (): boolean { return this.budgetPaused }

  /** Stops reading (libp2p stops granting the sender window: yamux flow control stops it). */
  pauseReading (): void {
    if (this.budgetPaused) return
    this.budgetPaused = true
    if (!this.paused) this.pauseStream()
  }

  /** Reads again (what arrived meanwhile is delivered now). */
  resumeReading (): void {
    if (!this.budgetPaused) return
    this.budgetPaused = false
    if (!this.paused && this.error === undefined) this.resumeStream()
  }

  private pauseStream (): void { try { this.stream.pause() } catch {} }
  private resumeStream (): void { try { this.stream.resume() } catch {} }

  /**
   * Reads no more (a request whose one answer was read): frames queued and bytes still to come are
   * dropped, not held; the stream stays open for its close.
   */
  stopReading (): void {
    if (this.error !== undefined) return
    const err = new WireError('UNEXPECTED_MESSAGE', 'this stream reads no more')
    this.error = err
    this.decoder.fail(err)
    this.queue.length = 0
    this.queuedBytes = 0
    this.releaseAll()
    this.flushWaiter()
    this.report()
  }

  /** Changes the frame limit for frames whose prefix arrives from now on. */
  setMaxFrameBytes (limit: FrameLimit): void { this.decoder.setMaxFrameBytes(limit) }

  /**
   * True part-way through a frame (some of its prefix or body arrived), not counting bytes held
   * undecoded because the reader is behind (those wait for this node, not for the peer).
   */
  get midFrame (): boolean { return this.decoder.midFrame && !this.decoder.held }
  /** Length the current frame announced (-1 while its prefix is incomplete). */
  get frameLength (): number { return this.decoder.frameLength }
  /** When the current frame's first byte arrived (hooks.now), -1 between frames. */
  get frameStartedAt (): number { return this.startedAt }
  /** Frames decoded so far (read or queued). */
  get framesDecoded (): number { return this.decoded }
  /** Bytes this stream holds against a budget now. */
  get reserved (): number { return this.reservedAll }

  private releaseAll (): void {
    const n = this.reservedAll
    this.reservedAll = 0
    this.reservedQueued = 0
    this.reservedHeld = 0
    if (n > 0) this.hooks?.release?.(n)
  }

  private releaseSome (n: number): void {
    if (n <= 0) return
    this.reservedAll -= n
    this.hooks?.release?.(n)
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    if (this.error !== undefined) return
    this.bytesReceived += data.byteLength
    if (this.decoder.held) {
      // the reader is behind (the stream is paused): keep the bytes undecoded, counted
      this.decoder.push(data, 0)
      this.holdRest()
    } else {
      this.decode(data)
    }
    if (this.meter !== undefined) this.report()
  }

  /**
   * Decodes at most as many frames as the queue has room for (a chunk of zero-length frames
   * would otherwise become one object per byte before the pause takes effect); the rest stays
   * in the decoder, counted against the budgets, until the reader catches up.
   */
  private decode (data: Uint8Array | Uint8ArrayList | undefined): void {
    // a listener takes every frame as it is decoded: the rest of a chunk is decoded a queue's worth at a time
    for (;;) {
      this.decodeSome(data)
      if (this.listener === undefined || !this.decoder.held || this.error !== undefined) return
      const held = this.reservedHeld
      this.reservedHeld = 0
      this.releaseSome(held)
      data = undefined
    }
  }

  private decodeSome (data: Uint8Array | Uint8ArrayList | undefined): void {
    const wasMid = this.decoder.midFrame
    const room = Math.max(1, this.highWater - this.queue.length)
    const frames = this.decoder.push(data, room)
    if (this.hooks?.now !== undefined) {
      if (!this.decoder.midFrame || this.decoder.held) this.startedAt = -1
      else if (!wasMid || frames.length > 0 || data === undefined) this.startedAt = this.hooks.now()
    }
    for (const f of frames) {
      if (f instanceof WireError) {
        this.refuse(f)
        return
      }
      this.decoded++
      // each frame was reserved at its prefix for exactly its length plus the overhead
      const reserved = this.accounting ? Math.min(f.byteLength + FRAME_OVERHEAD_BYTES, this.reservedAll - this.reservedQueued - this.reservedHeld) : 0
      if (this.listener !== undefined) {
        this.releaseSome(reserved)
        try { this.listener.frame(f) } catch (err) { this.fail(err as Error) }
        if (this.error !== undefined || this.listener === undefined) return
      } else if (this.waiter !== undefined) {
        const w = this.waiter
        this.waiter = undefined
        this.releaseSome(reserved)
        w.resolve(f)
      } else {
        this.reservedQueued += reserved
        this.queuedBytes += f.byteLength
        this.queue.push(f)
      }
    }
    if (this.decoder.held) this.holdRest()
    if (this.listener !== undefined) return
    if ((this.queue.length >= this.highWater || this.decoder.held) && !this.paused && this.error === undefined) {
      this.paused = true
      if (!this.budgetPaused) this.pauseStream()
    }
  }

  // the reader gets the error and decides (answer with a ProtocolError, then abort)
  private refuse (err: WireError): void {
    this.error = err
    if (this.decoder.held) this.decoder.fail(err)
    this.releaseAll()
    this.flushWaiter()
    this.hooks?.onRefused?.(err)
  }

  /** Counts the bytes held undecoded (re-reserved as a whole each time they change). */
  private holdRest (): void {
    if (!this.accounting) return
    const before = this.reservedHeld
    this.reservedHeld = 0
    this.releaseSome(before)
    const bytes = this.decoder.buffered
    const refused = this.hooks?.reserve?.(bytes, Math.max(bytes, this.decoder.maxFrameBytes + FRAME_OVERHEAD_BYTES))
    if (refused !== undefined) { this.refuse(refused); return }
    this.reservedHeld = bytes
    this.reservedAll += bytes
  }

  /** Decodes more of the held bytes once the reader has made room. */
  private refill (): void {
    if (!this.decoder.held || this.error !== undefined || this.queue.length >= this.highWater / 2) return
    const held = this.reservedHeld
    this.reservedHeld = 0
    this.releaseSome(held)
    this.decode(undefined)
  }

  private onEnd (): void {
    this.ended = true
    this.flushWaiter()
  }

  private flushWaiter (): void {
    if (this.listener !== undefined && (this.error !== undefined || this.ended)) {
      const l = this.listener
      this.listener = undefined
      l.end(this.error ?? (this.decoder.midFrame ? this.truncated() : undefined))
      return
    }
    if (this.waiter === undefined) return
    const w = this.waiter
    this.waiter = undefined
    if (this.error !== undefined) w.reject(this.error)
    else if (this.ended && this.decoder.midFrame) w.reject(this.truncated())
    else w.resolve(undefined)
  }

  // the stream ended part-way through a frame: the same error whether a reader was waiting or not
  private truncated (): WireError {
    return new WireError('TRUNCATED_FRAME', `stream ended inside a frame (${this.decoder.buffered} bytes buffered)`)
  }

  /** The next frame, or undefined when the remote closed its end cleanly. */
  async read (options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    if (this.queue.length === 0) this.refill()
    const f = this.queue.shift()
    if (f !== undefined) {
      this.queuedBytes -= f.byteLength
      if (this.reservedQueued > 0) {
        const n = Math.min(this.reservedQueued, f.byteLength + FRAME_OVERHEAD_BYTES)
        this.reservedQueued -= n
        this.releaseSome(n)
      }
      if (this.queue.length < this.highWater / 2) {
        this.refill()
        if (this.paused && !this.decoder.held && this.queue.length < this.highWater / 2 && this.error === undefined) {
          this.paused = false
          if (!this.budgetPaused) this.resumeStream()
        }
      }
      if (this.meter !== undefined) this.report()
      return f
    }
    if (this.error !== undefined) throw this.error
    if (this.ended) {
      if (this.decoder.midFrame) throw this.truncated()
      return undefined
    }
    options.signal?.throwIfAborted()
    // no signal (the hot path): no closures (tsx names every named closure it creates, which
    // costs a defineProperty per read)
    if (options.signal === undefined) return await new Promise<Uint8Array | undefined>((resolve, reject) => { this.waiter = { resolve, reject } })
    return await new Promise<Uint8Array | undefined>((resolve, reject) => {
      const signal = options.signal
      const onAbort = (): void => {
        this.waiter = undefined
        reject(signal?.reason ?? new Error('aborted'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiter = {
        resolve: (v) => { signal?.removeEventListener('abort', onAbort); resolve(v) },
        reject: (e) => { signal?.removeEventListener('abort', onAbort); reject(e) }
      }
    })
  }

  /**
   * Switches to push mode: every frame from now on (and any already queued) goes to `listener`
   * in the turn it is decoded, with the same budgets and limits as read(); read() is not used
   * after this. The hot path of request/ack protocols (src/net/overlay): no promise per frame.
   */
  listen (listener: FrameListener): void {
    if (this.listener !== undefined || this.waiter !== undefined) throw new Error('this stream already has a reader')
    this.listener = listener
    while (this.queue.length > 0 && this.listener !== undefined && this.error === undefined) {
      const f = this.queue.shift() as Uint8Array
      this.queuedBytes -= f.byteLength
      const n = Math.min(this.reservedQueued, f.byteLength + FRAME_OVERHEAD_BYTES)
      this.reservedQueued -= n
      this.releaseSome(n)
      try { this.listener.frame(f) } catch (err) { this.fail(err as Error) }
    }
    if (this.listener === undefined) return
    if (this.error === undefined && this.decoder.held) {
      const held = this.reservedHeld
      this.reservedHeld = 0
      this.releaseSome(held)
      this.decode(undefined)
    }
    if (this.paused && this.error === undefined) { this.paused = false; if (!this.budgetPaused) this.resumeStream() }
    if (this.meter !== undefined) this.report()
    this.flushWaiter()
  }

  /** Reads one frame and fails if the stream ended first. */
  async readRequired (options: AbortOptions = {}): Promise<Uint8Array> {
    const f = await this.read(options)
    if (f === undefined) throw new WireError('STREAM_ENDED', 'the peer closed the stream before sending the expected message')
    return f
  }

  async write (payload: Uint8Array | Uint8ArrayList, options: AbortOptions = {}): Promise<void> {
    // large payloads go out as prefix + payload without copying them into one buffer
    const frame = payload instanceof Uint8Array && payload.byteLength < 4096 ? encodeFrame(payload) : new Uint8ArrayList(encodeFramePrefix(payload.byteLength), payload)
    if (!this.stream.send(frame)) await untilWritable(this.stream, { ...options, sentBytes: frame.byteLength })
  }

  async close (options: AbortOptions = {}): Promise<void> {
    await this.stream.close(options)
  }

  abort (err: Error): void {
    this.stream.abort(err)
  }

  /**
   * Ends the stream with `err` at once (a budget or deadline was broken): a waiting reader gets
   * the error, the buffers are dropped and the stream is reset.
   */
  fail (err: Error): void {
    if (this.error === undefined) this.error = err
    this.queue.length = 0
    this.queuedBytes = 0
    this.releaseAll()
    this.flushWaiter()
    this.stream.abort(err)
    this.unwatch()
  }
}
