// The hybrid overlay on one libp2p host: membership + gossip (unstructured), the capability index
// (structured, kad-dht), sealed multi-path messages, and geo-awareness (declared locations from
// peer descriptors, Vivaldi coordinates learnt from ping RTTs). One score book is shared, so
// misbehaviour on any overlay protocol counts against the same peer.
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { MembershipService, type MembershipServiceInit, type PeerInfo } from './membership.js'
import { EnvelopeService, type EnvelopeServiceInit, type ReceivedMessage } from './envelopes.js'
import { CapabilityIndex, type CapabilityIndexInit } from './capability-index.js'
import { ANNOUNCE_KIND, type Announcement } from './announce.js'
import { PeerScoreBook, type Offence } from '../../core/routing/score.js'
import { createVivaldiCoordinate, vivaldiUpdate, vivaldiFromArray, vivaldiToArray, predictRtt, predictGeoRttMs, haversineKm, type LatLon, type VivaldiCoordinate } from '../../core/geo/index.js'
import { predictedRttMs } from '../../core/geo/predicted-rtt.js'
import { dbc } from '../../wire/gen/wire.js'
import { encodeSignedCapability, matchesQuery, type CapabilityInit } from '../../core/capability/index.js'
import { FramedStream } from '../framed.js'
import { guardedHandle, wasHandled, type GuardedStreamInit } from '../guard/index.js'
import { decodeMessage } from '../../wire/decode.js'
import { WireError } from '../../errors.js'

/** Vivaldi probes: RTT sample + the answerer's current coordinate in one exchange. */
export const VIVALDI_PROTOCOL = '/dbc/vivaldi/1.0.0'
const PROBE_MAX_BYTES = 256
/** RTT samples kept per peer; Vivaldi is fed their minimum (queueing delays only ever add). */
const RTT_WINDOW = 4
/** Floor on the error a probed peer reports for itself (its weight in our update). */
const MIN_REMOTE_ERROR = 0.05

export interface KnownPeer {
  location?: LatLon
  vivaldi?: VivaldiCoordinate
  /** Smoothed measured RTT (ms), from probes (or pings). */
  measuredRttMs?: number
  /** The last few raw RTT samples (ms), newest last. */
  rttSamples?: number[]
  lastSeen: number
}

export interface PeerEstimate {
  peer: string
  distanceKm?: number
  /** RTT predicted from both Vivaldi coordinates. */
  vivaldiRttMs?: number
  /** RTT predicted from declared locations (geo model). */
  geoRttMs?: number
  /** The one prediction every view and decision uses (core/geo/predicted-rtt.ts). */
  predictedRttMs?: number
  measuredRttMs?: number
}

export interface OverlayInit {
  secretKey: Uint8Array
  location?: LatLon
  membership?: Partial<MembershipServiceInit>
  envelopes?: Partial<EnvelopeServiceInit>
  capability?: Partial<CapabilityIndexInit>
  /** How often to ping one random view peer for Vivaldi (ms; default 2000, 0 = never). */
  vivaldiIntervalMs?: number
  /** Measures RTT to a peer (ms); default: the host's ping service. */
  measureRtt?: (peer: PeerId) => Promise<number>
  onMessage?: (msg: ReceivedMessage) => void
  onAnnouncement?: (a: Announcement, from: string) => void
  onPenalty?: (peer: string, offence: Offence, score: number, disconnect: boolean) => void
  maxKnownPeers?: number
  /** The node's one score book (the daemon's, shared with its byte-level checks); default: a new one. */
  scores?: PeerScoreBook<string>
}

type Host = Libp2p & { services: Record<string, unknown> }

const MAX_PENALIZED_LISTED = 1024

export class Overlay {
  readonly scores: PeerScoreBook<string>
  readonly membership: MembershipService
  readonly envelopes: EnvelopeService
  readonly capabilities: CapabilityIndex
  readonly coordinate: VivaldiCoordinate = createVivaldiCoordinate()
  readonly known = new Map<string, KnownPeer>()
  private vivaldiTimer: ReturnType<typeof setInterval> | undefined
  private readonly onConnect = (evt: CustomEvent<PeerId>): void => { this.membership.addPeers([evt.detail.toString()]) }

