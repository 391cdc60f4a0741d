// One long-lived framed stream per neighbour for a request/ack protocol: requests go out as
// frames, acks come back on the same stream in any order and are matched by a key. Reusing the
// stream saves a stream open and a protocol negotiation per message (the hot path). Once the
// stream is open a request is written in the caller's own turn (`send`): a message's direct copy
// then leaves before the caller goes on to, say, sign its relayed copy.
import type { Libp2p, PeerId, AbortOptions } from '@libp2p/interface'
import { FramedStream } from '../framed.js'
import { Uint8ArrayList } from 'uint8arraylist'
import { encodeFrame, encodeFramePrefix } from '../../wire/frame.js'

export interface ChannelInit<A, K = string> {
  /** The protocol, or several in order of preference (the peer's first supported one is negotiated: `protocol`). */
  protocol: string | string[]
  maxFrameBytes: number
  /** Decodes an ack frame into its match key and value; undefined drops the frame. */
  decodeAck: (frame: Uint8Array) => { key: K, ack: A } | undefined
  /**
   * For keys that do not identify a request alone: whether `ack`, found under its key, answers
   * the request sent with `check` (see `send`). False drops the ack; the request keeps waiting.
   */
  accepts?: (ack: A, check: unknown) => boolean
  /** Pending requests at most per channel (backpressure: `request` rejects beyond it). */
  maxPending?: number
}

/** Whether a frame may go on a stream of this protocol, on a connection of this encryption. */
export type StreamTest = (protocol: string | undefined, encryption: string | undefined) => boolean

/** Called once per request: with the ack, or with the error that ended the wait. */
export type AckCallback<A> = (err: Error | undefined, ack?: A) => void

interface Pending<A> { done: AckCallback<A>, deadline: number, timeoutMs: number, check: unknown }

/** How often pending requests are checked against their deadlines (one timer per channel, not per request). */
const SWEEP_MS = 50

export class RequestChannel<A, K = string> {
  private framed: FramedStream | undefined
  private opening: Promise<FramedStream> | undefined
  private readonly pending = new Map<K, Pending<A>>()
  private closed = false
  private sweeper: ReturnType<typeof setTimeout> | undefined

  /**
   * The protocol negotiated on the last stream this channel opened (the open one, or the one before
   * it: a peer keeps its version across an idle stream's reset) and the encryption of the
   * connection it ran on ('/noise'; 'native' for WebRTC's DTLS), when the host says.
   */
  private lastProtocol: string | undefined
  private lastEncryption: string | undefined

  constructor (private readonly host: Pick<Libp2p, 'dialProtocol'> & Partial<Pick<Libp2p, 'getConnections'>>, private readonly peer: PeerId, private readonly init: ChannelInit<A, K>) {}

  private async open (options: AbortOptions): Promise<FramedStream> {
    if (this.framed !== undefined) return this.framed
    if (this.opening === undefined) {
      this.opening = (async () => {
        const stream = await this.host.dialProtocol(this.peer, this.init.protocol, options)
        const framed = new FramedStream(stream, { maxFrameBytes: this.init.maxFrameBytes })
        // (once per stream: the connection that carries it)
        this.lastEncryption = this.host.getConnections?.(this.peer).find(c => c.streams.includes(stream))?.encryption
        this.lastProtocol = stream.protocol
        this.framed = framed
        this.listen(framed)
        return framed
      })()
      this.opening.catch(() => { this.opening = undefined })
    }
    return await this.opening
  }

  /** Acks are matched in the turn they arrive (push mode: no promise per ack). */
  private listen (framed: FramedStream): void {
    framed.listen({
      frame: (frame) => {
        const decoded = this.init.decodeAck(frame)
        if (decoded === undefined) return
        const p = this.pending.get(decoded.key)
        if (p === undefined || (this.init.accepts !== undefined && !this.init.accepts(decoded.ack, p.check))) return
        this.pending.delete(decoded.key)
        try { p.done(undefined, decoded.ack) } catch {}
      },
      end: (err) => {
        if (this.framed === framed) { this.framed = undefined; this.opening = undefined }
        this.failAll(err ?? new Error('the relay stream closed'))
      }
    })
  }

  /** Fails every pending request (callbacks run after the map is emptied: they may send again). */
  private failAll (error: Error): void {
    const all = [...this.pending.values()]
    this.pending.clear()
    for (const p of all) p.done(error)
  }

