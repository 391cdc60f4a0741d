// /dbc/allreduce/1.0.0: TrainingMessage frames between the peers of training jobs. One
// long-lived outbound stream per remote peer carries everything we send it (rounds reuse the
// stream: opening one costs far more than a round's chunk on loopback); inbound streams are
// only read. Messages to ourselves are delivered in-process. Every outbound queue is bounded.
// A slice travels as its all-reduce parts (at most 1 MiB each, DEFAULT_PART_VALUES), one frame
// each, written back to back on that stream: the receiver averages each part as it arrives.
// Members behind NAT: the protocol runs on relayed (limited) connections too; the route book
// (src/net/routes) picks each peer's connection, and a frame is written only where it fits
// what the relay still allows (else on a direct connection that appeared, or a fresh relayed one).
// When no connection opens at all (a coordinator behind its own NAT, failing relayed dials), or a
// frame fits no relayed connection, frames travel the overlay instead: sealed envelopes through
// relays, chunked and acked (FrameLink, src/net/overlay/chunk-messenger.ts; overlay-route.ts).
import type { Stream, Connection, PeerId, Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { logger } from '@libp2p/logger'
import { FramedStream } from '../net/framed.js'
import { encodeFrame } from '../wire/frame.js'
import { dbc } from '../wire/gen/wire.js'
import type { Uint8ArrayList } from 'uint8arraylist'
import { WireError } from '../errors.js'
import { guardedHandle, wasHandled, SMALL_FRAME_BYTES } from '../net/guard/index.js'
import { TrainingMembers } from './members.js'
import { RouteBook, RouteLimitError, limitBytesLeft, wireBytes, REPLY_ALLOWANCE_BYTES } from '../net/routes/index.js'
import type { Host } from '../net/host.js'
import type { FrameLink } from '../net/overlay/chunk-messenger.js'
import { OverlayRoute, type TrainingRouting } from './overlay-route.js'
import { TrainingRouteLog, type TrainingRoute } from './route-log.js'
import { closeIfRedundant, RELAYED_MAX_AGE_MS } from './relayed.js'
import { SendPacer } from './send-pacer.js'
import { decodeTrainingMessage, encodeTrainingMessage, type TrainingMessage, type TrainingMessageInput } from './messages.js'

export const ALLREDUCE_PROTOCOL = '/dbc/allreduce/1.0.0'
/** A model's full state travels in one frame (StateResponse); 64 MiB = 16M float32 parameters. */
export const TRAINING_MAX_FRAME = 64 * 1024 * 1024
/** Messages waiting to be written to one peer before new ones are dropped. */
export const MAX_QUEUED_PER_PEER = 1024

export { decodeTrainingMessage, encodeTrainingMessage, type TrainingMessage, type TrainingMessageInput } from './messages.js'
export { MAX_ROUTES, type TrainingRoute } from './route-log.js'
export { closeIfRedundant, RELAYED_MAX_AGE_MS } from './relayed.js'

export type TrainingListener = (from: string, msg: TrainingMessage) => void

const log = logger('dbc:training:transport')

interface Outbox {
  queue: Array<Uint8Array | Uint8ArrayList>
  pumping: boolean
  framed?: FramedStream
  /** The connection `framed` runs on (a relayed one is checked before every frame). */
  conn?: Connection
}

export interface TransportStats {
  framesSent: number
  bytesSent: number
  framesReceived: number
  bytesReceived: number
  dropped: number
  /** Frames dropped because no relayed connection could carry them (ROUTE_LIMIT). */
  routeLimited: number
  /** Time at least one write was in flight, ms: bytesSent over it is the send bandwidth (BandwidthEstimate). */
  sendBusyMs: number
  /** Frames sent and received over the overlay (part of the counts above). */
  overlayFramesSent: number
  overlayFramesReceived: number
}

/** How long a frame waits for a connection to open before it takes the overlay (the connection is still used once it opens). */
export const OVERLAY_DIAL_WAIT_MS = 5000
/** How long one frame may take over the overlay (every chunk acked) before the peer's queue is dropped. */
export const OVERLAY_FRAME_TIMEOUT_MS = 60_000

/** The minimum of a libp2p node this transport uses (a full node also gets a route book: dial and connection events). */
export type TrainingHost = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'peerStore' | 'getConnections'>

/** Addresses per peer shared in a RoundStart (bounded: a remote peer fills this). */
export const MAX_SHARED_ADDRS = 8

export interface TrainingTransportInit {
  onBadInput?: (peer: PeerId, err: WireError) => void
  /**
   * The largest frame `peer` may send beyond what this transport learned itself (the jobs this
   * node coordinates or works in); undefined or less than SMALL_FRAME_BYTES adds nothing.
   */
  frameLimit?: (peer: string) => number | undefined
  /** Caps what this node sends on the protocol, bytes/s over all peers (an operator's uplink share; benches throttle a member with it). */
  maxSendBytesPerSec?: number
  /** The overlay's frames (sealed envelopes through relays): the route when no connection opens. Absent: connections only. */
  overlay?: () => FrameLink | undefined
  /** auto (default): a connection, else the overlay; direct: connections only; overlay: the overlay only (config routing.mode). */
  routing?: () => TrainingRouting | undefined
  /** How long a frame waits for a connection before it takes the overlay (default OVERLAY_DIAL_WAIT_MS). */
  overlayWaitMs?: number
  now?: () => number
}

export class TrainingTransport {
  readonly host: TrainingHost
  readonly self: string
  private readonly listeners = new Set<TrainingListener>()
  private readonly outboxes = new Map<string, Outbox>()
  private readonly inbound = new Set<FramedStream>()
  private readonly onBadInput?: (peer: PeerId, err: WireError) => void
  private readonly frameLimitHook?: (peer: string) => number | undefined
  /** Who this node trains with, learned from the messages it sends and accepts. */
  readonly members = new TrainingMembers(TRAINING_MAX_FRAME)
  private started = false
  readonly stats: TransportStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, dropped: 0, routeLimited: 0, sendBusyMs: 0, overlayFramesSent: 0, overlayFramesReceived: 0 }
  /** Picks connections that fit (relay limits, DCUtR on first contact); absent for a host without dial/events (test doubles). */
  private routeBook: RouteBook | undefined
  private readonly routeLog = new TrainingRouteLog()
  private readonly pacer: SendPacer
  /** When frames take the overlay (no connection opened, or the peer reached us that way; routing: overlay). */
  readonly overlay: OverlayRoute
  private detachFrames: (() => void) | undefined
  private readonly overlayWaitMs: number

  constructor (host: TrainingHost, init: TrainingTransportInit = {}) {
    this.host = host
    this.self = host.peerId.toString()
    this.onBadInput = init.onBadInput
    this.frameLimitHook = init.frameLimit
    this.pacer = new SendPacer(init.maxSendBytesPerSec)
    this.overlayWaitMs = init.overlayWaitMs ?? OVERLAY_DIAL_WAIT_MS
    this.overlay = new OverlayRoute({
      ...(init.overlay !== undefined ? { link: init.overlay } : {}),
      ...(init.routing !== undefined ? { routing: init.routing } : {}),
      ...(init.now !== undefined ? { now: init.now } : {}),
      // the background try that leaves the overlay: a connection through the route book (none: the next frame tries)
      connect: async (peer, signal) => {
        if (this.routeBook === undefined) return
        await this.routeBook.connectionFor(peerIdFromString(peer), 0, { signal })
        log('a connection to %s opened: frames leave the overlay', peer)
      }
    })
  }

  /**
   * The largest frame `peer` may send now: large frames (slices, model state) only from peers of
   * a job this node coordinates or works in, up to what that job's model needs; others may send
   * invites, joins and requests (SMALL_FRAME_BYTES).
   */
  frameLimit (peer: string): number {
    const limit = Math.max(SMALL_FRAME_BYTES, this.members.limitOf(Date.now(), peer), this.frameLimitHook?.(peer) ?? 0)
    return Math.min(TRAINING_MAX_FRAME, limit)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    const h = this.host as Partial<Host>
    // no wait for DCUtR on first contact (it would stall a round): frames start on the relay and
    // move to a direct connection as soon as one appears (fits())
    if (typeof h.dial === 'function' && typeof h.addEventListener === 'function') this.routeBook = new RouteBook(this.host as Host, { upgradeWaitMs: 0 })
    // limited (relayed) connections too: a member behind NAT may be reachable no other way;
    // what a relay carries is bounded by its limits, and frames by the members-only caps
    await guardedHandle(this.host, ALLREDUCE_PROTOCOL, async (stream: Stream, connection: Connection, g) => {
      const from = connection.remotePeer.toString()
      await this.readLoop(stream, connection, g.open({ maxFrameBytes: () => this.frameLimit(from) }))
    }, { maxInboundStreams: 256, runOnLimitedConnection: true, expectsRequest: true })
    this.overlay.start()
    // frames over the overlay: the same caps as a stream (large ones only from members), within the overlay's budgets
    const link = this.overlay.link()
    this.detachFrames = link?.attachFrames({
      maxBytes: peer => Math.min(this.frameLimit(peer), link.maxFrameBytes),
      onFrame: (peer, frame) => { this.onOverlayFrame(peer, frame) }
    })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.overlay.stop()
    this.detachFrames?.()
    this.detachFrames = undefined
    this.routeBook?.close()
    this.routeBook = undefined
    await this.host.unhandle(ALLREDUCE_PROTOCOL)
    for (const o of this.outboxes.values()) { o.queue.length = 0; o.framed?.abort(new Error('training transport stopped')) }
    this.outboxes.clear()
    for (const f of this.inbound) f.abort(new Error('training transport stopped'))
    this.inbound.clear()
  }

  /** Subscribes to every message received; returns the unsubscribe function. */
  listen (fn: TrainingListener): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Queues a message for `to` (a peer id string). Never throws; a full queue drops it. */
  send (to: string, msg: TrainingMessageInput): void {
    const bytes = encodeTrainingMessage(msg)
    if (to !== this.self) this.members.onSend(Date.now(), to, msg)
    if (to === this.self) {
      const decoded = decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray())
      queueMicrotask(() => { this.dispatch(this.self, decoded) })
      return
    }
    let o = this.outboxes.get(to)
    if (o === undefined) { o = { queue: [], pumping: false }; this.outboxes.set(to, o) }
    if (o.queue.length >= MAX_QUEUED_PER_PEER) { this.stats.dropped++; return }
    o.queue.push(bytes)
    if (!o.pumping) void this.pump(to, o)
  }

  /** The addresses this host knows for `peer` (to tell other members how to reach it). */
  async addressesOf (peer: string): Promise<string[]> {
    try {
      const p = await this.host.peerStore.get(peerIdFromString(peer))
      return p.addresses.map(a => a.multiaddr.toString()).slice(0, MAX_SHARED_ADDRS)
    } catch {
      return []
    }
  }

  /** Adds addresses for `peer` learned from the coordinator (never for ourselves). */
  async learnAddresses (peer: string, addrs: string[]): Promise<void> {
    if (peer === this.self || addrs.length === 0) return
    try {
      await this.host.peerStore.merge(peerIdFromString(peer), { multiaddrs: addrs.slice(0, MAX_SHARED_ADDRS).map(a => multiaddr(a)) })
    } catch (err) {
      log('ignored addresses for %s: %s', peer, (err as Error).message)
    }
  }

  /** Forgets a peer's outbound stream (after it left the job). */
  forget (peer: string): void {
    const o = this.outboxes.get(peer)
    if (o === undefined) return
    this.outboxes.delete(peer)
    this.routeLog.forget(peer)
    o.queue.length = 0
    o.framed?.abort(new Error('peer forgotten'))
  }

  private async pump (to: string, o: Outbox): Promise<void> {
    o.pumping = true
    // the frame the current stream was opened for: a write failing there is final; a stream kept
    // from earlier frames may be dead (the peer restarted, a relay cut it): one fresh one is tried
    let openedFor: Uint8Array | Uint8ArrayList | undefined
    try {
      while (o.queue.length > 0 && this.started) {
        const bytes = o.queue[0]
        const via = this.overlay.why(to)
        if (via !== undefined) {
          if (o.framed !== undefined) this.retire(o)
          await this.sendOverlay(to, o, via)
          continue
        }
        if (o.framed !== undefined && !this.fits(o, bytes.length)) this.retire(o)
        let framed = o.framed
        if (framed === undefined) {
          let opened: { stream: Stream, conn?: Connection } | undefined
          try {
            opened = await this.openOrWait(to, o, bytes.length)
          } catch (err) {
            const overlay = this.started ? this.overlay.link() : undefined
            if (!(err instanceof RouteLimitError)) {
              if (overlay === undefined) throw err
              // neither a direct nor a relayed connection opened: the overlay carries this peer's frames for a while
              log('no connection to %s (%s): frames go over the overlay', to, (err as Error).message)
              this.overlay.fallbacks.fellBack(to, `no direct or relayed connection opened (${(err as Error).message.slice(0, 160)})`)
              continue
            }
            if (overlay !== undefined) {
              // this frame fits no relayed connection: the overlay chunks it (the rest keep the relay)
              await this.sendOverlay(to, o, `the frame fits no relayed connection (${err.message.slice(0, 160)})`)
              continue
            }
            // this frame cannot cross the relay that is the only way to the peer: drop it, not the rest
            log('frame of %d bytes to %s dropped: %s', bytes.length, to, err.message)
            this.stats.routeLimited++
            this.stats.dropped++
            o.queue.shift()
            continue
          }
          // a slow connection: this frame takes the overlay while it opens (overlay.why says so)
          if (opened === undefined) continue
          framed = this.adopt(to, o, opened, bytes.length)
          openedFor = bytes
        }
        const stream = framed
        try {
          await this.write(bytes.length, async () => { await stream.write(bytes, { signal: AbortSignal.timeout(30_000) }) })
        } catch (err) {
          stream.abort(err as Error)
          o.framed = undefined
          if (openedFor === bytes) {
            // a fresh stream failed at once: the connection is not usable; the overlay takes over when there is one
            if (this.overlay.link() === undefined || !this.started) throw err
            this.overlay.fallbacks.fellBack(to, `a fresh stream failed (${(err as Error).message.slice(0, 160)})`)
          }
          continue
        }
        o.queue.shift()
        this.stats.framesSent++
        this.stats.bytesSent += bytes.length
        this.routeLog.count(to, bytes.length)
      }
    } catch (err) {
      // The peer is gone or unreachable: drop what was queued for it. The all-reduce's
      // deadline handles the missing data; the next send dials afresh.
      log('send to %s failed: %s', to, (err as Error).message)
      this.stats.dropped += o.queue.length
      o.queue.length = 0
      o.framed?.abort(err as Error)
      o.framed = undefined
      o.conn = undefined
    } finally {
      o.pumping = false
    }
  }

  /**
   * A stream to `to`, or undefined when the connection is slow to open and the overlay is there:
   * frames take the overlay until it opens (then the outbox adopts its stream) or fails (then the
   * overlay stays the route for a while). Without an overlay: the stream, however long it takes.
   */
  private async openOrWait (to: string, o: Outbox, len: number): Promise<{ stream: Stream, conn?: Connection } | undefined> {
    const attempt = this.openStream(to, len, o.conn)
    if (this.overlay.link() === undefined) return await attempt
    let timer: ReturnType<typeof setTimeout> | undefined
    const slow = new Promise<'slow'>(resolve => { timer = setTimeout(() => { resolve('slow') }, this.overlayWaitMs) })
    try {
      const first = await Promise.race([attempt, slow])
      if (first !== 'slow') return first
    } finally {
      clearTimeout(timer)
    }
    this.overlay.fallbacks.dialing(to)
    attempt.then(opened => {
      this.overlay.fallbacks.connected(to)
      if (!this.started || o.framed !== undefined || this.outboxes.get(to) !== o) { opened.stream.abort(new Error('not needed')); return }
      log('the connection to %s opened: frames leave the overlay', to)
      this.adopt(to, o, opened, len)
    }, (err: Error) => {
      if (err instanceof RouteLimitError) { this.overlay.fallbacks.connected(to); return }
      this.overlay.fallbacks.fellBack(to, `no direct or relayed connection opened (${err.message.slice(0, 160)})`)
    })
    return undefined
  }

  /** The outbox's stream from now on (and relayed connections to the peer left used up and empty are closed). */
  private adopt (to: string, o: Outbox, opened: { stream: Stream, conn?: Connection }, len: number): FramedStream {
    const framed = o.framed = new FramedStream(opened.stream, { maxFrameBytes: TRAINING_MAX_FRAME })
    o.conn = opened.conn
    // a fresh relayed connection has its whole budget: the used-up ones go
    const spent = wireBytes(len + Math.max(REPLY_ALLOWANCE_BYTES, len))
    for (const c of this.host.getConnections(peerIdFromString(to))) if (c !== opened.conn) closeIfRedundant(this.host, c, undefined, spent)
    return framed
  }

  /** Sends the queue's first frame over the overlay (chunked, every chunk acked); a failure drops the queue (the caller's catch). */
  private async sendOverlay (to: string, o: Outbox, why: string): Promise<void> {
    const link = this.overlay.link()
    const bytes = o.queue[0]
    const frame = bytes instanceof Uint8Array ? bytes : bytes.subarray()
    if (link === undefined || frame.length > link.maxFrameBytes) {
      log('frame of %d bytes to %s dropped: above what the overlay carries', frame.length, to)
      this.stats.routeLimited++
      this.stats.dropped++
      o.queue.shift()
      return
    }
    const sent = await this.write(frame.length, async () => await link.sendFrame(to, frame, AbortSignal.any([AbortSignal.timeout(OVERLAY_FRAME_TIMEOUT_MS), this.overlay.signal])))
    o.queue.shift()
    this.stats.framesSent++
    this.stats.bytesSent += frame.length
    this.stats.overlayFramesSent++
    this.routeLog.noteOverlay(to, sent.relays, why)
    this.routeLog.count(to, frame.length)
  }

  /** A whole frame that came over the overlay: the same checks and listeners as one read from a stream. */
  private onOverlayFrame (from: string, frame: Uint8Array): void {
    if (!this.started) return
    let msg: TrainingMessage
    try {
      msg = decodeTrainingMessage(frame)
    } catch (err) {
      try { this.onBadInput?.(peerIdFromString(from), new WireError('TRAINING_MESSAGE_INVALID', `training message from ${from} (over the overlay) does not decode`, { cause: err })) } catch {}
      return
    }
    this.stats.framesReceived++
    this.stats.bytesReceived += frame.length
    this.stats.overlayFramesReceived++
    this.members.onReceive(Date.now(), from, msg)
    // no connection to the sender: our answers go the way it came (no dial that would fail first)
    let connected = false
    try { connected = this.host.getConnections(peerIdFromString(from)).some(c => c.status === 'open') } catch {}
    if (!connected) this.overlay.fallbacks.heardVia(from)
    this.dispatch(from, msg)
  }

  /**
   * Whether the next frame may go on the current stream: always on a direct connection; on a
   * relayed one while no direct connection to the peer exists (DCUtR, or the peer dialled us),
   * the relay still allows the frame plus a part of the same size coming the other way (the
   * relay counts both directions), and the connection is not near the relay's duration limit.
   */
  private fits (o: Outbox, len: number): boolean {
    const c = o.conn
    if (c === undefined) return true
    if (c.status !== 'open') return false
    const left = limitBytesLeft(c)
    if (left === undefined) return true
    if (this.host.getConnections(c.remotePeer).some(x => x.status === 'open' && x.limits === undefined)) return false
    if (Date.now() - c.timeline.open > RELAYED_MAX_AGE_MS) return false
    return left >= wireBytes(len + Math.max(REPLY_ALLOWANCE_BYTES, len))
  }

  /** Ends the current stream after what was written on it (the peer reads it to the end). */
  private retire (o: Outbox): void {
    const f = o.framed
    const conn = o.conn
    o.framed = undefined
    void f?.close({ signal: AbortSignal.timeout(10_000) }).catch((err: Error) => { f.abort(err) }).finally(() => { if (conn !== undefined) closeIfRedundant(this.host, conn, f?.stream) })
  }

  /** The route each training peer was last reached on, with the frames and bytes sent on each kind. */
  routes (): Record<string, TrainingRoute> { return this.routeLog.all() }

  /** One write under the send cap; stats.sendBusyMs follows the pacer's busy time. */
  private async write<R> (len: number, write: () => Promise<R>): Promise<R> {
    try { return await this.pacer.write(len, write) } finally { this.stats.sendBusyMs = this.pacer.busyMs }
  }

  /**
   * A stream to `to` that can carry a frame of `len` bytes: through the route book when the host
   * has one (an unlimited connection first; a relayed one with room for it; a fresh relayed one
   * when the relay's budget or age is used up), else on any open connection or a dial. One
   * retry: a connection the remote just opened to us may not be registered yet.
   */
  private async openStream (to: string, len: number, previous?: Connection): Promise<{ stream: Stream, conn?: Connection }> {
    const peer = peerIdFromString(to)
    for (let attempt = 0; ; attempt++) {
      const signal = AbortSignal.timeout(15_000)
      try {
        if (this.routeBook !== undefined) {
          let conn = await this.routeBook.connectionFor(peer, len, { signal, replyBytes: Math.max(REPLY_ALLOWANCE_BYTES, len) })
          if (conn.limits !== undefined && Date.now() - conn.timeline.open > RELAYED_MAX_AGE_MS) conn = await (this.host as Host).dial(peer, { signal, force: true })
          const stream = await conn.newStream(ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true })
          this.routeLog.noteConnection(to, this.routeBook.classify(conn), conn, previous)
          return { stream, conn }
        }
        const conn = this.host.getConnections(peer).find(c => c.status === 'open')
        if (conn !== undefined) return { stream: await conn.newStream(ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true }), conn }
        return { stream: await this.host.dialProtocol(peer, ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true }) }
      } catch (err) {
        if (err instanceof RouteLimitError || attempt >= 1 || !this.started) throw err
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    }
  }

  private async readLoop (stream: Stream, connection: Connection, framed: FramedStream): Promise<void> {
    this.inbound.add(framed)
    const from = connection.remotePeer.toString()
    try {
      for (;;) {
        const frame = await framed.read()
        if (frame === undefined) {
          // the sender moved to another connection (or stopped): close our end too, so the stream
          // (and a relayed connection left with none) goes away
          await stream.close({ signal: AbortSignal.timeout(2000) }).catch((err: Error) => { stream.abort(err) })
          break
        }
        let msg: TrainingMessage
        try {
          msg = decodeTrainingMessage(frame)
        } catch (err) {
          throw new WireError('TRAINING_MESSAGE_INVALID', `training message from ${from} does not decode`, { cause: err })
        }
        this.stats.framesReceived++
        this.stats.bytesReceived += frame.length
        this.members.onReceive(Date.now(), from, msg)
        this.dispatch(from, msg)
      }
    } catch (err) {
      if (err instanceof WireError) {
        // an honest member's early slice is no larger than the job's model; anything larger is charged
        const declared = (err as WireError & { declaredBytes?: number }).declaredBytes ?? Infinity
        const earlySlice = err.code === 'FRAME_TOO_LARGE' && this.members.limitOf(Date.now(), from) === 0 && declared <= this.members.earlySliceBytes(Date.now())
        if (!wasHandled(err) && !earlySlice) this.onBadInput?.(connection.remotePeer, err)
        // tell the peer why before dropping the stream (as every dbc protocol does)
        // (flushed with close() first: abort() alone discards what is still unsent)
        try {
          stream.send(encodeFrame(dbc.common.v1.ProtocolError.encode({ code: err.code, message: err.message }).finish()))
          await stream.close({ signal: AbortSignal.timeout(2000) })
        } catch {}
      }
      framed.abort(err as Error)
    } finally {
      this.inbound.delete(framed)
      closeIfRedundant(this.host, connection, stream)
    }
  }

  private dispatch (from: string, msg: TrainingMessage): void {
    for (const fn of this.listeners) {
      try {
        fn(from, msg)
      } catch (err) {
        log.error('training listener failed: %s', (err as Error).message)
      }
    }
  }
}
