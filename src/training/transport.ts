// /dbc/allreduce/1.0.0: TrainingMessage frames between the peers of training jobs. One
// long-lived outbound stream per remote peer carries everything we send it (rounds reuse the
// stream: opening one costs far more than a round's chunk on loopback); inbound streams are
// only read. Messages to ourselves are delivered in-process. Every outbound queue is bounded.
// A slice travels as its all-reduce parts (at most 1 MiB each, DEFAULT_PART_VALUES), one frame
// each, written back to back on that stream: the receiver averages each part as it arrives.
// Members behind NAT: the protocol runs on relayed (limited) connections too; the route book
// (src/net/routes) picks each peer's connection, and a frame is written only where it fits
// what the relay still allows (else on a direct connection that appeared, or a fresh relayed one).
import type { Stream, Connection, PeerId, Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { logger } from '@libp2p/logger'
import { performance } from 'node:perf_hooks'
import { FramedStream } from '../net/framed.js'
import { encodeFrame } from '../wire/frame.js'
import { dbc } from '../wire/gen/wire.js'
import $protobuf from 'protobufjs/minimal.js'
import { Uint8ArrayList } from 'uint8arraylist'
import { WireError } from '../errors.js'
import { guardedHandle, wasHandled, SMALL_FRAME_BYTES } from '../net/guard/index.js'
import { TrainingMembers } from './members.js'
import { RouteBook, RouteLimitError, limitBytesLeft, wireBytes, REPLY_ALLOWANCE_BYTES, type RouteInfo, type RouteKind } from '../net/routes/index.js'
import { RELAY_DURATION_LIMIT_MS, type Host } from '../net/host.js'

export const ALLREDUCE_PROTOCOL = '/dbc/allreduce/1.0.0'
/** A model's full state travels in one frame (StateResponse); 64 MiB = 16M float32 parameters. */
export const TRAINING_MAX_FRAME = 64 * 1024 * 1024
/** Messages waiting to be written to one peer before new ones are dropped. */
export const MAX_QUEUED_PER_PEER = 1024

const Codec = dbc.training.v1.TrainingMessage
type T = typeof dbc.training.v1

/** A decoded message: protobufjs fills every scalar with its default, so bodies are complete. */
export interface TrainingMessage {
  invite?: InstanceType<T['Invite']> | null
  inviteReply?: InstanceType<T['InviteReply']> | null
  roundStart?: InstanceType<T['RoundStart']> | null
  slice?: InstanceType<T['SliceChunk']> | null
  stateRequest?: InstanceType<T['StateRequest']> | null
  stateResponse?: InstanceType<T['StateResponse']> | null
  join?: InstanceType<T['Join']> | null
  report?: InstanceType<T['RoundReport']> | null
  finish?: InstanceType<T['Finish']> | null
}

export type TrainingMessageInput = dbc.training.v1.TrainingMessage.$Properties

export function decodeTrainingMessage (frame: Uint8Array): TrainingMessage {
  return Codec.decode(frame) as unknown as TrainingMessage
}

/** Slice data at least this large is not copied into the encoded message (zero-copy encode). */
const ZERO_COPY_BYTES = 16 * 1024

/**
 * Encodes a message; a large SliceChunk's data is not copied: the result is then a list of
 * [outer tag + length, the chunk's other fields, data tag + length, the data itself], which is
 * the same protobuf message (fields may come in any order). All-reduce moves megabytes a round,
 * and the copy was most of its garbage.
 */
export function encodeTrainingMessage (msg: TrainingMessageInput): Uint8Array | Uint8ArrayList {
  const data = msg.slice?.data
  if (msg.slice == null || data == null || data.length < ZERO_COPY_BYTES) return Codec.encode(msg).finish()
  const head = dbc.training.v1.SliceChunk.encode({ ...msg.slice, data: undefined }).finish()
  const dataPrefix = $protobuf.Writer.create().uint32((7 << 3) | 2).uint32(data.length).finish()
  const sliceLength = head.length + dataPrefix.length + data.length
  const outer = $protobuf.Writer.create().uint32((4 << 3) | 2).uint32(sliceLength).finish()
  return new Uint8ArrayList(outer, head, dataPrefix, data)
}

/**
 * Closes a relayed connection that carries no stream while another connection to the same peer
 * is open: each relay sets up few circuits per peer (RELAY_STREAMS in src/net/host.ts), and the
 * used-up ones the all-reduce moved away from would otherwise hold them.
 */
export function closeIfRedundant (host: Pick<TrainingHost, 'getConnections'>, conn: Connection, ending?: Stream, spentBelow?: number): void {
  if (spentBelow !== undefined && (limitBytesLeft(conn) ?? Infinity) >= spentBelow && Date.now() - conn.timeline.open <= RELAYED_MAX_AGE_MS) return
  // a DCUtR attempt (one per relayed connection, futile on private addresses) holds no data of ours
  if (conn.limits === undefined || conn.status !== 'open' || conn.streams.some(s => s !== ending && s.status === 'open' && s.protocol !== '/libp2p/dcutr')) return
  if (!host.getConnections(conn.remotePeer).some(c => c !== conn && c.status === 'open')) return
  void conn.close().catch(() => {})
}

export type TrainingListener = (from: string, msg: TrainingMessage) => void

const log = logger('dbc:training:transport')

interface Outbox {
  queue: Array<Uint8Array | Uint8ArrayList>
  pumping: boolean
  framed?: FramedStream
  /** The connection `framed` runs on (a relayed one is checked before every frame). */
  conn?: Connection
}

/** How this node reaches one training peer: the route of its outbound stream, and what went each way. */
export interface TrainingRoute extends RouteInfo {
  /** Frames and bytes sent to this peer on each kind of route. */
  frames: Partial<Record<RouteKind, number>>
  bytes: Partial<Record<RouteKind, number>>
  /** Relayed connections opened afresh because one was used up (bytes or age). */
  freshRelayed: number
}

/**
 * A relayed connection this old is replaced before the next frame: our relays cut one at
 * RELAY_DURATION_LIMIT_MS (and the client reads the limit the relay sends in the wrong unit, so
 * `limits.seconds` cannot be used). Another relay's shorter limit shows as a failed write.
 */
export const RELAYED_MAX_AGE_MS = RELAY_DURATION_LIMIT_MS - 60_000

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
}