  /** Rejects requests past their deadline; re-arms while any are pending. */
  private sweep (): void {
    this.sweeper = undefined
    const now = Date.now()
    const expired: Array<Pending<A>> = []
    for (const [k, p] of this.pending) {
      if (p.deadline <= now) { this.pending.delete(k); expired.push(p) }
    }
    for (const p of expired) p.done(new Error(`no ack within ${p.timeoutMs} ms`))
    this.armSweeper()
  }

  private armSweeper (): void {
    if (this.sweeper !== undefined || this.pending.size === 0 || this.closed) return
    this.sweeper = setTimeout(() => { this.sweep() }, SWEEP_MS)
    this.sweeper.unref?.()
  }

  /** Sends `frame` and resolves with the ack matched by `key`; rejects on stream failure or timeout. */
  async request (key: K, frame: Uint8Array, timeoutMs: number, options: AbortOptions = {}, check?: unknown): Promise<A> {
    return await new Promise<A>((resolve, reject) => {
      this.send(key, frame, timeoutMs, (err, ack) => { if (err !== undefined) reject(err); else resolve(ack as A) }, options, check)
    })
  }

  /**
   * `request` with a callback (the hot path: no promise per copy). On an open stream the frame is
   * written before this returns; otherwise once the stream opens. `done` is called exactly once.
   * `check`: what init.accepts matches an ack against.
   */
  send (key: K, frame: Uint8Array, timeoutMs: number, done: AckCallback<A>, options: AbortOptions = {}, check?: unknown): void {
    // (large frames go out as prefix + payload, without copying the payload, as FramedStream.write does)
    this.sendFramed(key, frame.byteLength < 4096 ? encodeFrame(frame) : new Uint8ArrayList(encodeFramePrefix(frame.byteLength), frame), timeoutMs, done, options, check)
  }

  /** `send` with bytes already framed (length prefix included): src/crypto/envelope-codec.ts builds them in one buffer. */
  sendFramed (key: K, bytes: Uint8Array | Uint8ArrayList, timeoutMs: number, done: AckCallback<A>, options: AbortOptions = {}, check?: unknown, onlyOn?: StreamTest): void {
    if (this.closed) { done(new Error('channel closed')); return }
    if (this.pending.size >= (this.init.maxPending ?? 1024)) { done(new Error('too many requests in flight to this peer')); return }
    if (this.framed !== undefined) { this.write(this.framed, key, bytes, timeoutMs, done, check, onlyOn); return }
    this.open(options).then(stream => {
      // closed while the stream was being opened: nothing would ever time this request out
      if (this.closed) { stream.abort(new Error('channel closed')); done(new Error('channel closed')); return }
      this.write(stream, key, bytes, timeoutMs, done, check, onlyOn)
    }, err => { done(err as Error) })
  }

  /** `onlyOn`: the frame is written only on a stream it accepts (else `done` fails it, unsent). */
  private write (stream: FramedStream, key: K, bytes: Uint8Array | Uint8ArrayList, timeoutMs: number, done: AckCallback<A>, check: unknown, onlyOn?: StreamTest): void {
    if (onlyOn !== undefined && !onlyOn(stream.stream.protocol, this.lastEncryption)) { done(new Error(`the frame is not for this stream (${stream.stream.protocol} on ${this.lastEncryption ?? 'an unknown encryption'})`)); return }
    if (this.pending.has(key)) { done(new Error(`a request with key ${String(key)} is already waiting`)); return }
    this.pending.set(key, { done, deadline: Date.now() + timeoutMs, timeoutMs, check })
    this.armSweeper()
    try {
      // false means "buffer full, wait for drain": the frame is queued all the same, and each
      // request still waits for its own ack, so nothing more is needed here
      stream.stream.send(bytes)
    } catch (err) {
      if (this.pending.get(key)?.done === done) { this.pending.delete(key); done(err as Error) }
    }
  }

  /** The protocol negotiated on the open stream, else on the last one (see lastProtocol); undefined before the first. */
  get protocol (): string | undefined { return this.lastProtocol }

  /** The encryption of that stream's connection (see lastEncryption); undefined when not known. */
  get encryption (): string | undefined { return this.lastEncryption }

  /** Requests waiting for their ack. */
  get pendingCount (): number { return this.pending.size }

  close (): void {
    this.closed = true
    if (this.sweeper !== undefined) clearTimeout(this.sweeper)
    this.sweeper = undefined
    this.failAll(new Error('channel closed'))
    this.framed?.abort(new Error('channel closed'))
    this.framed = undefined
  }
}