  /** Peers charged on any overlay protocol, most recent last (bounded), for status output. */
  private readonly penalized = new Map<string, { offence: Offence, at: number }>()
  private readonly onPenalty: (peer: string, offence: Offence, score: number, disconnect: boolean) => void

  constructor (private readonly host: Host, private readonly init: OverlayInit) {
    this.scores = init.scores ?? new PeerScoreBook<string>()
    const onPenalty = this.onPenalty = (peer: string, offence: Offence, score: number, disconnect: boolean): void => {
      this.penalized.delete(peer)
      this.penalized.set(peer, { offence, at: Date.now() })
      if (this.penalized.size > MAX_PENALIZED_LISTED) this.penalized.delete(this.penalized.keys().next().value as string)
      init.onPenalty?.(peer, offence, score, disconnect)
    }
    this.membership = new MembershipService(host, {
      secretKey: init.secretKey,
      location: init.location,
      vivaldi: () => vivaldiToArray(this.coordinate),
      scores: this.scores,
      onPenalty,
      onPeerInfo: (peer, info) => { this.learnPeer(peer, info) },
      onAnnouncement: (a, from) => {
        if (a.kind === ANNOUNCE_KIND.capability) this.capabilities.learn(a.body)
        init.onAnnouncement?.(a, from)
      },
      matchWalk: query => this.matchWalk(query),
      ...init.membership
    })
    this.envelopes = new EnvelopeService(host, {
      secretKey: init.secretKey,
      location: init.location,
      locate: peer => this.known.get(peer)?.location,
      scores: this.scores,
      onPenalty,
      onMessage: init.onMessage,
      ...init.envelopes
    })
    this.capabilities = new CapabilityIndex(host, {
      secretKey: init.secretKey,
      location: init.location,
      onBadInput: (peer, offence) => { this.charge(peer, offence) },
      ...init.capability
    })
  }

  async start (): Promise<void> {
    await guardedHandle(this.host, VIVALDI_PROTOCOL, (stream, connection, g) => { void this.answerProbe(stream, connection.remotePeer.toString(), g.open) }, { maxInboundStreams: 8, runOnLimitedConnection: true, expectsRequest: true })
    await this.envelopes.start()
    await this.capabilities.start()
    await this.membership.start()
    this.host.addEventListener('peer:connect', this.onConnect)
    this.membership.addPeers(this.host.getPeers().map(p => p.toString()))
    const every = this.init.vivaldiIntervalMs ?? 2000
    if (every > 0) {
      this.vivaldiTimer = setInterval(() => { void this.measureOne() }, every)
      this.vivaldiTimer.unref?.()
    }
  }

  async stop (): Promise<void> {
    if (this.vivaldiTimer !== undefined) clearInterval(this.vivaldiTimer)
    this.host.removeEventListener('peer:connect', this.onConnect)
    await this.host.unhandle(VIVALDI_PROTOCOL).catch(() => {})
    await this.membership.stop()
    await this.capabilities.stop()
    await this.envelopes.stop()
  }

  /** Publishes our capability record in the DHT index and gossips it. */
  async publishCapability (init: Omit<CapabilityInit, 'peerId' | 'issuedAt' | 'seq' | 'lat' | 'lon'> & { lat?: number, lon?: number, capabilities?: string[] }, opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const lat = init.lat ?? this.init.location?.lat
    const lon = init.lon ?? this.init.location?.lon
    if (lat === undefined || lon === undefined) throw new RangeError('a capability record needs a location: start the node with --location')
    const keys = await this.capabilities.publish({ ...init, lat, lon }, opts)
    const own = this.capabilities.ownRecord()
    if (own !== undefined) this.membership.announce(ANNOUNCE_KIND.capability, encodeSignedCapability(own))
    return keys
  }

  private matchWalk (queryBytes: Uint8Array): Uint8Array[] {
    let query: dbc.capability.v1.CapabilityQuery
    try { query = dbc.capability.v1.CapabilityQuery.decode(queryBytes) } catch { return [] }
    const out: Uint8Array[] = []
    const own = this.capabilities.ownRecord()
    if (own !== undefined) {
      const rec = dbc.capability.v1.CapabilityRecord.decode(own.record)
      if (rec.expiresAt > Date.now() && matchesQuery(rec, query)) out.push(encodeSignedCapability(own))
    }
    for (const e of this.capabilities.cache.matching(Date.now(), query)) {
      if (out.length >= 8) break
      out.push(encodeSignedCapability(e.signed))
    }
    return out
  }

