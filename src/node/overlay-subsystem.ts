// The hybrid overlay in the daemon: membership/gossip, sealed multi-path relay, Vivaldi, and the
// capability index on kad-dht. It publishes this node's capability record (what the compute
// peer offers, where it is) and re-publishes it before it expires; it finds providers for
// jobs (nearest first) and predicts RTTs for placement and `dbc peers --near`.
import { Overlay } from '../net/overlay/index.js'
import { TaskEnvelopes, type TaskProvider } from '../net/overlay/task-envelopes.js'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import type { PeerId } from '@libp2p/interface'
import type { ComputePeer } from '../compute/index.js'
import { DbcError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import { formGroup, type GroupCandidate } from '../core/training/group.js'
import { predictRtt, predictGeoRttMs } from '../core/geo/index.js'
import type { TrainingSpec } from '../training/spec.js'
import type { DaemonContext, Subsystem } from './daemon.js'
import type { dbc } from '../wire/gen/wire.js'
import type { NetworkEstimate } from '../net/tasks.js'

const RECORD_TTL_MS = 30 * 60_000
const REPUBLISH_MS = 10 * 60_000

export interface OverlaySubsystemInit {
  compute?: () => ComputePeer | undefined
  /** What this node serves on the task protocol, served over sealed envelopes too (task-envelopes.ts). */
  taskProvider?: () => TaskProvider | undefined
}

/**
 * Whether a sealed envelope to `peer` may take the direct path: only over a connection already
 * open to a peer that is not private (the path would otherwise dial it: src/net/routes/private-peers.ts).
 */
export function envelopeDirect (ctx: Pick<DaemonContext, 'host' | 'privatePeers'>): (peer: string) => boolean {
  const connected = (peer: string): boolean => {
    try { return ctx.host.getConnections(peerIdFromString(peer)).some(c => c.status === 'open') } catch { return false }
  }
  return peer => ctx.privatePeers?.direct(peer, connected) ?? connected(peer)
}

export class OverlaySubsystem implements Subsystem {
  readonly name = 'overlay'
  overlay: Overlay | undefined
  /** The task application over sealed envelopes (the overlay route, src/net/routes). */
  tasks: TaskEnvelopes | undefined
  private ctx: DaemonContext | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  private published: string[] = []
  private publishError: string | undefined
  private stopped = false

  constructor (private readonly init: OverlaySubsystemInit = {}) {}

  async start (ctx: DaemonContext): Promise<void> {
    this.ctx = ctx
    const overlay = new Overlay(ctx.host as any, {
      secretKey: ctx.identity.secretKey,
      location: ctx.location,
      vivaldiIntervalMs: ctx.config.overlay.vivaldiIntervalMs,
      // one book for the node: an overlay ban also refuses reconnects, and a misbehaving peer
      // is forgotten from the peer store when it leaves (src/node/daemon.ts)
      scores: ctx.scores,
      onPenalty: (peer, offence, score, disconnect) => {
        ctx.log.debug({ peer, offence, score }, 'overlay: peer penalized')
        ctx.metrics?.badInput(peer, offence, disconnect)
        if (disconnect) ctx.guard.noteBan(peer) // the address it came from pays too (once per identity)
        if (disconnect) void ctx.host.hangUp(peerIdFromString(peer)).catch(() => {})
      }
    })
    await overlay.start()
    this.overlay = overlay
    this.tasks = new TaskEnvelopes(overlay.envelopes, {
      provider: () => this.init.taskProvider?.(),
      k: ctx.config.routing?.k,
      // no direct path that would dial: not the submitter to a private provider, nor a provider answering through relays
      direct: envelopeDirect(ctx),
      onBadInput: (peer, err) => { try { ctx.reportBadInput(peerIdFromString(peer), err) } catch {} }
    })
    this.routes(ctx)
  }

  async afterNetworkStart (): Promise<void> {
    // the routing table fills over the first seconds: publish soon, retry, then keep it fresh
    this.schedule(1500)
  }

  private schedule (ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => { void this.publish() }, ms)
    this.timer.unref?.()
  }

  private async publish (): Promise<void> {
    const ctx = this.ctx; const overlay = this.overlay; const peer = this.init.compute?.()
    if (ctx === undefined || overlay === undefined || peer === undefined || this.stopped) return
    if (ctx.location === undefined) {
      this.publishError = 'no location declared (start with --location to be found by capability queries)'
      return
    }
    try {
      const f = peer.capabilityRecordFields()
      this.published = await overlay.publishCapability({
        addrs: ctx.host.getMultiaddrs().map(a => a.bytes),
        gpus: (f.gpus ?? []).map(g => ({ model: g.model ?? '', count: g.count ?? 0, memoryMib: g.memoryMib ?? 0, declared: g.declared ?? false })),
        cpuCores: f.cpuCores ?? 0,
        memoryMib: f.memoryMib ?? 0,
        priceGpuHour: f.priceGpuHour ?? 0,
        priceCpuHour: f.priceCpuHour ?? 0,
        executors: f.executors ?? [],
        // the trainers the operator declared, by name (a training spec's model.trainer; 32 fit a record)
        software: Object.keys(ctx.config.trainers ?? {}).sort().slice(0, 32).map(n => `trainer:${n}`),
        perfScore: f.perfScore ?? 0,
        ttlMs: RECORD_TTL_MS
      }, { signal: AbortSignal.timeout(30_000) })
      this.publishError = undefined
      ctx.log.info({ keys: this.published.length }, 'capability record published')
      this.schedule(REPUBLISH_MS)
    } catch (err) {
      this.publishError = (err as Error).message
      ctx.log.debug({ err: this.publishError }, 'capability record not published yet; retrying')
      this.schedule(5000)
    }
  }

  /** Providers for a lease request: the capability index (nearest first), else connected peers. */
  async candidates (req: dbc.task.v1.ILeaseRequest): Promise<PeerId[]> {
    const overlay = this.overlay; const ctx = this.ctx
    if (overlay === undefined || ctx === undefined) return []
    const out: PeerId[] = []
    const seen = new Set<string>([ctx.host.peerId.toString()])
    const r = req.resources
    const capability = (r?.gpuCount ?? 0) > 0 ? (r?.gpuModel !== undefined && r.gpuModel !== '' ? `gpu:${r.gpuModel}` : 'gpu') : `executor:${req.executor ?? 'wasm'}`
    if (ctx.location !== undefined) {
      try {
        const report = await overlay.capabilities.query({ capability, latE4: Math.round(ctx.location.lat * 1e4), lonE4: Math.round(ctx.location.lon * 1e4), want: 32 }, { signal: AbortSignal.timeout(5000) })
        for (const res of report.results) {
          const id = peerIdFromMultihash(Digest.decode(res.record.peerId))
          if (!seen.has(id.toString())) { seen.add(id.toString()); out.push(id); ctx.privatePeers?.noteMatch(id.toString()) }
        }
      } catch (err) {
        ctx.log.debug({ err: (err as Error).message }, 'capability query failed; using connected peers')
      }
    }
    for (const p of ctx.host.getPeers()) if (!seen.has(p.toString())) { seen.add(p.toString()); out.push(p) }
    // providers reached through the overlay only hold no connection: they are asked too
    for (const p of ctx.privatePeers?.list() ?? []) if (!seen.has(p)) { seen.add(p); out.push(peerIdFromString(p)) }
    return out
  }

  /**
   * A training group through the scheduler's group formation: candidates that serve training
   * and match the GPU requirements (from their signed capability records), K of them close to
   * each other in predicted latency (Vivaldi between their coordinates, else geo).
   */
  async trainingGroup (spec: TrainingSpec, servesTraining: (peer: PeerId) => Promise<boolean>, exclude: string[] = []): Promise<string[]> {
    const overlay = this.overlay; const ctx = this.ctx
    if (overlay === undefined || ctx === undefined) return []
    const candidates: GroupCandidate[] = []
    for (const id of ctx.host.getPeers()) {
      // peers that run this node's built-in job (the training subsystem's PEERS_BUSY rule)
      if (exclude.includes(id.toString()) || !await servesTraining(id)) continue
      const rec = overlay.capabilities.cache.get(Date.now(), toHex(id.toMultihash().bytes))?.record
      // an external model needs the named trainer: skip peers whose record says they lack it
      if (spec.model.kind === 'external' && rec !== undefined && !rec.software.includes(`trainer:${spec.model.trainer}`)) continue
      const gpus = rec?.gpus ?? []
      const best = [...gpus].sort((a, b) => (b.count ?? 0) - (a.count ?? 0))[0]
      candidates.push({
        peer: id.toString(),
        gpuModel: best?.model ?? undefined,
        gpuCount: gpus.reduce((n, g) => n + (g.count ?? 0), 0),
        gpuMemoryGiB: best === undefined ? undefined : (best.memoryMib ?? 0) / 1024,
        price: (rec?.priceGpuHour ?? 0) > 0 ? rec?.priceGpuHour ?? undefined : rec?.priceCpuHour ?? undefined
      })
    }
    const latency = (a: string, b: string): number => {
      const ka = overlay.known.get(a); const kb = overlay.known.get(b)
      if (ka?.vivaldi !== undefined && kb?.vivaldi !== undefined) return predictRtt(ka.vivaldi, kb.vivaldi)
      if (ka?.location !== undefined && kb?.location !== undefined) return predictGeoRttMs(ka.location, kb.location)
      return 1000 // unknown: placed last
    }
    const size = Math.min(spec.groupSize, candidates.length)
    const g = formGroup(candidates, { size, gpuModel: spec.gpu?.model, gpuCount: spec.gpu?.count, gpuMemoryGiB: spec.gpu?.memoryGiB }, latency)
    if (!g.ok) throw new DbcError('NO_GROUP', `no training group: ${g.reason}`, { hint: 'connect more peers with matching GPUs, or lower groupSize / the GPU requirements' })
    ctx.log.info({ members: g.members.length, maxLatencyMs: g.maxLatencyMs }, 'training group formed')
    return g.members
  }

  network (peer: string): NetworkEstimate {
    const o = this.overlay
    const e = o?.estimate(peer)
    if (o === undefined || e === undefined) return {}
    // a measured RTT beats any prediction, else the one prediction (core/geo/predicted-rtt.ts)
    const rttMs = e.measuredRttMs ?? e.predictedRttMs
    return { rttMs, distanceKm: e.distanceKm }
  }

  private routes (ctx: DaemonContext): void {
    const need = (): Overlay => {
      if (this.overlay === undefined) throw new DbcError('NOT_READY', 'the overlay is not running')
      return this.overlay
    }
    ctx.api.route('GET', '/v1/peers/near', async (req) => {
      const o = need()
      // measure the connected peers we have no RTT for yet, so measured sits beside predicted
      await Promise.all(ctx.host.getPeers().map(async p => { if (o.known.get(p.toString())?.measuredRttMs === undefined) await o.measure(p.toString()).catch(() => {}) }))
      // a peer's declared location also arrives in its signed capability record: use it
      // when gossip has not brought the peer's descriptor yet
      for (const [peer, k] of o.known) {
        if (k.location !== undefined) continue
        const e = o.capabilities.cache.get(Date.now(), toHex(peerIdFromString(peer).toMultihash().bytes))
        if (e !== undefined) k.location = { lat: e.record.latE4 / 1e4, lon: e.record.lonE4 / 1e4 }
      }
      const n = Number(req.query.get('n') ?? 20)
      const rows = o.nearest(n).map(e => ({
        peerId: e.peer,
        predictedRttMs: e.predictedRttMs,
        vivaldiRttMs: e.vivaldiRttMs,
        geoRttMs: e.geoRttMs,
        measuredRttMs: e.measuredRttMs,
        distanceKm: e.distanceKm,
        location: o.known.get(e.peer)?.location ?? null
      }))
      return { peers: rows }
    })
    ctx.api.route('GET', '/v1/capabilities', async (req) => {
      const o = need()
      const capability = req.query.get('capability') ?? 'cpu'
      const lat = Number(req.query.get('lat') ?? ctx.location?.lat ?? 0)
      const lon = Number(req.query.get('lon') ?? ctx.location?.lon ?? 0)
      const want = Number(req.query.get('want') ?? 10)
      const report = await o.capabilities.query({ capability, latE4: Math.round(lat * 1e4), lonE4: Math.round(lon * 1e4), want }, { fresh: req.query.get('fresh') === '1', signal: AbortSignal.any([req.signal, AbortSignal.timeout(30_000)]) })
      return {
        capability,
        ms: report.ms,
        fromCache: report.fromCache,
        lookups: report.lookups,
        results: report.results.map(r => ({
          peerId: peerIdFromMultihash(Digest.decode(r.record.peerId)).toString(),
          distanceKm: r.distanceKm,
          // one-way from the searched point: the search's ranking, not this node's RTT to the peer
          predictedMs: r.predictedMs,
          // the same prediction `dbc peers --near` shows (core/geo/predicted-rtt.ts)
          predictedRttMs: o.estimate(peerIdFromMultihash(Digest.decode(r.record.peerId)).toString(), { lat: r.record.latE4 / 1e4, lon: r.record.lonE4 / 1e4 }).predictedRttMs ?? null,
          lat: r.record.latE4 / 1e4,
          lon: r.record.lonE4 / 1e4,
          cell: r.record.cell,
          gpus: r.record.gpus.map(g => `${g.count}x${g.model}${g.declared ? ' (declared)' : ''}`),
          cpuCores: r.record.cpuCores,
          priceGpuHour: r.record.priceGpuHour,
          priceCpuHour: r.record.priceCpuHour,
          executors: r.record.executors
        }))
      }
    })
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.tasks?.close()
    await this.overlay?.stop()
  }

  status (): Record<string, unknown> {
    return { ...(this.overlay?.status() ?? {}), published: this.published.length, publishError: this.publishError, ...(this.tasks !== undefined ? { taskEnvelopes: this.tasks.status() } : {}) }
  }
}
