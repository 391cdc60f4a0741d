// `lookup`: N findPeer lookups over a static network (one per node by default), started
// as a Poisson stream so a bounded number run at once. Reports success, hop counts,
// latency and how fast the engine ran.
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, KadLookups, type LookupParams } from '../kademlia/lookup.js'
import { cdfSeries, histogramSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld, type World } from './world.js'

const EVENT_START = 10

export interface LookupRunOptions extends ScenarioOptions {
  lookup?: Partial<LookupParams>
  natShare?: number
  /** Mean gap between lookup starts, ms of virtual time. */
  interArrivalMs?: number
}

export function runLookup (opts: LookupRunOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed, {
    population: { natShare: opts.natShare ?? opts.extra?.natShare ?? 0.3 },
    network: { lossRate: opts.extra?.loss ?? 0, jitterMeanMs: opts.extra?.jitterMs ?? 1 },
    k: opts.lookup?.k ?? opts.extra?.k,
    triePrefixLength: opts.extra?.trie
  })
  // --set partition=1 cuts the Americas (longitude -170..-30) off from the rest.
  if (opts.extra?.partition === 1) world.net.partitionByLongitude(-170, -30)
  return runLookupsOn(world, opts)
}

export function runLookupsOn (world: World, opts: LookupRunOptions): ScenarioResult {
  const { q, net, ids, tables, pop } = world
  const total = opts.count ?? opts.nodes
  const wRng = world.rng.fork(); const lRng = world.rng.fork()
  const lookups = new KadLookups(q, net, ids, tables, lRng, { ...opts.lookup, ...pickLookupParams(opts.extra) }, total)
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
      const origin = wRng.int(pop.count)
      let target = servers[wRng.int(servers.length)]
      while (target === origin) target = servers[wRng.int(servers.length)]
      if (lookups.start(now, origin, target)) {
        started++
        if (started < total) q.push(now + wRng.exp(gap), EVENT_START, 0, 0, 0)
      } else {
        retries++
        q.push(now + 5, EVENT_START, 0, 0, 0)
      }
    } else {
      lookups.handle(now, kind, q.curA, q.curB, q.curC)
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
    params: { ...p, lookups: total, natShare: round(mean(pop.nat)), interArrivalMs: gap, lossRate: net.opts.lossRate, partitioned: opts.extra?.partition === 1, table: (opts.extra?.trie ?? 0) > 0 ? `kad-dht trie, prefixLength ${opts.extra?.trie}` : 'classic k-buckets' },
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
      startRetries: retries
    },
    charts: [
      { id: 'lookup-latency-cdf', title: 'Lookup latency (CDF)', kind: 'line', xLabel: 'ms', yLabel: 'share of lookups', series: [cdfSeries('findPeer latency', lat)] },
      { id: 'lookup-hops', title: 'Hops to the target', kind: 'bar', xLabel: 'hops', yLabel: 'share of successful lookups', series: [histogramSeries('hops', st.hops)] }
    ],
    invariants: [
      { name: 'every lookup finished exactly once', ok: done === total && started === total, detail: `${done} finished of ${total} started ${started}` },
      { name: 'no lookup left in flight', ok: lookups.inFlight === 0, detail: `${lookups.inFlight} in flight` }
    ],
    notes: [
      'Kademlia routing tables are fully refreshed classic k-buckets (k servers per common-prefix-length bucket); NAT\'ed nodes are DHT clients.',
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
      rates: { lookupsPerWallSec: round(done / (wallMs / 1000)), lookupsPerCpuSec: round(done / (cpuMs / 1000)), lookupCpuSec: round(cpuMs / 1000), setupCpuSec: round(world.setupCpuMs / 1000) }
    }
  }
}

function pickLookupParams (extra: Record<string, number> | undefined): Partial<LookupParams> {
  const out: Partial<LookupParams> = {}
  if (extra === undefined) return out
  for (const key of ['k', 'alpha', 'disjointPaths', 'rpcRtts', 'rpcTimeoutMs', 'maxConcurrent'] as const) {
    if (extra[key] !== undefined) out[key] = extra[key]
  }
  return out
}