/** The minimum of a libp2p node this transport uses (a full node also gets a route book: dial and connection events). */
export type TrainingHost = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'peerStore' | 'getConnections'>

/** Addresses per peer shared in a RoundStart (bounded: a remote peer fills this). */
export const MAX_SHARED_ADDRS = 8
/** Peers whose route this transport remembers (for status and tests; the oldest fall out). */
export const MAX_ROUTES = 1024

export interface TrainingTransportInit {
  onBadInput?: (peer: PeerId, err: WireError) => void
  /**
   * The largest frame `peer` may send beyond what this transport learned itself (the jobs this
   * node coordinates or works in); undefined or less than SMALL_FRAME_BYTES adds nothing.
   */
  frameLimit?: (peer: string) => number | undefined
  /** Caps what this node sends on the protocol, bytes/s over all peers (an operator's uplink share; benches throttle a member with it). */
  maxSendBytesPerSec?: number
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
  readonly stats: TransportStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, dropped: 0, routeLimited: 0, sendBusyMs: 0 }
  /** Picks connections that fit (relay limits, DCUtR on first contact); absent for a host without dial/events (test doubles). */
  private routeBook: RouteBook | undefined
  private readonly routeTo = new Map<string, TrainingRoute>()
  private readonly maxSendBytesPerSec?: number
  /** Writes in flight over all peers, since when; and when the send cap lets the next write go. */
  private writing = 0
  private busySince = 0
  private sendSlotAt = 0

  constructor (host: TrainingHost, init: TrainingTransportInit = {}) {
    this.host = host
    this.self = host.peerId.toString()
    this.onBadInput = init.onBadInput
    this.frameLimitHook = init.frameLimit
    this.maxSendBytesPerSec = init.maxSendBytesPerSec
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
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
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
    this.routeTo.delete(peer)
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
        if (o.framed !== undefined && !this.fits(o, bytes.length)) this.retire(o)
        if (o.framed === undefined) {
          let opened: { stream: Stream, conn?: Connection }
          try {
            opened = await this.openStream(to, bytes.length, o.conn)
          } catch (err) {
            if (!(err instanceof RouteLimitError)) throw err
            // this frame cannot cross the relay that is the only way to the peer: drop it, not the rest
            log('frame of %d bytes to %s dropped: %s', bytes.length, to, err.message)
            this.stats.routeLimited++
            this.stats.dropped++
            o.queue.shift()
            continue
          }
          o.framed = new FramedStream(opened.stream, { maxFrameBytes: TRAINING_MAX_FRAME })
          o.conn = opened.conn
          // relayed connections to this peer left used up and empty (a fresh one has its whole budget)
          const spent = wireBytes(bytes.length + Math.max(REPLY_ALLOWANCE_BYTES, bytes.length))
          for (const c of this.host.getConnections(peerIdFromString(to))) if (c !== opened.conn) closeIfRedundant(this.host, c, undefined, spent)
          openedFor = bytes
        }
        if (this.writing++ === 0) this.busySince = performance.now()
        try {
          await this.throttle(bytes.length)
          await o.framed.write(bytes, { signal: AbortSignal.timeout(30_000) })
        } catch (err) {
          if (openedFor === bytes) throw err
          o.framed.abort(err as Error)
          o.framed = undefined
          continue
        } finally {
          if (--this.writing === 0) this.stats.sendBusyMs += performance.now() - this.busySince
        }
        o.queue.shift()
        this.stats.framesSent++
        this.stats.bytesSent += bytes.length
        this.countRoute(to, bytes.length)
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
  routes (): Record<string, TrainingRoute> { return Object.fromEntries(this.routeTo) }

  private noteRoute (to: string, conn: Connection, previous: Connection | undefined): void {
    if (this.routeBook === undefined) return
    const old = this.routeTo.get(to)
    const info = this.routeBook.classify(conn)
    const fresh = previous !== undefined && previous !== conn && previous.limits !== undefined && conn.limits !== undefined
    this.routeTo.delete(to)
    this.routeTo.set(to, { ...info, frames: old?.frames ?? {}, bytes: old?.bytes ?? {}, freshRelayed: (old?.freshRelayed ?? 0) + (fresh ? 1 : 0) })
    // bounded: peers of past jobs fall out oldest first
    if (this.routeTo.size > MAX_ROUTES) this.routeTo.delete(this.routeTo.keys().next().value as string)
  }

  private countRoute (to: string, len: number): void {
    const r = this.routeTo.get(to)
    if (r === undefined) return
    r.frames[r.kind] = (r.frames[r.kind] ?? 0) + 1
    r.bytes[r.kind] = (r.bytes[r.kind] ?? 0) + len
    r.at = Date.now()
  }

  /** Waits for this write's slot under maxSendBytesPerSec (one clock for all peers: a shared uplink). */
  private async throttle (bytes: number): Promise<void> {
    const rate = this.maxSendBytesPerSec
    if (rate === undefined || !(rate > 0)) return
    const now = performance.now()
    const at = Math.max(now, this.sendSlotAt)
    this.sendSlotAt = at + (bytes / rate) * 1000
    if (at > now) await new Promise(resolve => setTimeout(resolve, at - now))
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
          this.noteRoute(to, conn, previous)
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
