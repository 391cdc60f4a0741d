// /dbc/membership/1.0.0: the unstructured layer on real streams. Pumps three core machines
// (CyclonView shuffles, Gossip announcements, RandomWalks) with timers; every message is one
// MembershipMessage frame on a short-lived stream (shuffles are every few seconds, so stream
// reuse would buy little and cost liveness tracking).
import type { Libp2p, PeerId, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { FramedStream } from '../framed.js'
import { dbc } from '../../wire/gen/wire.js'
import { decodeMessage } from '../../wire/decode.js'
import { DbcError, WireError } from '../../errors.js'
import { encodeFrame } from '../../wire/frame.js'
import { createRng, type Rng } from '../../core/rng.js'
import { CyclonView, Gossip, RandomWalks, screenShuffle, type ViewEntry, type GossipItem } from '../../core/membership/index.js'
import { PeerScoreBook, type Offence } from '../../core/routing/score.js'
import { toHex } from '../../core/identity/index.js'
import { signAnnouncement, verifyAnnouncement, type Announcement } from './announce.js'
import { peerIdTextOf } from '../peer-ids.js'
import { guardedHandle, wasHandled, MAX_ADDRS_PER_DESCRIPTOR } from '../guard/index.js'

export const MEMBERSHIP_PROTOCOL = '/dbc/membership/1.0.0'
const MAX_FRAME = 256 * 1024

export interface PeerInfo {
  addrs: Uint8Array[]
  latE4?: number
  lonE4?: number
  vivaldi?: number[]
}

export interface MembershipServiceInit {
  secretKey: Uint8Array
  location?: { lat: number, lon: number }
  /** Current Vivaldi coordinate to advertise (wire form). */
  vivaldi?: () => number[] | undefined
  viewSize?: number
  shuffleLength?: number
  periodMs?: number
  responseTimeoutMs?: number
  fanout?: number
  gossipTtl?: number
  walkTtl?: number
  walkTimeoutMs?: number
  onAnnouncement?: (a: Announcement, from: string) => void
  /** Encoded SignedCapability records we can offer for an encoded CapabilityQuery. */
  matchWalk?: (query: Uint8Array) => Uint8Array[]
  /** What a descriptor told us about a peer (location, Vivaldi). */
  onPeerInfo?: (peer: string, info: PeerInfo) => void
  onPenalty?: (peer: string, offence: Offence, score: number, disconnect: boolean) => void
  scores?: PeerScoreBook<string>
  seed?: number
  now?: () => number
}

type Host = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'getMultiaddrs' | 'peerStore'> & Partial<Pick<Libp2p, 'getConnections'>>

export class MembershipService {
  readonly view: CyclonView<string, PeerInfo>
  readonly gossip: Gossip<string, Announcement>
  readonly walks: RandomWalks<string, { query: Uint8Array, originAddrs: Uint8Array[] }, Uint8Array>
  readonly scores: PeerScoreBook<string>
  readonly stats = { sent: 0, received: 0, sendFailures: 0, announcements: 0, shuffles: 0 }
  private readonly rng: Rng
  private readonly now: () => number
  private readonly self: string
  private readonly selfBytes: Uint8Array
  private timer: ReturnType<typeof setTimeout> | undefined
  private started = false
  private readonly walkWaiters = new Map<string, { resolve: (r: Uint8Array[]) => void }>()

  constructor (private readonly host: Host, private readonly init: MembershipServiceInit) {
    this.now = init.now ?? Date.now
    this.rng = createRng(init.seed ?? (crypto.getRandomValues(new Uint32Array(1))[0]))
    this.self = host.peerId.toString()
    this.selfBytes = host.peerId.toMultihash().bytes
    this.scores = init.scores ?? new PeerScoreBook<string>()
    this.view = new CyclonView<string, PeerInfo>({
      self: this.self,
      rng: this.rng,
      start: this.now(),
      viewSize: init.viewSize,
      shuffleLength: init.shuffleLength,
      periodMs: init.periodMs,
      responseTimeoutMs: init.responseTimeoutMs,
      selfData: () => this.selfInfo()
    })
    const sample = (n: number, exclude: readonly string[]): string[] => this.view.sample(n, exclude)
    this.gossip = new Gossip({ self: this.self, rng: this.rng, samplePeers: sample, fanout: init.fanout, maxTtl: init.gossipTtl })
    this.walks = new RandomWalks({ self: this.self, rng: this.rng, samplePeers: sample, maxTtl: init.walkTtl, timeoutMs: init.walkTimeoutMs })
  }

  private selfInfo (): PeerInfo {
    const info: PeerInfo = { addrs: this.host.getMultiaddrs().map(m => m.bytes) }
    if (this.init.location !== undefined) { info.latE4 = Math.round(this.init.location.lat * 1e4); info.lonE4 = Math.round(this.init.location.lon * 1e4) }
    const v = this.init.vivaldi?.()
    if (v !== undefined) info.vivaldi = v
    return info
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await guardedHandle(this.host, MEMBERSHIP_PROTOCOL, (stream, connection, g) => { void this.serve(stream, connection, g.open({ maxFrameBytes: MAX_FRAME })) }, { maxInboundStreams: 64, expectsRequest: true })
    this.pump()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.timer !== undefined) clearTimeout(this.timer)
    await this.host.unhandle(MEMBERSHIP_PROTOCOL)
    for (const w of this.walkWaiters.values()) w.resolve([])
    this.walkWaiters.clear()
  }

  /** Seeds the view with peers we know (bootstrap list, connected peers). */
  addPeers (peers: Array<string | PeerId>): void {
    this.view.addPeers(peers.map(p => p.toString()))
    this.pump()
  }

  peers (): string[] { return this.view.peers() }

  /** Gossips a signed announcement; returns its id (hex). */
  announce (kind: number, body: Uint8Array, ttl?: number): string {
    const id = crypto.getRandomValues(new Uint8Array(16))
    const ann = signAnnouncement(this.init.secretKey, { origin: this.selfBytes, id, ttl: ttl ?? this.gossip.maxTtl, createdAt: this.now(), kind, body })
    const idHex = toHex(id)
    this.gossip.publish(this.now(), idHex, ann, ann.ttl)
    this.pump()
    return idHex
  }

  /** Random walks for an encoded CapabilityQuery; resolves with the records found (maybe none). */
  async walk (query: Uint8Array, opts: { walkers?: number, ttl?: number, want?: number, signal?: AbortSignal } = {}): Promise<Uint8Array[]> {
    const id = toHex(crypto.getRandomValues(new Uint8Array(16)))
    const done = new Promise<Uint8Array[]>(resolve => { this.walkWaiters.set(id, { resolve }) })
    opts.signal?.addEventListener('abort', () => { this.walkWaiters.get(id)?.resolve([]); this.walkWaiters.delete(id) }, { once: true })
    this.walks.start(this.now(), id, { query, originAddrs: this.selfInfo().addrs }, opts)
    this.pump()
    return await done
  }

  private pump (): void {
    if (!this.started) return
    const now = this.now()
    this.view.tick(now)
    this.walks.tick(now)
    for (const { to, msg } of this.view.pollOutbound()) {
      const peers = msg.entries.map(e => toDescriptor(e))
      if (msg.type === 'shuffle-request') this.stats.shuffles++
      this.send(to, msg.type === 'shuffle-request' ? { shuffleRequest: { peers } } : { shuffleResponse: { peers } })
    }
    for (const { to, item } of this.gossip.pollOutbound()) {
      this.send(to, { announcement: { ...item.body, ttl: item.ttl } })
    }
    for (const o of this.walks.pollOutbound()) {
      if (o.type === 'walk') {
        this.send(o.to, { walk: { origin: peerIdFromString(o.walk.origin).toMultihash().bytes, walkId: fromHex(o.walk.id), ttl: o.walk.ttl, query: o.walk.query.query, originAddrs: o.walk.query.originAddrs } })
      } else {
        this.send(o.to, { walkResult: { walkId: fromHex(o.id), records: o.results } })
      }
    }
    for (const ev of this.walks.pollEvents()) {
      const w = this.walkWaiters.get(ev.id)
      if (w !== undefined) { this.walkWaiters.delete(ev.id); w.resolve(ev.results) }
    }
    this.view.pollEvents()
    if (this.timer !== undefined) clearTimeout(this.timer)
    const next = Math.min(this.view.nextTimeout(), this.walks.nextTimeout())
    this.timer = setTimeout(() => { this.timer = undefined; this.pump() }, Math.max(5, Math.min(60_000, next - this.now())))
    this.timer.unref?.()
  }

  private send (to: string, body: dbc.membership.v1.MembershipMessage.$Properties): void {
    const frame = dbc.membership.v1.MembershipMessage.encode(body).finish()
    this.stats.sent++
    void (async () => {
      const stream = await this.host.dialProtocol(peerIdFromString(to), MEMBERSHIP_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      const framed = new FramedStream(stream, { maxFrameBytes: MAX_FRAME })
      await framed.write(frame)
      await framed.close()
    })().catch(() => {
      this.stats.sendFailures++
      this.view.peerFailed(this.now(), to)
    })
  }

  private penalize (peer: string, offence: Offence): void {
    const { score, disconnect } = this.scores.penalize(this.now(), peer, offence)
    this.init.onPenalty?.(peer, offence, score, disconnect)
  }

  private async serve (stream: Stream, connection: Connection, framed: FramedStream): Promise<void> {
    const from = connection.remotePeer.toString()
    try {
      const frame = await framed.read({ signal: AbortSignal.timeout(10_000) })
      if (frame === undefined) return
      const d = decodeMessage(dbc.membership.v1.MembershipMessage, frame, { maxRepeated: 256 })
      if (!d.ok) throw d.error
      this.stats.received++
      await this.dispatch(from, d.value)
      this.pump()
      await framed.close().catch(() => {}) // one message per stream: end ours too, so the stream is released
    } catch (err) {
      if (err instanceof WireError && !wasHandled(err)) {
        // undecodable, oversized and truncated frames all cost the sender, who is told why
        this.penalize(from, err.code === 'FRAME_TOO_LARGE' ? 'oversized' : 'malformed')
        try { stream.send(encodeFrame(dbc.common.v1.ProtocolError.encode({ code: err.code, message: `membership message refused: ${err.message}` }).finish())) } catch {}
      }
      framed.abort(err as Error)
    }
  }

  private async dispatch (from: string, m: dbc.membership.v1.MembershipMessage): Promise<void> {
    const now = this.now()
    if (m.shuffleRequest != null || m.shuffleResponse != null) {
      const peers = ((m.shuffleRequest ?? m.shuffleResponse)!.peers ?? []) as dbc.membership.v1.PeerDescriptor[]
      const parsed: Array<ViewEntry<string, PeerInfo>> = []
      for (const p of peers.slice(0, 2 * this.view.shuffleLength + 1)) {
        const e = this.fromDescriptor(p)
        if (e !== undefined) parsed.push(e)
      }
      // checked before anything is stored: too many descriptors refuse the whole message
      const entries = peers.length > 2 * this.view.shuffleLength ? undefined : screenShuffle(this.self, parsed, this.view.shuffleLength)
      if (entries === undefined) { this.penalize(from, 'malformed'); return }
      if (m.shuffleRequest != null) this.view.handleShuffleRequest(now, from, entries)
      else this.view.handleShuffleResponse(now, from, entries)
      // only descriptors the view kept are remembered (addresses of peers we are not connected to)
      for (const e of entries) {
        if (e.data !== undefined) this.init.onPeerInfo?.(e.peer, e.data)
        if (!this.view.has(e.peer)) continue
        if (e.data !== undefined && (this.host.getConnections?.(peerIdFromString(e.peer)).length ?? 0) === 0) await this.rememberAddrs(e.peer, e.data.addrs)
      }
    } else if (m.announcement != null) {
      const a = m.announcement as Announcement
      if (!verifyAnnouncement(a)) { this.penalize(from, 'invalid-gossip'); return }
      const item: GossipItem<string, Announcement> = { id: toHex(a.id), origin: peerIdTextOf(a.origin), ttl: a.ttl, createdAt: a.createdAt, body: a }
      const outcome = this.gossip.handle(now, from, item)
      if (outcome === 'invalid') this.penalize(from, 'invalid-gossip')
      if (outcome === 'deliver') { this.stats.announcements++; this.init.onAnnouncement?.(a, from) }
    } else if (m.walk != null) {
      const w = m.walk as dbc.membership.v1.RandomWalk
      let origin: string
      try { origin = peerIdTextOf(w.origin) } catch { this.penalize(from, 'malformed'); return }
      await this.rememberAddrs(origin, w.originAddrs)
      const matches = this.init.matchWalk?.(w.query) ?? []
      const r = this.walks.handleWalk(now, from, { id: toHex(w.walkId), origin, ttl: w.ttl, query: { query: w.query, originAddrs: w.originAddrs } }, matches)
      if (r === 'invalid') this.penalize(from, 'malformed')
    } else if (m.walkResult != null) {
      const r = m.walkResult as dbc.membership.v1.WalkResult
      this.walks.handleResult(now, from, toHex(r.walkId), r.records.slice(0, 64))
    }
  }

  private async rememberAddrs (peer: string, addrs: Uint8Array[]): Promise<void> {
    if (addrs.length === 0 || peer === this.self) return
    try {
      const multiaddrs = []
      for (const a of addrs.slice(0, MAX_ADDRS_PER_DESCRIPTOR)) { try { multiaddrs.push(multiaddr(a)) } catch {} }
      if (multiaddrs.length > 0) await this.host.peerStore.merge(peerIdFromString(peer), { multiaddrs })
    } catch {}
  }

  /** A descriptor as a view entry (nothing stored yet); undefined when its peer id is not valid. */
  private fromDescriptor (p: dbc.membership.v1.PeerDescriptor): ViewEntry<string, PeerInfo> | undefined {
    let peer: string
    try { peer = peerIdTextOf(p.peerId) } catch { return undefined }
    const info: PeerInfo = { addrs: p.addrs.slice(0, MAX_ADDRS_PER_DESCRIPTOR) }
    if (p.latE4 !== 0 || p.lonE4 !== 0) { info.latE4 = p.latE4; info.lonE4 = p.lonE4 }
    if (p.vivaldi.length > 0) info.vivaldi = p.vivaldi.slice(0, 8)
    return { peer, age: p.age, data: info }
  }
}

function toDescriptor (e: ViewEntry<string, PeerInfo>): dbc.membership.v1.PeerDescriptor.$Properties {
  return { peerId: peerIdFromString(e.peer).toMultihash().bytes, addrs: e.data?.addrs ?? [], age: e.age, latE4: e.data?.latE4 ?? 0, lonE4: e.data?.lonE4 ?? 0, vivaldi: e.data?.vivaldi ?? [] }
}

function fromHex (h: string): Uint8Array {
  const out = new Uint8Array(h.length >> 1)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16)
  return out
}

export { DbcError }
