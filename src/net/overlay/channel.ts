// One long-lived framed stream per neighbour for a request/ack protocol: requests go out as
// frames, acks come back on the same stream in any order and are matched by a key. Reusing the
// stream saves a stream open and a protocol negotiation per message (the hot path).
import type { Libp2p, PeerId, AbortOptions } from '@libp2p/interface'
import { FramedStream } from '../framed.js'

export interface ChannelInit<A> {
  protocol: string
  maxFrameBytes: number
  /** Decodes an ack frame into its match key and value; undefined drops the frame. */
  decodeAck: (frame: Uint8Array) => { key: string, ack: A } | undefined
  /** Pending requests at most per channel (backpressure: `request` rejects beyond it). */
  maxPending?: number
}

interface Pending<A> { resolve: (a: A) => void, reject: (e: Error) => void, deadline: number, timeoutMs: number }

/** How often pending requests are checked against their deadlines (one timer per channel, not per request). */
const SWEEP_MS = 50

export class RequestChannel<A> {
  private framed: FramedStream | undefined
  private opening: Promise<FramedStream> | undefined
  private readonly pending = new Map<string, Pending<A>>()
  private closed = false
  private sweeper: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly host: Pick<Libp2p, 'dialProtocol'>, private readonly peer: PeerId, private readonly init: ChannelInit<A>) {}

  private async open (options: AbortOptions): Promise<FramedStream> {
    if (this.framed !== undefined) return this.framed
    if (this.opening === undefined) {
      this.opening = (async () => {
        const stream = await this.host.dialProtocol(this.peer, this.init.protocol, options)
        const framed = new FramedStream(stream, { maxFrameBytes: this.init.maxFrameBytes })
        this.framed = framed
        void this.readLoop(framed)
        return framed
      })()
      this.opening.catch(() => { this.opening = undefined })
    }
    return await this.opening
  }

  private async readLoop (framed: FramedStream): Promise<void> {
    let error: Error = new Error('the relay stream closed')
    try {
      for (;;) {
        const frame = await framed.read()
        if (frame === undefined) break
        const decoded = this.init.decodeAck(frame)
        if (decoded === undefined) continue
        const p = this.pending.get(decoded.key)
        if (p === undefined) continue
        this.pending.delete(decoded.key)
        p.resolve(decoded.ack)
      }
    } catch (err) {
      error = err as Error
    }
    if (this.framed === framed) { this.framed = undefined; this.opening = undefined }
    for (const [k, p] of this.pending) { p.reject(error); this.pending.delete(k) }
  }

  /** Rejects requests past their deadline; re-arms while any are pending. */
  private sweep (): void {
    this.sweeper = undefined
    const now = Date.now()
    for (const [k, p] of this.pending) {
      if (p.deadline <= now) { this.pending.delete(k); p.reject(new Error(`no ack within ${p.timeoutMs} ms`)) }
    }
    this.armSweeper()
  }

  private armSweeper (): void {
    if (this.sweeper !== undefined || this.pending.size === 0 || this.closed) return
    this.sweeper = setTimeout(() => { this.sweep() }, SWEEP_MS)
    this.sweeper.unref?.()
  }

  /** Sends `frame` and resolves with the ack matched by `key`; rejects on stream failure or timeout. */
  async request (key: string, frame: Uint8Array, timeoutMs: number, options: AbortOptions = {}): Promise<A> {
    if (this.closed) throw new Error('channel closed')
    if (this.pending.size >= (this.init.maxPending ?? 1024)) throw new Error('too many requests in flight to this peer')
    const framed = await this.open(options)
    // closed while the stream was being opened: nothing would ever time this request out
    if (this.closed) { framed.abort(new Error('channel closed')); throw new Error('channel closed') }
    return await new Promise<A>((resolve, reject) => {
      this.pending.set(key, { resolve, reject, deadline: Date.now() + timeoutMs, timeoutMs })
      this.armSweeper()
      framed.write(frame, options).catch(err => {
        const p = this.pending.get(key)
        if (p !== undefined) { this.pending.delete(key); reject(err) }
      })
    })
  }

  /** Requests waiting for their ack. */
  get pendingCount (): number { return this.pending.size }

  close (): void {
    this.closed = true
    if (this.sweeper !== undefined) clearTimeout(this.sweeper)
    this.sweeper = undefined
    for (const [k, p] of this.pending) { p.reject(new Error('channel closed')); this.pending.delete(k) }
    this.framed?.abort(new Error('channel closed'))
    this.framed = undefined
  }
}
