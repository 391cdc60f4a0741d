// `capability`: "nearest peers with capability X". Providers build capability records
// (src/core/capability buildCapabilityRecord) and are indexed under every key indexKeysOf
// gives; a query runs the core CapabilitySearch machine: each step's keys are looked up in
// the DHT (one findPeer each, with the Kademlia model, to the server closest to the key:
// the node that holds those provider records), the step's records are fed back, and the
// search widens ring by ring until it has `want` matches. Measured: lookups and latency per
// query, and how many of the true nearest matches it returned (recall).
import { buildCapabilityRecord, type CapabilityRecord, type SignedCapability } from '../../src/core/capability/record.js'
import { indexKeysOf } from '../../src/core/capability/query.js'
import { CapabilitySearch } from '../../src/core/capability/search.js'
import { toHex } from '../../src/core/identity/index.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, KadLookups } from '../kademlia/lookup.js'
import { distanceKm } from '../network/population.js'
import { cdfSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld } from './world.js'

const EVENT_QUERY = 60
const MODELS = [['RTX4090', 0.4], ['RTX3090', 0.3], ['A100', 0.2], ['H100', 0.1]] as const

export function runCapability (opts: ScenarioOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed)
  const { q, net, ids, tables, pop } = world
  const n = pop.count
  const queries = opts.count ?? 300
  const want = opts.extra?.want ?? 10
  const providerShare = opts.extra?.providerShare ?? 0.05
  const rng = world.rng.fork()
  // Providers and the index: key (hex) -> provider numbers.
  const providers: number[] = []
  const model: string[] = []
  const records = new Map<number, CapabilityRecord>()
  const index = new Map<string, number[]>()
  const keyTarget = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    if (pop.nat[i] === 1 || rng.next() >= providerShare) continue
    let r = rng.next(); let m: string = MODELS[0][0]
    for (const [name, share] of MODELS) { if (r < share) { m = name; break } r -= share }
    const peerId = new Uint8Array([0, 0, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff])
    const rec = buildCapabilityRecord({ peerId, gpus: [{ model: m, count: 1 + rng.int(4), memoryMib: 24_576 }], cpuCores: 16, memoryMib: 65_536, lat: pop.latDeg[i], lon: pop.lonDeg[i], issuedAt: 0, ttlMs: 3_600_000, seq: 1 })
    providers.push(i); model.push(m); records.set(i, rec)
    for (const k of indexKeysOf(rec)) {
      const hex = toHex(k.key)
      let list = index.get(hex)
      if (list === undefined) { list = []; index.set(hex, list) }
      list.push(i)
    }
  }
  // The server whose id is XOR-closest to a key holds its provider records.
  const holderOf = (key: Uint8Array): number => {
    const hex = toHex(key)
    const cached = keyTarget.get(hex)
    if (cached !== undefined) return cached
    const hi = ((key[2] << 24) | (key[3] << 16) | (key[4] << 8) | key[5]) >>> 0
    let best = tables.servers[0]; let bd = Infinity
    const around = ids.lowerBound(hi * 2 ** 21)
    for (let j = Math.max(0, around - 64); j < Math.min(n, around + 64); j++) {
      if (pop.nat[j] === 1) continue
      const d = ((ids.hi[j] ^ hi) >>> 0)
      if (d < bd) { bd = d; best = j }
    }
    keyTarget.set(hex, best)
    return best
  }
  const lookups = new KadLookups(q, net, ids, tables, world.rng.fork(), {}, queries * 8)
  const dummySigned = dbc.capability.v1.SignedCapability.create({}) as SignedCapability
  interface Q { search: CapabilitySearch, submitter: number, start: number, pending: number, keys: Uint8Array[], lookups: number, failed: number }
  const active = new Map<number, Q>()
  const latency: number[] = []; const lookupsPerQuery: number[] = []; const recall: number[] = []; const found: number[] = []
  let failedLookups = 0; let finishedQueries = 0; let wrongResults = 0
  const capability = 'gpu:A100'
  const runStep = (tag: number, qq: Q, now: number): void => {
    const step = qq.search.nextStep()
    if (step === undefined) { finish(tag, qq, now); return }
    qq.keys = step.keys; qq.pending = step.keys.length
    for (const key of step.keys) {
      qq.lookups++
      const target = holderOf(key)
      if (target === qq.submitter) { q.push(now, EVENT_RPC_DONE + 1000, tag, 0, 0); continue } // answered locally
      if (!lookups.start(now, qq.submitter, target, tag)) q.push(now + 5, EVENT_RPC_DONE + 1000, tag, 0, 0)
    }
  }
  const stepDone = (tag: number, now: number): void => {
    const qq = active.get(tag)
    if (qq === undefined || --qq.pending > 0) return
    for (const key of qq.keys) for (const p of index.get(toHex(key)) ?? []) qq.search.addVerified(records.get(p) as CapabilityRecord, dummySigned)
    runStep(tag, qq, now)
  }
  const finish = (tag: number, qq: Q, now: number): void => {
    active.delete(tag)
    finishedQueries++
    const res = qq.search.results()
    for (const r of res) if (!r.record.gpus.some(g => g.model === 'A100')) wrongResults++
    latency.push(now - qq.start); lookupsPerQuery.push(qq.lookups); found.push(res.length)
    // Recall against the true nearest matching providers (by great-circle distance).
    const truth = providers.filter((_, j) => model[j] === 'A100').sort((a, b) => distanceKm(pop, qq.submitter, a) - distanceKm(pop, qq.submitter, b)).slice(0, want)
    const got = new Set(res.map(r => r.record.peerId[2] * 65536 + r.record.peerId[3] * 256 + r.record.peerId[4]))
    recall.push(truth.length === 0 ? 1 : truth.filter(t => got.has(t)).length / truth.length)
    opts.onProgress?.(finishedQueries, queries)
  }
  lookups.onFinish = (tag, ok) => { if (!ok) failedLookups++; pendingDone.push(tag) }
  const pendingDone: number[] = []
  for (let k = 0; k < queries; k++) q.push(k * 200, EVENT_QUERY, k, 0, 0)
  const t0 = performance.now(); const e0 = q.pushed
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind
    if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) lookups.handle(now, kind, q.curA, q.curB, q.curC)
    else if (kind === EVENT_RPC_DONE + 1000) stepDone(q.curA, now)
    else if (kind === EVENT_QUERY) {
      const submitter = rng.int(n)
      const qq: Q = { search: new CapabilitySearch({ query: { capability, want }, lat: pop.latDeg[submitter], lon: pop.lonDeg[submitter] }), submitter, start: now, pending: 0, keys: [], lookups: 0, failed: 0 }
      active.set(q.curA, qq)
      runStep(q.curA, qq, now)
    }
    while (pendingDone.length > 0) stepDone(pendingDone.pop() as number, now)
  }
  const wallMs = performance.now() - t0
  const events = q.pushed - e0
  const lat = sortedCopy(latency)
  return {
    scenario: 'capability',
    seed: opts.seed,
    nodes: n,
    params: { queries, want, capability, providerShare, providers: providers.length, indexKeys: index.size, levels: '5,3,1' },
    summary: {
      queriesFinished: finishedQueries,
      meanDhtLookupsPerQuery: round(mean(lookupsPerQuery)),
      latencyP50Ms: round(quantile(lat, 0.5)),
      latencyP90Ms: round(quantile(lat, 0.9)),
      meanResults: round(mean(found)),
      recallOfNearest: round(mean(recall)),
      failedDhtLookups: failedLookups
    },
    charts: [{ id: 'capability-latency', title: `Capability query latency (${capability}, want ${want})`, kind: 'line', xLabel: 'ms', yLabel: 'share of queries', series: [cdfSeries('query latency', lat)] }],
    invariants: [
      { name: 'every query finished exactly once', ok: finishedQueries === queries && active.size === 0, detail: `${finishedQueries} of ${queries}, ${active.size} open` },
      { name: 'every result has the capability asked for', ok: wrongResults === 0, detail: `${wrongResults} results without an A100` }
    ],
    notes: ['Each key of a search step is one findPeer (Kademlia model) to the server closest to the key; steps run their keys in parallel. Records are taken as verified (addVerified): signatures are not what is simulated here.'],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: { queriesPerWallSec: round(queries / (wallMs / 1000)) }
    }
  }
}
