// `lookup`: N findPeer lookups over a static network (one per node by default), started
// as a Poisson stream so a bounded number run at once, on routing tables built by joining
// (default) or the omniscient reference tables (`--set tables=omniscient`). Reports
// success, hop and RPC counts, latency, how fast the engine ran, and the join separately.
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, type KadLookups, type LookupParams } from '../kademlia/lookup.js'
import { cdfSeries, histogramSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld, type World, type WorldOptions } from './world.js'
import { runLookupChurn } from './lookup-churn.js'

const EVENT_START = 10

export interface LookupRunOptions extends ScenarioOptions {
  lookup?: Partial<LookupParams>
  natShare?: number
  /** Mean gap between lookup starts, ms of virtual time. */
  interArrivalMs?: number
  /** Join progress with figures (bench-entry's time and memory guard). */
  onBuildProgress?: WorldOptions['onBuildProgress']
}

export function runLookup (opts: LookupRunOptions): ScenarioResult {
  if (opts.extra?.session !== undefined) return runLookupChurn(opts)
  const world = buildWorld(opts.nodes, opts.seed, worldOptions(opts))
  // --set partition=1 cuts the Americas (longitude -170..-30) off from the rest.
  if (opts.extra?.partition === 1) world.net.partitionByLongitude(-170, -30)
  return runLookupsOn(world, opts)
}

/** The world options a lookup-style run reads from its options and `--set` values. */
export function worldOptions (opts: LookupRunOptions): WorldOptions {
  const x = opts.extra ?? {}
  return {
    population: { natShare: opts.natShare ?? x.natShare ?? 0.3 },
    network: { lossRate: x.loss ?? 0, jitterMeanMs: x.jitterMs ?? 1 },
    lookup: { ...opts.lookup, ...pickLookupParams(x) },
    tables: x.tables === 1 ? 'omniscient' : 'joined',
    prefixLength: x.prefixLength,
    joinGapMs: x.joinGapMs,
    settleRounds: x.settleRounds,
    buildSlots: x.buildSlots,
    onProgress: opts.onProgress,
    onBuildProgress: opts.onBuildProgress
  }
}

