// Frames over a libp2p v3 stream: an event-driven reader feeding the bounded FrameDecoder,
// and a writer that honours backpressure. A malformed or oversized frame surfaces as a
// WireError from read(); the protocol handler tells the peer why and aborts the stream.
import type { Stream, AbortOptions } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, encodeFrame, encodeFramePrefix, DEFAULT_MAX_FRAME_BYTES } from '../wire/frame.js'
import { WireError } from '../errors.js'

export interface FramedStreamInit {
  maxFrameBytes?: number
  /** Frames queued unread before the stream is paused (backpressure to the sender). */
  highWaterFrames?: number
}

export class FramedStream {
  readonly stream: Stream
  private readonly decoder: FrameDecoder
  private readonly queue: Uint8Array[] = []
  private readonly highWater: number
  private waiter: { resolve: (f: Uint8Array | undefined) => void, reject: (e: Error) => void } | undefined
  private error: Error | undefined
  private ended = false
  private paused = false

  constructor (stream: Stream, init: FramedStreamInit = {}) {
    this.stream = stream
    this.decoder = new FrameDecoder({ maxFrameBytes: init.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES })
    this.highWater = init.highWaterFrames ?? 64
    stream.addEventListener('message', (evt) => { this.onData(evt.data) })
    stream.addEventListener('remoteCloseWrite', () => { this.onEnd() })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null && this.error === undefined) this.error = evt.error
      this.onEnd()
    })
  }

  private onData (data: Uint8Array | Uint8ArrayList): void {
    for (const f of this.decoder.push(data)) {
      if (f instanceof WireError) {
        // the reader gets the error and decides (answer with a ProtocolError, then abort)
        this.error = f
        this.flushWaiter()
        return
      }
      if (this.waiter !== undefined) {
        const w = this.waiter
        this.waiter = undefined
        w.resolve(f)
      } else {
        this.queue.push(f)
      }
    }
    if (this.queue.length >= this.highWater && !this.paused) {
      this.paused = true
      this.stream.pause()
    }
  }

  private onEnd (): void {
    this.ended = true
    this.flushWaiter()
  }

  private flushWaiter (): void {
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
    const f = this.queue.shift()
    if (f !== undefined) {
      if (this.paused && this.queue.length < this.highWater / 2) {
        this.paused = false
        this.stream.resume()
      }
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

  /** Reads one frame and fails if the stream ended first. */
  async readRequired (options: AbortOptions = {}): Promise<Uint8Array> {
    const f = await this.read(options)
    if (f === undefined) throw new WireError('STREAM_ENDED', 'the peer closed the stream before sending the expected message')
    return f
  }

  async write (payload: Uint8Array | Uint8ArrayList, options: AbortOptions = {}): Promise<void> {
    // large payloads go out as prefix + payload without copying them into one buffer
    const frame = payload instanceof Uint8Array && payload.byteLength < 4096 ? encodeFrame(payload) : new Uint8ArrayList(encodeFramePrefix(payload.byteLength), payload)
    if (!this.stream.send(frame)) {
      await this.stream.onDrain(options)
    }
  }

  async close (options: AbortOptions = {}): Promise<void> {
    await this.stream.close(options)
  }

  abort (err: Error): void {
    this.stream.abort(err)
  }
}
