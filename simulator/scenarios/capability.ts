// `capability`: "nearest peers with capability X", found only through the DHT. Providers
// build capability records (src/core/capability buildCapabilityRecord) and publish each
// under every key indexKeysOf gives, as kad-dht's provide does: a getClosestPeers walk to
// the key, then the record is stored on the k closest servers that answered. A query runs
// the core CapabilitySearch machine: each step's keys are looked up with a walk to the key
// (kad-dht's findProviders), and the providers held by the servers that answered are all it
// learns (no global index); the step's records are fed back and the search widens ring by
// ring until it has `want` matches. Measured: walks and latency per query, and how many of
// the true nearest matches it returned (recall). Tables are built by joining.
import { buildCapabilityRecord, type CapabilityRecord, type SignedCapability } from '../../src/core/capability/record.js'
import { indexKeysOf } from '../../src/core/capability/query.js'
import { CapabilitySearch } from '../../src/core/capability/search.js'
import { toHex } from '../../src/core/identity/index.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, type KadLookups } from '../kademlia/lookup.js'
import { distanceKm } from '../network/population.js'
import { cdfSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld } from './world.js'

const EVENT_QUERY = 60
const EVENT_PUBLISH = 61
const EVENT_WALK_AGAIN = 62
const MODELS = [['RTX4090', 0.4], ['RTX3090', 0.3], ['A100', 0.2], ['H100', 0.1]] as const

/** Key bytes (a multihash: 2 header bytes, then the digest) as a kad key (hi 32 bits, lo 21 bits). */
function keyParts (key: Uint8Array): [number, number] {
  const hi = ((key[2] << 24) | (key[3] << 16) | (key[4] << 8) | key[5]) >>> 0
  const lo = ((key[6] << 13) | (key[7] << 5) | (key[8] >>> 3)) >>> 0
  return [hi, lo]
}

