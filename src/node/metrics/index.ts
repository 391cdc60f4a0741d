// The node's Prometheus metrics: one registry per daemon, created here in one place. Most series
// are read at scrape time from counters the subsystems already keep (collect callbacks); only
// events nobody counts yet are pushed (bad input by protocol, bans, task and all-reduce timings).
// libp2p's own metrics (bytes per protocol, dials, DHT) join the same registry through
// @libp2p/prometheus-metrics (libp2pMetrics below, passed to createHost).
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Registry, Counter, Gauge, Histogram } from 'prom-client'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import type { Metrics } from '@libp2p/interface'
import { currentProtocolContext } from '../protocol-context.js'
import { readNode, type MetricsSources, type NodeReadings } from './sources.js'

export { type MetricsSources } from './sources.js'
/** Where the training worker publishes each finished all-reduce (src/training/worker.ts). */
export const ALLREDUCE_CHANNEL = 'dbc:training:allreduce'

/** A peer banned again within this window counts as one ban. */
const BAN_WINDOW_MS = 10 * 60_000
const DURATION_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200]

export type NodeMetrics = ReturnType<typeof createNodeMetrics>

/**
 * The daemon's metrics. `sources` is read at each scrape; the returned `badInput`,
 * `meterProvider` and `watch` hooks count what happens between scrapes.
 */