  private learnPeer (peer: string, info: PeerInfo): void {
    let k = this.known.get(peer)
    if (k === undefined) {
      if (this.known.size >= (this.init.maxKnownPeers ?? 10_000)) this.known.delete(this.known.keys().next().value as string)
      k = { lastSeen: Date.now() }
      this.known.set(peer, k)
    }
    k.lastSeen = Date.now()
    if (info.latE4 !== undefined && info.lonE4 !== undefined) k.location = { lat: info.latE4 / 1e4, lon: info.lonE4 / 1e4 }
    if (info.vivaldi !== undefined) k.vivaldi = vivaldiFromArray(info.vivaldi) ?? k.vivaldi
  }

  /** Pings one random view peer and feeds the RTT to Vivaldi. */
  async measureOne (): Promise<void> {
    const [peer] = this.membership.view.sample(1)
    if (peer === undefined) return
    await this.measure(peer).catch(() => {})
  }

  /**
   * Measures the RTT to `peer` and updates our coordinate; returns the RTT sample (ms). A Vivaldi
   * probe gets the peer's current coordinate along with the sample; peers without the probe
   * protocol are pinged and their coordinate is the one last gossiped.
   */
  async measure (peer: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    const id = peerIdFromString(peer)
    const signal = opts.signal ?? AbortSignal.timeout(5000)
    let rtt: number
    let remote: VivaldiCoordinate | undefined
    if (this.init.measureRtt !== undefined) {
      rtt = await this.init.measureRtt(id)
    } else {
      try {
        ({ rtt, remote } = await this.probe(id, signal))
      } catch (err) {
        if ((err as Error).name !== 'UnsupportedProtocolError') throw err
        const svc = this.host.services.ping as { ping: (p: PeerId, o?: { signal?: AbortSignal }) => Promise<number> } | undefined
        if (svc === undefined) throw new Error('the host has no ping service')
        rtt = await svc.ping(id, { signal })
      }
    }
    let k = this.known.get(peer)
    if (k === undefined) { k = { lastSeen: Date.now() }; this.known.set(peer, k) }
    if (remote !== undefined) k.vivaldi = remote
    k.measuredRttMs = k.measuredRttMs === undefined ? rtt : 0.7 * k.measuredRttMs + 0.3 * rtt
    const samples = (k.rttSamples ??= [])
    samples.push(rtt)
    if (samples.length > RTT_WINDOW) samples.shift()
    // Vivaldi gets the smallest recent sample: a busy event loop or a queue only ever adds delay
    if (k.vivaldi !== undefined && rtt > 0) vivaldiUpdate(this.coordinate, k.vivaldi, Math.min(...samples))
    return rtt
  }

  /** Two probe exchanges on one stream; the second is timed (the first may carry protocol negotiation). */
  private async probe (peer: PeerId, signal: AbortSignal): Promise<{ rtt: number, remote: VivaldiCoordinate | undefined }> {
    const stream = await this.host.dialProtocol(peer, VIVALDI_PROTOCOL, { signal, runOnLimitedConnection: true })
    const framed = new FramedStream(stream, { maxFrameBytes: PROBE_MAX_BYTES })
    try {
      let rtt = Infinity
      let reply: Uint8Array | undefined
      for (let i = 0; i < 2; i++) {
        const t0 = performance.now()
        await framed.write(dbc.membership.v1.VivaldiProbe.encode({ coordinate: vivaldiToArray(this.coordinate) }).finish(), { signal })
        reply = await framed.readRequired({ signal })
        if (i === 1) rtt = performance.now() - t0
      }
      await framed.close().catch(() => {})
      const d = reply === undefined ? undefined : decodeMessage(dbc.membership.v1.VivaldiProbe, reply)
      const remote = d?.ok === true ? vivaldiFromArray(d.value.coordinate) : undefined
      // a peer may claim near-zero error to pull our coordinate towards wherever it says it is
      if (remote !== undefined) remote[remote.length - 1] = Math.max(remote[remote.length - 1], MIN_REMOTE_ERROR)
      return { rtt, remote }
    } catch (err) {
      framed.abort(err as Error)
      throw err
    }
  }

