// What the metrics read at scrape time, from the daemon and from its subsystems. Subsystems are
// found by name and read structurally (their public fields and stats), so the metrics add no
// dependency to them and a node without one (no chain, no compute) simply lacks its series.
import type { EventEmitter } from 'node:events'
import type { Host } from '../../net/host.js'
import type { PeerScoreBook } from '../../core/routing/score.js'
import type { InboundGuard } from '../../net/guard/index.js'

export interface MetricsSources {
  host: Host
  scores: PeerScoreBook<string>
  guard: InboundGuard
  /** The daemon's subsystems (read by name: chain, compute, overlay, jobs, training). */
  subsystems: ReadonlyArray<{ readonly name: string }>
  /** The compute peer's slot events, once it runs. */
  slotEvents?: () => EventEmitter<any> | undefined
  /** The readiness verdict (/readyz), for dbc_ready. */
  ready?: () => Promise<boolean>
  /** The STUN responder's counters (a public relay node runs one: src/net/stun), once it runs. */
  stun?: () => { answered: number, dropped: number, limited: number } | undefined
  /** The bound on inbound WebRTC attempts (a node behind NAT with WebRTC on: src/net/host.ts). */
  webrtc?: () => { attemptsInFlight: number, refusals: Record<string, number> } | undefined
}

export interface NodeReadings {
  envelopes?: Record<string, number>
  membership?: Record<string, number>
  view?: number
  slots?: { running: number, queued: number, cpuSlots: number, gpuSlots: number }
  jobs?: Array<{ jobId: string, status: string, createdAt: number, updatedAt: number, done: number, failed: number, running: number, queued: number }>
  trainingWorkers?: number
  chain?: { sendQueue: number, redeems: Record<string, number>, redeemable?: number, blocked?: number }
}

// structural views of the subsystems' public parts
interface OverlayLike { overlay?: { envelopes: { stats: Record<string, number> }, membership: { stats: Record<string, number>, peers: () => unknown[] } } }
interface ComputeLike { peer?: { stats: () => { running: number, queued: number }, capabilities: () => { cpu: { slots: number }, gpus: Array<{ count?: number }> } } }
interface JobsLike { service?: { list: () => NonNullable<NodeReadings['jobs']> } }
interface TrainingLike { service?: { workers: { size: number } } }
interface ChainLike { bridge?: { depths?: () => { sendQueue: number, redeems: Record<string, number> }, lastRedeemTick?: { redeemable: number, blocked: unknown[] } } }

function find<T> (s: MetricsSources, name: string): T | undefined {
  return s.subsystems.find(x => x.name === name) as T | undefined
}

/** Reads every subsystem once; a subsystem that fails to answer leaves its part out. */
export function readNode (s: MetricsSources): NodeReadings {
  const out: NodeReadings = {}
  const attempt = (fn: () => void): void => { try { fn() } catch {} }
  attempt(() => {
    const o = find<OverlayLike>(s, 'overlay')?.overlay
    if (o === undefined) return
    out.envelopes = o.envelopes.stats
    out.membership = o.membership.stats
    out.view = o.membership.peers().length
  })
  attempt(() => {
    const p = find<ComputeLike>(s, 'compute')?.peer
    if (p === undefined) return
    const st = p.stats(); const caps = p.capabilities()
    out.slots = { running: st.running, queued: st.queued, cpuSlots: caps.cpu.slots, gpuSlots: caps.gpus.reduce((n, g) => n + (g.count ?? 1), 0) }
  })
  attempt(() => { const j = find<JobsLike>(s, 'jobs')?.service; if (j !== undefined) out.jobs = j.list() })
  attempt(() => { const t = find<TrainingLike>(s, 'training')?.service; if (t !== undefined) out.trainingWorkers = t.workers.size })
  attempt(() => {
    const b = find<ChainLike>(s, 'chain')?.bridge
    if (b?.depths === undefined) return
    const d = b.depths()
    const tick = b.lastRedeemTick
    out.chain = { sendQueue: d.sendQueue, redeems: d.redeems, redeemable: tick?.redeemable, blocked: tick?.blocked.length }
  })
  return out
}