export function runLookupsOn (world: World, opts: LookupRunOptions): ScenarioResult {
  const { q, net, tables, pop } = world
  const total = opts.count ?? opts.nodes
  const wRng = world.rng.fork()
  const lookups = world.lookups as KadLookups
  const gap = opts.interArrivalMs ?? opts.extra?.interArrivalMs ?? 1
  const servers = tables.servers
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const events0 = q.pushed
  let started = 0
  let retries = 0
  q.push(0, EVENT_START, 0, 0, 0)
  let nextProgress = 0
  const progressEvery = Math.max(1, Math.floor(total / 50))
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind
    if (kind === EVENT_START) {
      const origin = wRng.int(world.initialNodes)
      let target = servers[wRng.int(servers.length)]
      while (target === origin) target = servers[wRng.int(servers.length)]
      if (lookups.start(now, origin, target)) {
        started++
        if (started < total) q.push(now + wRng.exp(gap), EVENT_START, 0, 0, 0)
      } else {
        retries++
        q.push(now + 5, EVENT_START, 0, 0, 0)
      }
    } else if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) {
      lookups.handle(now, kind, q.curA, q.curB, q.curC)
    } else if (world.maintenance !== null) {
      world.maintenance.handle(now, kind, q.curA, q.curB)
    }
    if (opts.onProgress !== undefined) {
      const done = lookups.stats.succeeded + lookups.stats.failed
      if (done >= nextProgress) { opts.onProgress(done, total); nextProgress = done + progressEvery }
    }
  }
  const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const cpuMs = (cpu.user + cpu.system) / 1000
  const events = q.pushed - events0
  const st = lookups.stats
  const lat = sortedCopy(lookups.latencySamples())
  const hopsTotal = st.hops.reduce((a, b, i) => a + b * i, 0)
  const done = st.succeeded + st.failed
  let avgContacts = 0
  for (let n = 0; n < pop.count; n++) avgContacts += tables.size(n)
  avgContacts /= pop.count
  const p = lookups.p
  return {
    scenario: 'lookup',
    seed: opts.seed,
    nodes: opts.nodes,
    params: { ...p, lookups: total, natShare: round(mean(pop.nat)), interArrivalMs: gap, lossRate: net.opts.lossRate, partitioned: opts.extra?.partition === 1, table: tableLabel(world) },
    summary: {
      lookups: done,
      succeeded: st.succeeded,
      failed: st.failed,
      successRate: round(st.succeeded / Math.max(1, done)),
      meanHops: round(hopsTotal / Math.max(1, st.succeeded)),
      rpcsPerLookup: round(st.rpcs / Math.max(1, done)),
      timeouts: st.timeouts,
      latencyP50Ms: round(quantile(lat, 0.5)),
      latencyP90Ms: round(quantile(lat, 0.9)),
      latencyP99Ms: round(quantile(lat, 0.99)),
      meanContactsPerNode: round(avgContacts),
      candidateOverflow: st.overflow,
      startRetries: retries,
      ...joinSummary(world)
    },
    charts: [
      { id: 'lookup-latency-cdf', title: 'Lookup latency (CDF)', kind: 'line', xLabel: 'ms', yLabel: 'share of lookups', series: [cdfSeries('findPeer latency', lat)] },
      { id: 'lookup-hops', title: 'Hops to the target', kind: 'bar', xLabel: 'hops', yLabel: 'share of successful lookups', series: [histogramSeries('hops', st.hops)] },
      { id: 'lookup-rpcs', title: 'RPCs per lookup', kind: 'bar', xLabel: 'RPCs', yLabel: 'share of lookups', series: [histogramSeries('RPCs', st.rpcHist)] }
    ],
    invariants: [
      { name: 'every lookup finished exactly once', ok: done === total && started === total, detail: `${done} finished of ${total} started ${started}` },
      { name: 'no lookup left in flight', ok: lookups.inFlight === 0, detail: `${lookups.inFlight} in flight` }
    ],
    notes: [
      world.trie !== null
        ? `Routing tables built by joining: kad-dht 16's trie (prefixLength ${world.trie.prefixLength}, k ${world.trie.k}), filled only by protocol events (bootstrap, self-query, refresh per common prefix length, responders and server queriers); NAT'ed nodes are DHT clients.`
        : 'OMNISCIENT reference tables: classic k-buckets filled from global knowledge (k servers per common-prefix-length bucket); NAT\'ed nodes are DHT clients.',
      `Each RPC costs ${p.rpcRtts} round trips (dial + request); latency = great circle at 200 km/ms x 1.7 + access links + jitter.`
    ],
    perf: {
      wallMs: round(wallMs),
      setupMs: round(world.setupMs),
      events,
      eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / opts.nodes),
      heapUsedBytes: world.memory.heapUsed,
      arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss,
      forcedGc: world.memory.forcedGc,
      rates: {
        lookupsPerWallSec: round(done / (wallMs / 1000)), lookupsPerCpuSec: round(done / (cpuMs / 1000)), lookupCpuSec: round(cpuMs / 1000), setupCpuSec: round(world.setupCpuMs / 1000),
        ...(world.join !== null ? { joinWallSec: round(world.join.wallMs / 1000), joinCpuSec: round(world.join.cpuMs / 1000), joinEventsPerSec: round(world.join.events / (world.join.wallMs / 1000)), joinWalksPerWallSec: round(world.join.walks / (world.join.wallMs / 1000)) } : {})
      }
    }
  }
}

export function tableLabel (world: World): string {
  return world.trie !== null ? `joined: kad-dht trie, prefixLength ${world.trie.prefixLength}` : 'omniscient classic k-buckets (reference)'
}

/** The join figures of a world built by joining, for a scenario summary. */
export function joinSummary (world: World): Record<string, number> {
  const j = world.join
  if (j === null) return {}
  return {
    'join.walksPerNode': round(j.walks / world.initialNodes),
    'join.rpcsPerNode': round(j.walkRpcs / world.initialNodes),
    'join.virtualMinutes': round(j.virtualMs / 60_000),
    'join.maxWalksInFlight': j.maxWalksInFlight,
    'join.meanContacts': round(j.meanContacts),
    'join.fullLeafRejects': j.rejectedFull,
    'join.evicted': j.evicted
  }
}

function pickLookupParams (extra: Record<string, number> | undefined): Partial<LookupParams> {
  const out: Partial<LookupParams> = {}
  if (extra === undefined) return out
  for (const key of ['k', 'alpha', 'disjointPaths', 'rpcRtts', 'rpcTimeoutMs', 'maxConcurrent'] as const) {
    if (extra[key] !== undefined) out[key] = extra[key]
  }
  if (extra.evictOnTimeout !== undefined) out.evictOnTimeout = extra.evictOnTimeout === 1
  if (extra.learnNamed !== undefined) out.learnNamed = extra.learnNamed === 1
  return out
}