  /** Answers probes on one stream (at most two, as `probe` sends) with our coordinate. */
  private async answerProbe (stream: Parameters<Parameters<Host['handle']>[1]>[0], from: string, open: (init: GuardedStreamInit) => FramedStream): Promise<void> {
    if (this.scores.isBanned(Date.now(), from)) { stream.abort(new Error('peer score below threshold')); return }
    const framed = open({ maxFrameBytes: PROBE_MAX_BYTES })
    try {
      for (let i = 0; i < 2; i++) {
        const frame = await framed.read({ signal: AbortSignal.timeout(5000) })
        if (frame === undefined) break
        const d = decodeMessage(dbc.membership.v1.VivaldiProbe, frame)
        if (!d.ok) throw d.error
        // the prober's own coordinate: ours is never NaN, infinite or out of range, so theirs must not be
        if (d.value.coordinate.length > 0 && vivaldiFromArray(d.value.coordinate) === undefined) throw new WireError('VIVALDI_COORDINATE_INVALID', 'the probe carries a coordinate that is not finite or out of range')
        await framed.write(dbc.membership.v1.VivaldiProbe.encode({ coordinate: vivaldiToArray(this.coordinate) }).finish())
      }
      await framed.close()
    } catch (err) {
      // a frame over the limit or one that does not decode costs the sender; a timeout does not
      if (err instanceof WireError && !wasHandled(err)) this.charge(from, err.code === 'FRAME_TOO_LARGE' ? 'oversized' : 'malformed')
      framed.abort(err as Error)
    }
  }

  /** Charges `peer` in the one score book and reports it (status list, daemon hang-up). */
  private charge (peer: string, offence: Offence): void {
    const { score, disconnect } = this.scores.penalize(Date.now(), peer, offence)
    this.onPenalty(peer, offence, score, disconnect)
  }

  /**
   * Predicted (Vivaldi, geo, and the one `predictedRttMs` from both) and measured RTT to a peer.
   * `declared`: the peer's location from elsewhere (its capability record) when gossip has none.
   */
  estimate (peer: string, declared?: LatLon): PeerEstimate {
    const k = this.known.get(peer)
    const out: PeerEstimate = { peer }
    const location = k?.location ?? declared
    if (k?.vivaldi !== undefined) out.vivaldiRttMs = predictRtt(this.coordinate, k.vivaldi)
    if (location !== undefined && this.init.location !== undefined) {
      out.geoRttMs = predictGeoRttMs(this.init.location, location)
      out.distanceKm = haversineKm(this.init.location.lat, this.init.location.lon, location.lat, location.lon)
    }
    const predicted = predictedRttMs(out, this.coordinate[this.coordinate.length - 1])
    if (predicted !== undefined) out.predictedRttMs = predicted
    if (k?.measuredRttMs !== undefined) out.measuredRttMs = k.measuredRttMs
    return out
  }

  /** Known peers nearest first (by predicted, else measured RTT), for `dbc peers --near`. */
  nearest (n = 20): PeerEstimate[] {
    const key = (e: PeerEstimate): number => e.predictedRttMs ?? e.measuredRttMs ?? Infinity
    return [...this.known.keys()].map(p => this.estimate(p)).sort((a, b) => key(a) - key(b)).slice(0, n)
  }

  status (): Record<string, unknown> {
    return {
      view: this.membership.peers().length,
      knownPeers: this.known.size,
      vivaldiError: this.coordinate[this.coordinate.length - 1],
      envelopes: this.envelopes.stats,
      membership: this.membership.stats,
      cachedCapabilities: this.capabilities.cache.size,
      // overlay offences live in their own score book; list them so `dbc node status` shows them
      penalizedPeers: this.penalizedPeers()
    }
  }

  /** Peers charged on an overlay protocol whose score is still negative, with the last offence. */
  penalizedPeers (): Array<{ peer: string, score: number, offence: Offence, banned: boolean }> {
    const now = Date.now()
    const out = []
    for (const [peer, p] of this.penalized) {
      const score = this.scores.score(now, peer)
      if (score < 0) out.push({ peer, score, offence: p.offence, banned: this.scores.isBanned(now, peer) })
    }
    return out
  }
}
