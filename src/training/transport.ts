// /dbc/allreduce/1.0.0: TrainingMessage frames between the peers of training jobs. One
// long-lived outbound stream per remote peer carries everything we send it (rounds reuse the
// stream: opening one costs far more than a round's chunk on loopback); inbound streams are
// only read. Messages to ourselves are delivered in-process. Every outbound queue is bounded.
// A slice travels as its all-reduce parts (at most 1 MiB each, DEFAULT_PART_VALUES), one frame
// each, written back to back on that stream: the receiver averages each part as it arrives.
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

export type TrainingListener = (from: string, msg: TrainingMessage) => void

const log = logger('dbc:training:transport')

interface Outbox {
  queue: Array<Uint8Array | Uint8ArrayList>
  pumping: boolean
  framed?: FramedStream
}

export interface TransportStats {
  framesSent: number
  bytesSent: number
  framesReceived: number
  bytesReceived: number
  dropped: number
  /** Time at least one write was in flight, ms: bytesSent over it is the send bandwidth (BandwidthEstimate). */
  sendBusyMs: number
}

/** The minimum of a libp2p node this transport uses. */
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
  readonly stats: TransportStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, dropped: 0, sendBusyMs: 0 }
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
    await guardedHandle(this.host, ALLREDUCE_PROTOCOL, async (stream: Stream, connection: Connection, g) => {
      const from = connection.remotePeer.toString()
      await this.readLoop(stream, connection, g.open({ maxFrameBytes: () => this.frameLimit(from) }))
    }, { maxInboundStreams: 256, runOnLimitedConnection: false, expectsRequest: true })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
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
    o.queue.length = 0
    o.framed?.abort(new Error('peer forgotten'))
  }

  private async pump (to: string, o: Outbox): Promise<void> {
    o.pumping = true
    let fresh = false
    try {
      while (o.queue.length > 0 && this.started) {
        if (o.framed === undefined) {
          const stream = await this.openStream(to)
          o.framed = new FramedStream(stream, { maxFrameBytes: TRAINING_MAX_FRAME })
          fresh = true
        }
        const bytes = o.queue[0]
        if (this.writing++ === 0) this.busySince = performance.now()
        try {
          await this.throttle(bytes.length)
          await o.framed.write(bytes, { signal: AbortSignal.timeout(30_000) })
        } catch (err) {
          // a stream kept from before the peer restarted (kill -9, back on a new connection) is dead:
          // open a fresh one once and send the same frame again
          if (fresh) throw err
          o.framed.abort(err as Error)
          o.framed = undefined
          fresh = true
          continue
        } finally {
          if (--this.writing === 0) this.stats.sendBusyMs += performance.now() - this.busySince
        }
        o.queue.shift()
        this.stats.framesSent++
        this.stats.bytesSent += bytes.length
      }
    } catch (err) {
      // The peer is gone or unreachable: drop what was queued for it. The all-reduce's
      // deadline handles the missing data; the next send dials afresh.
      log('send to %s failed: %s', to, (err as Error).message)
      this.stats.dropped += o.queue.length
      o.queue.length = 0
      o.framed?.abort(err as Error)
      o.framed = undefined
    } finally {
      o.pumping = false
    }
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
   * A stream on an open connection when there is one (either direction), else a dial. One
   * retry: a connection the remote just opened to us may not be registered yet.
   */
  private async openStream (to: string): Promise<Stream> {
    const peer = peerIdFromString(to)
    for (let attempt = 0; ; attempt++) {
      const conn = this.host.getConnections(peer).find(c => c.status === 'open')
      try {
        if (conn !== undefined) return await conn.newStream(ALLREDUCE_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
        return await this.host.dialProtocol(peer, ALLREDUCE_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      } catch (err) {
        if (attempt >= 1 || !this.started) throw err
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
        if (frame === undefined) break
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
