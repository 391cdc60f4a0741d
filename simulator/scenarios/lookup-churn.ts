// findPeer lookups while nodes come and go, on tables built by joining
// (`--scenario lookup --set session=30`):
// - sessions are Pareto (shape 1.5) with the given MEDIAN in minutes; offline gaps are
//   exponential with a mean of a quarter of the mean session (80% long-run availability);
//   every node starts online (just joined) with a residual session;
// - a node that leaves stays in every table that holds it: kad-dht 16 drops a contact only
//   when a newcomer finds its leaf full and the contact fails a ping (trie-tables.ts), so
//   RPCs to departed nodes time out (rpcTimeoutMs of simulated time) and the walk goes on;
// - a node that comes back starts with an empty table and joins again (bootstrap,
//   self-query, refresh walk); new ids (`newShare` of N, default 5%) join during the window;
// - lookups (origin: a joined online node; target: a joined online server) are spread
//   over the window. The 5-minute periodic refresh is off by default (`--set refresh=1`
//   turns it on): it only adds contacts, so leaving it out errs on the side of failures,
//   and it is most of the CPU cost of a run.
import { ChurnProcess, EVENT_NODE_DOWN, EVENT_NODE_UP } from '../network/churn.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, type KadLookups } from '../kademlia/lookup.js'
import { cdfSeries, histogramSeries, quantile, round, sortedCopy } from './stats.js'
import { joinSummary, tableLabel, worldOptions, type LookupRunOptions } from './lookup.js'
import type { ScenarioResult } from './types.js'
import { buildWorld } from './world.js'

const EVENT_LOOKUP = 30
const EVENT_NEWCOMER = 31

