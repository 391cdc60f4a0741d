// /dbc/allreduce/1.0.0: TrainingMessage frames between the peers of training jobs. One
// long-lived outbound stream per remote peer carries everything we send it (rounds reuse the
// stream: opening one costs far more than a round's chunk on loopback); inbound streams are
// only read (inbound.ts). Messages to ourselves are delivered in-process. Every outbound queue is bounded.
// A slice travels as its all-reduce parts (at most 1 MiB each, DEFAULT_PART_VALUES), one frame
// each, written back to back on that stream: the receiver averages each part as it arrives.
// Members behind NAT: the protocol runs on relayed (limited) connections too; the route book
// (src/net/routes) picks each peer's connection, and a frame is written only where it fits
// what the relay still allows (else on a direct connection that appeared, or a fresh relayed one).
// When no connection opens at all (a coordinator behind its own NAT, failing relayed dials), or a
// frame fits no relayed connection, frames travel the overlay instead: sealed envelopes through
// relays, chunked and acked (overlay-frames.ts; a frame above the receiver's budget in pieces).
// Each job's spec may set its own routing (overlay: that job's frames never take a connection,
// and its peers are kept off connections; direct: never the overlay): job-routes in overlay-route.ts.
import type { Stream, Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { addrsFromCoordinator, scopeOf } from './coordinator-addrs.js'
import { logger } from '@libp2p/logger'
import type { Uint8ArrayList } from 'uint8arraylist'
import { WireError } from '../errors.js'
import { guardedHandle, SMALL_FRAME_BYTES } from '../net/guard/index.js'
import { TrainingMembers } from './members.js'
import { RouteLimitError } from '../net/routes/index.js'
import { OverlayRoute, JobRoutes, type TrainingRouting } from './overlay-route.js'
import { OverlayFrames } from './overlay-frames.js'
import { TrainingRouteLog, type TrainingRoute } from './route-log.js'
import { TrainingInbound } from './inbound.js'
import { SendPacer } from './send-pacer.js'
import { PeerStreams, clearQueue, dequeue, OUTBOX_IDLE_MS, type Outbox } from './streams.js'
import { decodeTrainingMessage, encodeTrainingMessage, jobOf, type TrainingMessage, type TrainingMessageInput } from './messages.js'
import { ALLREDUCE_PROTOCOL, TRAINING_MAX_FRAME, MAX_QUEUED_PER_PEER, MAX_QUEUED_BYTES_PER_PEER, OVERLAY_DIAL_WAIT_MS, MAX_SHARED_ADDRS, type TrainingListener, type TransportStats, type TrainingHost, type TrainingTransportInit } from './transport-types.js'

export { ALLREDUCE_PROTOCOL, TRAINING_MAX_FRAME, MAX_QUEUED_PER_PEER, OVERLAY_DIAL_WAIT_MS, MAX_SHARED_ADDRS, type TrainingListener, type TransportStats, type TrainingHost, type TrainingTransportInit, type TrainingPrivacy } from './transport-types.js'
export { decodeTrainingMessage, encodeTrainingMessage, type TrainingMessage, type TrainingMessageInput } from './messages.js'
export { MAX_ROUTES, type TrainingRoute } from './route-log.js'
export { closeIfRedundant, RELAYED_MAX_AGE_MS } from './relayed.js'
export { OVERLAY_FRAME_TIMEOUT_MS } from './overlay-frames.js'

const log = logger('dbc:training:transport')

export class TrainingTransport {
  readonly host: TrainingHost
  readonly self: string
  private readonly outboxes = new Map<string, Outbox>()
  /** What arrives: inbound streams and overlay frames, decoded and checked, to the listeners. */
  private readonly inbound: TrainingInbound
  private readonly onBadInput?: (peer: PeerId, err: WireError) => void
  private readonly frameLimitHook?: (peer: string) => number | undefined
  /** Who this node trains with, learned from the messages it sends and accepts. */
  readonly members = new TrainingMembers(TRAINING_MAX_FRAME)
  private started = false
  readonly stats: TransportStats = { framesSent: 0, bytesSent: 0, framesReceived: 0, bytesReceived: 0, dropped: 0, routeLimited: 0, sendBusyMs: 0, overlayFramesSent: 0, overlayFramesReceived: 0, noOverlay: 0, piecesSent: 0, piecesReceived: 0, pieceResends: 0, piecesRefused: 0 }
  /** The outbound streams: the connection each peer's frames take. */
  private readonly streams: PeerStreams
  private readonly routeLog = new TrainingRouteLog()
  private readonly pacer: SendPacer
  /** When frames take the overlay (no connection opened, or the peer reached us that way; routing: overlay). */
  readonly overlay: OverlayRoute
  private detachFrames: (() => void) | undefined
  /** Frames over the overlay, whole or in pieces. */
  readonly overlayFrames: OverlayFrames
  /** Each job's own routing (its spec's), set by its session (coordinator) or worker (member) while it runs here. */
  readonly jobRoutes: JobRoutes
  private readonly privacy: TrainingTransportInit['privacy']
  private expireTimer: ReturnType<typeof setInterval> | undefined

  constructor (host: TrainingHost, init: TrainingTransportInit = {}) {
    this.host = host
    this.self = host.peerId.toString()
    this.onBadInput = init.onBadInput
    this.frameLimitHook = init.frameLimit
    this.pacer = new SendPacer(init.maxSendBytesPerSec)
    this.privacy = init.privacy
    // only jobs this node coordinates ever hold peers private (review F0/F1)
    this.jobRoutes = new JobRoutes(this.self, (job, coordinator, peers) => {
      if (coordinator === this.self) this.privacy?.jobEnded(job)
      // the job's end, here (done, failed, cancelled; coordinator or member): peers no other job trains with are released
      for (const p of peers) this.release(p)
    })
    this.overlayFrames = new OverlayFrames({
      signal: () => this.overlay.signal,
      frameLimit: peer => this.frameLimit(peer),
      deliver: (peer, frame) => { this.inbound.overlayFrame(peer, frame) },
      malformed: (peer, reason) => { try { this.onBadInput?.(peerIdFromString(peer), new WireError('TRAINING_MESSAGE_INVALID', `training frame piece from ${peer} (over the overlay): ${reason}`)) } catch {} },
      stats: this.stats,
      wholeFrameBytes: () => this.overlay.link('auto')?.maxFrameBytes
    })
    this.overlay = new OverlayRoute({
      ...(init.overlay !== undefined ? { link: init.overlay } : {}),
      ...(init.routing !== undefined ? { routing: init.routing } : {}),
      ...(init.now !== undefined ? { now: init.now } : {}),
      // the background try that leaves the overlay
      connect: async (peer, signal) => { await this.streams.connect(peer, signal) },
      connectedNow: peer => { try { return this.host.getConnections(peerIdFromString(peer)).some(c => c.status === 'open') } catch { return false } }
    })
    this.inbound = new TrainingInbound({ host, members: this.members, stats: this.stats, onBadInput: init.onBadInput, started: () => this.started, heardVia: peer => { this.overlay.fallbacks.heardVia(peer) } })
    this.streams = new PeerStreams({ host, routeLog: this.routeLog, overlay: this.overlay, overlayWaitMs: init.overlayWaitMs ?? OVERLAY_DIAL_WAIT_MS, started: () => this.started, current: (to, o) => this.outboxes.get(to) === o })
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
    this.streams.start()
    // limited (relayed) connections too: a member behind NAT may be reachable no other way;
    // what a relay carries is bounded by its limits, and frames by the members-only caps
    await guardedHandle(this.host, ALLREDUCE_PROTOCOL, async (stream: Stream, connection: Connection, g) => {
      const from = connection.remotePeer.toString()
      await this.inbound.read(stream, connection, g.open({ maxFrameBytes: () => this.frameLimit(from) }))
    }, { maxInboundStreams: 256, runOnLimitedConnection: true, expectsRequest: true })
    this.overlay.start()
    // frames over the overlay: the same caps as a stream (large ones only from members), within the overlay's budgets
    const link = this.overlay.link()
    this.detachFrames = link?.attachFrames({
      maxBytes: peer => Math.min(this.frameLimit(peer), link.maxFrameBytes),
      onFrame: (peer, frame) => { if (this.started) this.overlayFrames.receive(peer, frame) }
    })
    // a frame whose pieces stopped coming is dropped even when no further piece comes to expire it
    // and outboxes of peers no job here trains with any more are released once idle
    this.expireTimer = setInterval(() => { this.overlayFrames.pieces.expire(Date.now()); this.releaseIdle(Date.now()) }, 30_000)
    this.expireTimer.unref?.()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.overlay.stop()
    clearInterval(this.expireTimer)
    this.overlayFrames.clear()
    this.detachFrames?.()
    this.detachFrames = undefined
    this.streams.close()
    await this.host.unhandle(ALLREDUCE_PROTOCOL)
    for (const o of this.outboxes.values()) { clearQueue(o); o.framed?.abort(new Error('training transport stopped')) }
    this.outboxes.clear()
    this.inbound.abortAll(new Error('training transport stopped'))
  }

  /** Subscribes to every message received; returns the unsubscribe function. */
  listen (fn: TrainingListener): () => void { return this.inbound.listen(fn) }

  /**
   * Queues a message for `to`, routed as `routing` says, else as its job's (jobRoutes: `coordinator`'s
   * job, this node's unless named), else as the node's. Only frames of a job this node coordinates
   * touch the private set (review F0/F1). Never throws; a full queue drops it.
   */
  send (to: string, msg: TrainingMessageInput, routing?: TrainingRouting, coordinator: string = this.self): void {
    const bytes = encodeTrainingMessage(msg)
    if (to !== this.self) this.members.onSend(Date.now(), to, msg)
    if (to === this.self) {
      const decoded = decodeTrainingMessage(bytes instanceof Uint8Array ? bytes : bytes.subarray())
      queueMicrotask(() => { this.dispatch(this.self, decoded) })
      return
    }
    let o = this.outboxes.get(to)
    if (o === undefined) { o = { queue: [], queuedBytes: 0, pumping: false }; this.outboxes.set(to, o) }
    // bounded in frames and in bytes per peer: a peer that reads slowly (or asks for the state
    // again and again) cannot make this node hold more than that for it. Not in all: a node-wide
    // cap shared first come, first served let slow members fill it and honest members' frames be
    // dropped (review s11 N1); what a node holds is per-peer x the peers of its jobs
    if (o.queue.length >= MAX_QUEUED_PER_PEER || o.queuedBytes + bytes.byteLength > MAX_QUEUED_BYTES_PER_PEER) { this.stats.dropped++; return }
    const job = jobOf(msg)
    this.jobRoutes.notePeer(job, coordinator, to)
    const own = this.jobRoutes.get(job, coordinator)
    const mode = this.overlay.mode(routing ?? own)
    // our overlay-only job keeps its peer off connections; ours allowing them frees one only training made private
    if (routing === undefined && own !== undefined && coordinator === this.self && job !== undefined) {
      if (mode === 'overlay') this.privacy?.overlayOnly(to, this.overlay.mode() === 'overlay' ? undefined : job)
      else this.privacy?.connectionWanted(to)
    }
    o.queue.push({ bytes, mode })
    o.queuedBytes += bytes.byteLength
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

  /**
   * Adds addresses for `peer` that the coordinator `from` named (never for ourselves): loopback and
   * private ones only as far as our connection to `from` is on loopback or a private network
   * (coordinator-addrs.ts, review s13 L2).
   */
  async learnAddresses (peer: string, addrs: string[], from: string): Promise<void> {
    if (peer === this.self || addrs.length === 0) return
    try {
      const scopes = this.host.getConnections(peerIdFromString(from)).map(c => scopeOf(c.remoteAddr))
      const { kept, dropped } = addrsFromCoordinator(addrs.slice(0, MAX_SHARED_ADDRS), scopes)
      if (dropped > 0) log('%d of the addresses %s named for %s left out (loopback or private, and it is not)', dropped, from, peer)
      if (kept.length > 0) await this.host.peerStore.merge(peerIdFromString(peer), { multiaddrs: kept })
    } catch (err) {
      log('ignored addresses for %s: %s', peer, (err as Error).message)
    }
  }

  /**
   * A peer that no job running here sends frames to any more (the last one with it ended): what is
   * still queued for it goes out first (a job's last messages), then its stream ends and the
   * relayed connections the all-reduce opened to it (spares, fresh ones) are closed where nothing
   * else runs on them; a spare would otherwise hold a relay circuit (16 per connection at a relay)
   * until the relay's 10 min limit. Its route stays listed (status, job explain). Returns whether
   * it was released now (false: busy in another job, or still sending: released once drained).
   */
  release (peer: string): boolean {
    if (this.jobRoutes.busy(peer)) return false
    const o = this.outboxes.get(peer)
    if (o !== undefined && (o.pumping || o.queue.length > 0)) { o.releaseWhenDrained = true; return false }
    if (o !== undefined) this.outboxes.delete(peer)
    const f = o?.framed
    // a job that starts with the peer meanwhile keeps its connections
    const released = (): boolean => this.started && !this.jobRoutes.busy(peer)
    if (f === undefined) { this.streams.closeOpened(peer, released); return true }
    void f.close({ signal: AbortSignal.timeout(10_000) }).catch((err: Error) => { f.abort(err) }).finally(() => { this.streams.closeOpened(peer, released) })
    return true
  }

  /**
   * Releases the outboxes idle for OUTBOX_IDLE_MS of peers no running job here trains with: those
   * no job's end releases (a refusal sent to any peer that invited us, a frame after a job's end),
   * which each peer ever sent a frame kept for the daemon's life (review16c L2). Returns how many.
   */
  releaseIdle (now: number): number {
    let n = 0
    for (const [peer, o] of [...this.outboxes]) {
      if (o.pumping || o.queue.length > 0 || o.idleSince === undefined || now - o.idleSince < OUTBOX_IDLE_MS) continue
      if (this.release(peer)) n++
    }
    return n
  }

  /** Forgets a peer's outbound stream (after it left the job). */
  forget (peer: string): void {
    const o = this.outboxes.get(peer)
    if (o === undefined) return
    this.outboxes.delete(peer)
    this.routeLog.forget(peer)
    clearQueue(o)
    o.framed?.abort(new Error('peer forgotten'))
  }

  private async pump (to: string, o: Outbox): Promise<void> {
    o.pumping = true
    // the frame the current stream was opened for: a write failing there is final; a stream kept
    // from earlier frames may be dead (the peer restarted, a relay cut it): one fresh one is tried
    let openedFor: Uint8Array | Uint8ArrayList | undefined
    try {
      while (o.queue.length > 0 && this.started) {
        const { bytes, mode } = o.queue[0]
        const via = this.overlay.why(to, mode)
        if (via !== undefined) {
          if (o.framed !== undefined) this.streams.retire(o)
          await this.sendOverlay(to, o, via)
          continue
        }
        if (mode === 'overlay') {
          // an overlay-only job's frame never takes a connection: with no overlay it is dropped
          log('frame of %d bytes to %s dropped: its job is routed over the overlay, and this node runs none', bytes.length, to)
          this.stats.noOverlay++
          this.stats.dropped++
          dequeue(o)
          continue
        }
        if (o.framed !== undefined && !this.streams.fits(o, bytes.length)) this.streams.retire(o)
        let framed = o.framed
        if (framed === undefined) {
          let opened: { stream: Stream, conn?: Connection } | undefined
          try {
            opened = await this.streams.openOrWait(to, o, bytes.length, mode)
          } catch (err) {
            const overlay = this.started ? this.overlay.link(mode) : undefined
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
            dequeue(o)
            continue
          }
          // a slow connection: this frame takes the overlay while it opens (overlay.why says so)
          if (opened === undefined) continue
          framed = this.streams.adopt(to, o, opened, bytes.length)
          openedFor = bytes
        }
        const stream = framed
        try {
          await this.write(bytes.length, async () => { await stream.write(bytes, { signal: AbortSignal.timeout(30_000) }) })
        } catch (err) {
          log('a frame of %d bytes to %s failed on connection %s: %s', bytes.length, to, o.conn?.id, (err as Error).message)
          stream.abort(err as Error)
          o.framed = undefined
          if (openedFor === bytes) {
            // a fresh stream failed at once: the connection is not usable; the overlay takes over when there is one
            if (this.overlay.link(mode) === undefined || !this.started) throw err
            this.overlay.fallbacks.fellBack(to, `a fresh stream failed (${(err as Error).message.slice(0, 160)})`)
          }
          continue
        }
        dequeue(o)
        this.stats.framesSent++
        this.stats.bytesSent += bytes.length
        this.routeLog.count(to, bytes.length)
      }
    } catch (err) {
      // The peer is gone or unreachable: drop what was queued for it. The all-reduce's
      // deadline handles the missing data; the next send dials afresh.
      log('send to %s failed: %s', to, (err as Error).message)
      this.stats.dropped += clearQueue(o)
      o.framed?.abort(err as Error)
      o.framed = undefined
      o.conn = undefined
    } finally {
      o.pumping = false
      if (o.queue.length === 0) o.idleSince = Date.now()
      if (o.releaseWhenDrained === true && o.queue.length === 0 && this.outboxes.get(to) === o) { o.releaseWhenDrained = false; this.release(to) }
    }
  }

  /**
   * Sends the queue's first frame over the overlay (chunked, every chunk acked; above the
   * receiver's budget in pieces); a failure drops the queue (the caller's catch).
   */
  private async sendOverlay (to: string, o: Outbox, why: string): Promise<void> {
    const { bytes, mode } = o.queue[0]
    const link = this.overlay.link(mode)
    const frame = bytes instanceof Uint8Array ? bytes : bytes.subarray()
    if (link === undefined) {
      this.stats.routeLimited++
      this.stats.dropped++
      dequeue(o)
      return
    }
    const sent = await this.write(frame.length, async () => await this.overlayFrames.send(link, to, frame))
    dequeue(o)
    this.stats.framesSent++
    this.stats.bytesSent += frame.length
    this.stats.overlayFramesSent++
    this.routeLog.noteOverlay(to, sent.relays, sent.pieces > 0 ? `${why}; the last large frame went in ${sent.pieces} pieces` : why)
    this.routeLog.count(to, frame.length)
  }

  /** The route each training peer was last reached on, with the frames and bytes sent on each kind. */
  routes (): Record<string, TrainingRoute> { return this.routeLog.all() }

  /** One write under the send cap; stats.sendBusyMs follows the pacer's busy time. */
  private async write<R> (len: number, write: () => Promise<R>): Promise<R> {
    try { return await this.pacer.write(len, write) } finally { this.stats.sendBusyMs = this.pacer.busyMs }
  }

  /** Hands `msg` to every listener (also used by tests to deliver a message). */
  private dispatch (from: string, msg: TrainingMessage): void { this.inbound.dispatch(from, msg) }
}