export function runCapability (opts: ScenarioOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed)
  const { q, ids, pop } = world
  const lookups = world.lookups as KadLookups
  const n = pop.count
  const queries = opts.count ?? 300
  const want = opts.extra?.want ?? 10
  const providerShare = opts.extra?.providerShare ?? 0.05
  const rng = world.rng.fork()
  // Providers and their records (a record is the provider's own data: what the DHT stores is which providers).
  const providers: number[] = []
  const model: string[] = []
  const records = new Map<number, CapabilityRecord>()
  const publications: Array<{ provider: number, key: Uint8Array }> = []
  for (let i = 0; i < n; i++) {
    if (pop.nat[i] === 1 || rng.next() >= providerShare) continue
    let r = rng.next(); let m: string = MODELS[0][0]
    for (const [name, share] of MODELS) { if (r < share) { m = name; break } r -= share }
    const peerId = new Uint8Array([0, 0, (i >>> 16) & 0xff, (i >>> 8) & 0xff, i & 0xff])
    const rec = buildCapabilityRecord({ peerId, gpus: [{ model: m, count: 1 + rng.int(4), memoryMib: 24_576 }], cpuCores: 16, memoryMib: 65_536, lat: pop.latDeg[i], lon: pop.lonDeg[i], issuedAt: 0, ttlMs: 3_600_000, seq: 1 })
    providers.push(i); model.push(m); records.set(i, rec)
    for (const k of indexKeysOf(rec)) publications.push({ provider: i, key: k.key })
  }
  // What each server stores: key (hex) -> providers. Filled only by ADD_PROVIDER after a walk.
  const stores = new Map<number, Map<string, number[]>>()
  const k = lookups.p.k
  // Walk contexts by tag: publications (tag < publications.length) and query keys (above).
  const responders = new Map<number, number[]>()
  const queryOfTag = new Map<number, number>()
  const walkKey = new Map<number, Uint8Array>()
  let nextTag = publications.length
  const startWalk = (now: number, origin: number, tag: number, key: Uint8Array): void => {
    const [hi, lo] = keyParts(key)
    walkKey.set(tag, key)
    if (!lookups.startWalk(now, origin, hi, lo, tag)) q.push(now + 20, EVENT_WALK_AGAIN, tag, origin, 0)
  }
  lookups.onWalkResponse = (tag, r) => { responders.get(tag)?.push(r) }
  const dummySigned = dbc.capability.v1.SignedCapability.create({}) as SignedCapability
  interface Q { search: CapabilitySearch, submitter: number, start: number, pending: number, lookups: number, found: Set<number> }
  const active = new Map<number, Q>()
  const latency: number[] = []; const lookupsPerQuery: number[] = []; const recall: number[] = []; const found: number[] = []
  let finishedQueries = 0; let wrongResults = 0; let published = 0; let storedCopies = 0
  const capability = 'gpu:A100'
  const runStep = (id: number, qq: Q, now: number): void => {
    const step = qq.search.nextStep()
    if (step === undefined) { finish(id, qq, now); return }
    qq.pending = step.keys.length; qq.found = new Set()
    for (const key of step.keys) {
      qq.lookups++
      const tag = nextTag++
      queryOfTag.set(tag, id); responders.set(tag, [])
      startWalk(now, qq.submitter, tag, key)
    }
  }
  const walkDone = (tag: number, now: number): void => {
    const list = responders.get(tag) ?? []; const key = walkKey.get(tag) as Uint8Array
    responders.delete(tag); walkKey.delete(tag)
    const hex = toHex(key)
    if (tag < publications.length) {
      // ADD_PROVIDER to the k closest servers that answered the walk.
      const [hi, lo] = keyParts(key)
      const closest = [...new Set(list)].sort((a, b) => ids.distanceToKey(a, hi, lo) - ids.distanceToKey(b, hi, lo)).slice(0, k)
      for (const s of closest) {
        let st = stores.get(s)
        if (st === undefined) { st = new Map(); stores.set(s, st) }
        const ps = st.get(hex)
        if (ps === undefined) st.set(hex, [publications[tag].provider]); else ps.push(publications[tag].provider)
        storedCopies++
      }
      published++
      return
    }
    const id = queryOfTag.get(tag) as number
    queryOfTag.delete(tag)
    const qq = active.get(id)
    if (qq === undefined) return
    for (const r of list) for (const p of stores.get(r)?.get(hex) ?? []) qq.found.add(p)
    if (--qq.pending > 0) return
    for (const p of qq.found) qq.search.addVerified(records.get(p) as CapabilityRecord, dummySigned)
    runStep(id, qq, now)
  }
  const finish = (id: number, qq: Q, now: number): void => {
    active.delete(id)
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
  const doneTags: number[] = []
  lookups.onWalkDone = (tag) => { doneTags.push(tag) }
  // Publish first (paced), then the queries.
  const t00 = q.curTime
  publications.forEach((_, i) => q.push(t00 + i * 2, EVENT_PUBLISH, i, 0, 0))
  const queryStart = t00 + publications.length * 2 + 60_000
  for (let j = 0; j < queries; j++) q.push(queryStart + j * 200, EVENT_QUERY, j, 0, 0)
  const t0 = performance.now(); const e0 = q.pushed
  while (q.pop()) {
    const now = q.curTime; const kind = q.curKind
    if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) lookups.handle(now, kind, q.curA, q.curB, q.curC)
    else if (kind === EVENT_PUBLISH) {
      const i = q.curA
      responders.set(i, [])
      startWalk(now, publications[i].provider, i, publications[i].key)
    } else if (kind === EVENT_WALK_AGAIN) startWalk(now, q.curB, q.curA, walkKey.get(q.curA) as Uint8Array)
    else if (kind === EVENT_QUERY) {
      let submitter = rng.int(n)
      while (world.net.online[submitter] === 0) submitter = rng.int(n)
      const qq: Q = { search: new CapabilitySearch({ query: { capability, want }, lat: pop.latDeg[submitter], lon: pop.lonDeg[submitter] }), submitter, start: now, pending: 0, lookups: 0, found: new Set() }
      active.set(q.curA, qq)
      runStep(q.curA, qq, now)
    } else world.maintenance?.handle(now, kind, q.curA, q.curB)
    while (doneTags.length > 0) walkDone(doneTags.shift() as number, now)
  }
  const wallMs = performance.now() - t0
  const events = q.pushed - e0
  const lat = sortedCopy(latency)
  return {
    scenario: 'capability',
    seed: opts.seed,
    nodes: n,
    params: { queries, want, capability, providerShare, providers: providers.length, publications: publications.length, levels: '5,3,1', table: 'joined: kad-dht trie' },
    summary: {
      queriesFinished: finishedQueries,
      meanDhtLookupsPerQuery: round(mean(lookupsPerQuery)),
      latencyP50Ms: round(quantile(lat, 0.5)),
      latencyP90Ms: round(quantile(lat, 0.9)),
      meanResults: round(mean(found)),
      recallOfNearest: round(mean(recall)),
      publicationsStored: published,
      meanCopiesPerPublication: round(storedCopies / Math.max(1, published))
    },
    charts: [{ id: 'capability-latency', title: `Capability query latency (${capability}, want ${want})`, kind: 'line', xLabel: 'ms', yLabel: 'share of queries', series: [cdfSeries('query latency', lat)] }],
    invariants: [
      { name: 'every query finished exactly once', ok: finishedQueries === queries && active.size === 0, detail: `${finishedQueries} of ${queries}, ${active.size} open` },
      { name: 'every result has the capability asked for', ok: wrongResults === 0, detail: `${wrongResults} results without an A100` }
    ],
    notes: ['Records are published by walks (getClosestPeers) and stored on the k closest servers that answered; each key of a search step is one walk whose answering servers return the providers they hold (no global index). Records are taken as verified (addVerified): signatures are not what is simulated here.'],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: { queriesPerWallSec: round(queries / (wallMs / 1000)) }
    }
  }
}