export function runLookupChurn (opts: LookupRunOptions): ScenarioResult {
  const x = opts.extra ?? {}
  const medianMin = x.session ?? 30
  const windowMin = x.minutes ?? 20
  const newShare = x.newShare ?? 0.05
  const n = opts.nodes
  const extra = Math.round(n * newShare)
  const world = buildWorld(n, opts.seed, { ...worldOptions(opts), extraIds: extra })
  const { q, net, pop } = world
  const lookups = world.lookups as KadLookups
  const maint = world.maintenance
  if (maint === null || world.trie === null) throw new Error('the churn run needs tables built by joining (not --set tables=omniscient)')
  const online = net.online
  const rng = world.rng.fork()
  const shape = 1.5
  // Pareto median = xm * 2^(1/shape); mean = xm * shape / (shape - 1).
  const xm = medianMin * 60_000 / Math.pow(2, 1 / shape)
  const meanSessionMs = xm * shape / (shape - 1)
  const churn = new ChurnProcess(q, world.rng.fork(), { meanSessionMs, paretoShape: shape, meanOfflineMs: meanSessionMs / 4 })
  const t0 = q.curTime
  const end = t0 + windowMin * 60_000
  maint.opts.until = x.refresh === 1 ? end : t0
  for (let i = 0; i < n; i++) q.push(t0 + rng.next() * churn.session(), EVENT_NODE_DOWN, i, 0, 0)
  for (let i = 0; i < extra; i++) q.push(t0 + rng.next() * (end - t0), EVENT_NEWCOMER, n + i, 0, 0)
  const total = opts.count ?? Math.min(n, 20_000)
  const gap = (end - t0) / total
  q.push(t0 + 60_000, EVENT_LOOKUP, 0, 0, 0)
  // Joined, online nodes; joined online servers (targets).
  const joinedAt = new Float64Array(pop.count).fill(-1)
  for (let i = 0; i < n; i++) joinedAt[i] = t0
  const prevJoined = maint.onJoined
  maint.onJoined = (node, now) => { joinedAt[node] = now; prevJoined?.(node, now) }
  const pick = (servers: boolean): number => {
    for (;;) {
      const c = servers ? world.tables.servers[rng.int(world.tables.servers.length)] : rng.int(pop.count)
      if (online[c] === 1 && joinedAt[c] >= 0) return c
    }
  }
  lookups.admitLookup = (_tag, _ctx, origin) => {
    if (online[origin] === 1 && joinedAt[origin] >= 0) return true
    replaced++; q.push(q.curTime, EVENT_LOOKUP, 1, 0, 0) // a = 1: a replacement, outside the Poisson stream
    return false
  }
  const started0 = lookups.stats.started
  const timeouts0 = lookups.stats.timeouts; const rpcs0 = lookups.stats.rpcs; const dead0 = lookups.stats.unreachableRpcs
  let requested = 0; let replaced = 0; let downs = 0; let ups = 0; let newcomers = 0
  const wall0 = performance.now(); const cpu0 = process.cpuUsage(); const events0 = q.pushed
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind; const a = q.curA
    if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) lookups.handle(now, kind, a, q.curB, q.curC)
    else if (kind === EVENT_NODE_DOWN) {
      if (online[a] === 0 || now >= end) continue
      maint.leave(a); joinedAt[a] = -1; downs++
      if (now < end) q.push(now + world.rng.exp(meanSessionMs / 4), EVENT_NODE_UP, a, 0, 0)
    } else if (kind === EVENT_NODE_UP || kind === EVENT_NEWCOMER) {
      if (now >= end) continue
      maint.join(now, a)
      if (kind === EVENT_NEWCOMER) newcomers++; else ups++
      q.push(now + churn.session(), EVENT_NODE_DOWN, a, 0, 0)
    } else if (kind === EVENT_LOOKUP) {
      if (now >= end) continue
      const origin = pick(false)
      let target = pick(true)
      while (target === origin) target = pick(true)
      // When every slot is busy the lookup waits for one (it is dropped and replaced by a
      // new pick if its origin left meanwhile: admitLookup above).
      lookups.startOrWait(now, origin, target)
      if (a === 0 && ++requested < total) q.push(now + rng.exp(gap), EVENT_LOOKUP, 0, 0, 0)
    } else maint.handle(now, kind, a, q.curB)
  }
  const wallMs = performance.now() - wall0
  const cpu = process.cpuUsage(cpu0)
  const st = lookups.stats
  const started = st.started - started0
  const done = st.succeeded + st.failed
  const lat = sortedCopy(lookups.latencySamples())
  const hopsTotal = st.hops.reduce((acc, b, i) => acc + b * i, 0)
  let up = 0
  for (let i = 0; i < pop.count; i++) up += online[i]
  const events = q.pushed - events0
  return {
    scenario: 'lookup',
    seed: opts.seed,
    nodes: n,
    params: { ...lookups.p, lookups: total, table: tableLabel(world), medianSessionMin: medianMin, paretoShape: shape, meanSessionMin: round(meanSessionMs / 60_000), meanOfflineMin: round(meanSessionMs / 4 / 60_000), windowMin, newIds: extra, periodicRefresh: x.refresh === 1 },
    summary: {
      lookups: done,
      succeeded: st.succeeded,
      failed: st.failed,
      successRate: round(st.succeeded / Math.max(1, done)),
      meanHops: round(hopsTotal / Math.max(1, st.succeeded)),
      rpcsPerLookup: round((st.rpcs - rpcs0) / Math.max(1, done)),
      timeoutsPerLookup: round((st.timeouts - timeouts0) / Math.max(1, done)),
      deadRpcsPerLookup: round((st.unreachableRpcs - dead0) / Math.max(1, done)),
      latencyP50Ms: round(quantile(lat, 0.5)),
      latencyP90Ms: round(quantile(lat, 0.9)),
      departures: downs,
      returns: ups,
      newcomers,
      onlineAtEnd: up,
      walkTimeouts: st.walkTimeouts,
      evictedByFullLeafPing: world.trie.stats.evicted,
      slotWaits: st.waited,
      maxWaitingForSlot: st.maxWaiting,
      meanSlotWaitMs: round(st.waitMs / Math.max(1, st.waited - st.waitDropped)),
      lookupsReplacedOriginLeft: replaced,
      ...joinSummary(world)
    },
    charts: [
      { id: 'churn-lookup-latency-cdf', title: 'Lookup latency under churn (CDF)', kind: 'line', xLabel: 'ms', yLabel: 'share of lookups', series: [cdfSeries('findPeer latency', lat)] },
      { id: 'churn-lookup-hops', title: 'Hops to the target under churn', kind: 'bar', xLabel: 'hops', yLabel: 'share of successful lookups', series: [histogramSeries('hops', st.hops)] }
    ],
    invariants: [
      { name: 'every lookup finished exactly once', ok: done === started && lookups.inFlight === 0, detail: `${done} finished of ${started} started, ${lookups.inFlight} in flight` }
    ],
    notes: [
      `Churn: Pareto sessions (shape ${shape}) with a median of ${medianMin} min (mean ${round(meanSessionMs / 60_000)} min), exponential offline gaps (mean ${round(meanSessionMs / 4 / 60_000)} min); ${extra} new ids join during the ${windowMin}-minute window.`,
      'Departed nodes stay in tables until a full-leaf ping evicts them (kad-dht 16 rule); RPCs to them time out after rpcTimeoutMs of simulated time. Returning nodes rejoin with an empty table.'
    ],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc,
      rates: { lookupsPerWallSec: round(done / (wallMs / 1000)), churnCpuSec: round((cpu.user + cpu.system) / 1e6), joinWallSec: round((world.join?.wallMs ?? 0) / 1000), joinCpuSec: round((world.join?.cpuMs ?? 0) / 1000) }
    }
  }
}