export function createNodeMetrics (sources: MetricsSources, registry = new Registry()) {
  const reg = [registry]
  const badInput = new Counter({ name: 'dbc_bad_input_total', help: 'Inputs from peers that broke a protocol, by the protocol they came on and the offence charged', labelNames: ['protocol', 'offence'] as const, registers: reg })
  const bans = new Counter({ name: 'dbc_peer_bans_total', help: 'Peers whose score fell below the ban threshold (disconnected, refused until it recovers)', registers: reg })
  const tasks = new Counter({ name: 'dbc_provider_tasks_total', help: 'Tasks this node ran for others, by outcome (started, succeeded, failed, refused, cancelled)', labelNames: ['outcome'] as const, registers: reg })
  const refusals = new Counter({ name: 'dbc_provider_task_refusals_total', help: 'Tasks refused a slot, by reason', labelNames: ['reason'] as const, registers: reg })
  const taskSeconds = new Histogram({ name: 'dbc_provider_task_duration_seconds', help: 'Time a task held its slot on this node, by result', labelNames: ['ok'] as const, buckets: DURATION_BUCKETS, registers: reg })
  const offers = new Counter({ name: 'dbc_provider_offers_total', help: 'Lease requests this node answered, by result (offered, or refused with the reason\'s code)', labelNames: ['result', 'code'] as const, registers: reg })
  const answers = new Counter({ name: 'dbc_provider_task_answers_total', help: 'Task requests this node answered, by result; code is the refusal or failure code (tasks refused before a slot never show in dbc_provider_tasks_total{outcome="started"})', labelNames: ['result', 'code'] as const, registers: reg })
  const jobSeconds = new Histogram({ name: 'dbc_job_duration_seconds', help: 'Grid jobs this node submitted, from submission to their end, by final status', labelNames: ['status'] as const, buckets: DURATION_BUCKETS, registers: reg })
  const allReduceSeconds = new Histogram({ name: 'dbc_training_allreduce_duration_seconds', help: 'All-reduce phase of each training round this node took part in', buckets: DURATION_BUCKETS, registers: reg })
  const allReduceBytes = new Counter({ name: 'dbc_training_allreduce_bytes_total', help: 'Bytes this node sent and received in training all-reduces', labelNames: ['direction'] as const, registers: reg })
  const allReduceTimeouts = new Counter({ name: 'dbc_training_allreduce_timeouts_total', help: 'All-reduces that ended at their deadline with slices missing', registers: reg })

  // one reading of the subsystems per scrape, shared by the series below
  let cached: { at: number, r: NodeReadings } | undefined
  const node = (): NodeReadings => {
    const now = performance.now()
    if (cached === undefined || now - cached.at > 200) cached = { at: now, r: readNode(sources) }
    return cached.r
  }
  const gauge = (name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, v: number) => void) => void | Promise<void>): void => {
    // eslint-disable-next-line no-new
    new Gauge({
      name,
      help,
      labelNames,
      registers: reg,
      async collect () {
        this.reset()
        await read((labels, v) => { this.set(labels, v) })
      }
    })
  }
  // Counters kept elsewhere (stats objects) are exported as counters: reset, then set to the total.
  const mirror = (name: string, help: string, labelNames: string[], read: (set: (labels: Record<string, string>, v: number) => void) => void): void => {
    // eslint-disable-next-line no-new
    new Counter({
      name,
      help,
      labelNames,
      registers: reg,
      collect () {
        this.reset()
        read((labels, v) => { if (v >= 0) this.inc(labels, v) })
      }
    })
  }

  gauge('dbc_peers', 'Peers with an open connection', [], set => { set({}, sources.host.getPeers().length) })
  gauge('dbc_connections', 'Open connections, by direction', ['direction'], set => {
    const n: Record<string, number> = { inbound: 0, outbound: 0 }
    for (const c of sources.host.getConnections()) n[c.direction] = (n[c.direction] ?? 0) + 1
    for (const [d, v] of Object.entries(n)) set({ direction: d }, v)
  })
  gauge('dbc_streams', 'Open streams, by protocol and direction', ['protocol', 'direction'], set => {
    const n = new Map<string, number>()
    for (const c of sources.host.getConnections()) {
      for (const s of c.streams) {
        const k = `${s.protocol ?? 'unnegotiated'}\n${s.direction}`
        n.set(k, (n.get(k) ?? 0) + 1)
      }
    }
    for (const [k, v] of n) { const [protocol, direction] = k.split('\n'); set({ protocol, direction }, v) }
  })
  gauge('dbc_dht_routing_table_peers', 'Peers in the kad-dht routing table', [], set => {
    const rt = (sources.host.services.dht as unknown as { routingTable?: { size?: number } }).routingTable
    set({}, rt?.size ?? 0)
  })
  gauge('dbc_penalized_peers', 'Peers whose score is below zero now', [], set => { set({}, sources.scores.penalized(Date.now()).length) })
  mirror('dbc_guard_refusals_total', 'Refusals by the inbound guard, by kind', ['kind'], set => {
    const s = sources.guard.stats
    set({ kind: 'stream' }, s.streamsRefused)
    set({ kind: 'frame' }, s.framesRefused)
    set({ kind: 'deadline' }, s.deadlinesMissed)
    set({ kind: 'identity' }, s.identitiesRefused)
    set({ kind: 'connection' }, s.connectionsThrottled)
  })
  gauge('dbc_guard_buffered_bytes', 'Bytes held in inbound frame buffers now', [], set => { set({}, sources.guard.bufferedBytes()) })
  mirror('dbc_stun_requests_total', 'Datagrams at the STUN responder, by outcome (answered; dropped: not a well-formed binding request, or no reply possible; limited: over the per-source or global rate)', ['outcome'], set => {
    const s = sources.stun?.()
    if (s !== undefined) for (const [k, v] of Object.entries(s)) set({ outcome: k }, v)
  })
  mirror('dbc_webrtc_inbound_refusals_total', 'Inbound WebRTC signalling attempts refused before a PeerConnection was made, by the bound they hit', ['reason'], set => {
    const w = sources.webrtc?.()
    if (w !== undefined) for (const [k, v] of Object.entries(w.refusals)) set({ reason: k }, v)
  })
  gauge('dbc_webrtc_inbound_attempts', 'Inbound WebRTC signalling attempts in flight now', [], set => { const w = sources.webrtc?.(); if (w !== undefined) set({}, w.attemptsInFlight) })

  // the rest comes from subsystems, each present or not
  mirror('dbc_envelope_events_total', 'Envelopes by event (sent, delivered, failed, received, duplicates, relayed, rejected, relayedJunk; unsealedSent and unsealedReceived: direct copies that went without the envelope seal, on /dbc/relay/1.1.0)', ['event'], set => {
    for (const [k, v] of Object.entries(node().envelopes ?? {})) set({ event: k }, v)
  })
  mirror('dbc_membership_events_total', 'Membership gossip by event (sent, received, sendFailures, announcements, shuffles)', ['event'], set => {
    for (const [k, v] of Object.entries(node().membership ?? {})) set({ event: k }, v)
  })
  gauge('dbc_membership_view_peers', 'Peers in the partial membership view', [], set => { const v = node().view; if (v !== undefined) set({}, v) })
  gauge('dbc_provider_slots', 'Task slots: running and queued tasks, and capacity', ['state'], set => {
    const s = node().slots
    if (s === undefined) return
    set({ state: 'running' }, s.running)
    set({ state: 'queued' }, s.queued)
    set({ state: 'cpu_capacity' }, s.cpuSlots)
    set({ state: 'gpu_capacity' }, s.gpuSlots)
  })
  const finishedJobs = new Set<string>()
  gauge('dbc_jobs', 'Grid jobs this node submitted, by status', ['status'], set => {
    const n: Record<string, number> = { running: 0 }
    for (const j of node().jobs ?? []) {
      n[j.status] = (n[j.status] ?? 0) + 1
      // each ended job is observed once (at the first scrape that sees it ended)
      if (j.status !== 'running' && !finishedJobs.has(j.jobId)) {
        finishedJobs.add(j.jobId)
        jobSeconds.observe({ status: j.status }, Math.max(0, j.updatedAt - j.createdAt) / 1000)
      }
    }
    for (const [k, v] of Object.entries(n)) set({ status: k }, v)
  })
  gauge('dbc_job_tasks', 'Tasks of the grid jobs this node submitted, by state', ['state'], set => {
    const n = { done: 0, failed: 0, running: 0, queued: 0 }
    for (const j of node().jobs ?? []) { n.done += j.done; n.failed += j.failed; n.running += j.running; n.queued += j.queued }
    for (const [k, v] of Object.entries(n)) set({ state: k }, v)
  })
  gauge('dbc_training_workers', 'Training jobs this node serves as a group member now', [], set => { const n = node().trainingWorkers; if (n !== undefined) set({}, n) })
  gauge('dbc_chain_send_queue_depth', 'Transactions waiting on (or holding) this node\'s chain send queue', [], set => { const c = node().chain; if (c !== undefined) set({}, c.sendQueue) })
  gauge('dbc_chain_redeems', 'Redeem transactions in the durable outbox, by state', ['state'], set => {
    const c = node().chain
    if (c !== undefined) for (const [k, v] of Object.entries(c.redeems)) set({ state: k }, v)
  })
  gauge('dbc_chain_redeemable_vouchers', 'Vouchers holding value a redeem could collect now (as of the last redeem pass)', [], set => { const c = node().chain; if (c?.redeemable !== undefined) set({}, c.redeemable) })
  gauge('dbc_chain_blocked_vouchers', 'Vouchers with value that cannot be redeemed now (as of the last redeem pass)', [], set => { const c = node().chain; if (c?.blocked !== undefined) set({}, c.blocked) })
  gauge('dbc_ready', 'Whether the node is ready, as /readyz says (joined the network, chain reachable): 1 or 0', [], async set => { const r = await sources.ready?.(); if (r !== undefined) set({}, r ? 1 : 0) })

  // pushed: slot events of the compute peer, all-reduces of training workers
  const started = new Map<string, number>()
  const onSlot = (e: { type: string, taskId: string, ok?: boolean, reason?: string }): void => {
    if (e.type === 'started') {
      tasks.inc({ outcome: 'started' })
      if (started.size >= 10_000) started.delete(started.keys().next().value as string)
      started.set(e.taskId, performance.now())
    } else if (e.type === 'finished') {
      tasks.inc({ outcome: e.ok === true ? 'succeeded' : 'failed' })
      const t0 = started.get(e.taskId)
      started.delete(e.taskId)
      if (t0 !== undefined) taskSeconds.observe({ ok: String(e.ok === true) }, (performance.now() - t0) / 1000)
    } else if (e.type === 'refused') {
      tasks.inc({ outcome: 'refused' })
      refusals.inc({ reason: /queue is full/.test(e.reason ?? '') ? 'queue_full' : 'never_fits' })
    } else if (e.type === 'cancelled') {
      tasks.inc({ outcome: 'cancelled' })
    }
  }
  const onAllReduce = (m: unknown): void => {
    const r = m as { durationMs?: number, bytesSent?: number, bytesReceived?: number, timedOut?: boolean }
    if (typeof r.durationMs === 'number') allReduceSeconds.observe(r.durationMs / 1000)
    allReduceBytes.inc({ direction: 'sent' }, r.bytesSent ?? 0)
    allReduceBytes.inc({ direction: 'received' }, r.bytesReceived ?? 0)
    if (r.timedOut === true) allReduceTimeouts.inc()
  }
  let unwatch: (() => void) | undefined
  const bannedAt = new Map<string, number>()

  return {
    registry,
    /** A peer broke a protocol: counted by the protocol served now (the guard's context) and the offence. */
    badInput (peer: string, offence: string, banned: boolean, protocol?: string): void {
      badInput.inc({ protocol: protocol ?? currentProtocolContext()?.protocol ?? 'unknown', offence })
      if (!banned) return
      // a banned peer's streams still in flight report again: one ban per peer per window
      const now = Date.now()
      const at = bannedAt.get(peer)
      if (at !== undefined && now - at < BAN_WINDOW_MS) return
      bannedAt.delete(peer)
      if (bannedAt.size >= 10_000) bannedAt.delete(bannedAt.keys().next().value as string)
      bannedAt.set(peer, now)
      bans.inc()
    },
    /** Starts listening to the compute peer's slot events and the training workers' all-reduces. */
    watch (): void {
      if (unwatch !== undefined) return
      const events = sources.slotEvents?.()
      events?.on('event', onSlot)
      subscribe(ALLREDUCE_CHANNEL, onAllReduce)
      unwatch = () => {
        events?.off('event', onSlot)
        unsubscribe(ALLREDUCE_CHANNEL, onAllReduce)
      }
    },
    stop (): void { unwatch?.(); unwatch = undefined },
    /** Counts a task provider's offers and answers (wraps its `offer`, `runTask` and `runBundle` in place). */
    meterProvider<P extends MeteredProvider> (provider: P): P {
      const offer = provider.offer.bind(provider)
      const runTask = provider.runTask.bind(provider)
      provider.offer = (...args) => {
        const o = offer(...args)
        const refusal = o.refusal ?? ''
        offers.inc(refusal === '' ? { result: 'offered', code: '' } : { result: 'refused', code: codeOf(refusal) })
        return o
      }
      const count = (r: { ok?: boolean | null, error?: string | null }): void => { answers.inc(r.ok === true ? { result: 'ok', code: '' } : { result: 'error', code: codeOf(r.error ?? '') }) }
      provider.runTask = async (...args) => {
        const r = await runTask(...args)
        count(r)
        return r
      }
      // the tasks of a bundle are answers too, each counted
      const runBundle = provider.runBundle?.bind(provider)
      if (runBundle !== undefined) {
        provider.runBundle = async (...args) => {
          const rs = await runBundle(...args)
          for (const r of rs) count(r)
          return rs
        }
      }
      return provider
    },
    async text (): Promise<string> { return await registry.metrics() },
    contentType: registry.contentType
  }
}

interface MeteredProvider {
  offer: (...args: any[]) => { refusal?: string | null }
  runTask: (...args: any[]) => Promise<{ ok?: boolean | null, error?: string | null }>
  runBundle?: (...args: any[]) => Promise<Array<{ ok?: boolean | null, error?: string | null }>>
}

/** The code an answer starts with ("PAYMENT_MISSING: ..."), bounded for a label; "refused: ..." is a lease refusal. */
export function codeOf (text: string): string {
  if (text.startsWith('refused:')) return 'LEASE_REFUSED'
  const m = /^([A-Z][A-Z0-9_]{1,40}):/.exec(text)
  return m === null ? 'OTHER' : m[1]
}

/** The libp2p metrics for createHost, registering into `registry` (with the process's CPU, memory, event loop). */
export function libp2pMetrics (registry: Registry): (components: any) => Metrics {
  return prometheusMetrics({ registry, collectDefaultMetrics: true })
}

export { Registry }
