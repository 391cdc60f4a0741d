// `geo`: what geo-awareness buys. (1) Relay choice: for random sender/recipient pairs,
// the relay with the lowest geo-predicted RTT (src/core/geo predictGeoRttMs on declared
// locations) out of a candidate sample, against a random candidate; stretch = latency via
// the relay / direct latency. (2) Neighbour choice: each node keeps m overlay neighbours,
// the geo-nearest of a sample or random ones; stretch = shortest overlay path latency /
// direct latency (Dijkstra over the overlay, on the event queue as a priority queue).
import { predictGeoRttMs } from '../../src/core/geo/latency.js'
import { EventQueue } from '../engine/event-queue.js'
import { cdfSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld, type World } from './world.js'

export function runGeo (opts: ScenarioOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed, { noDht: true })
  const { net, pop } = world
  const n = pop.count
  const pairs = opts.count ?? 2000
  const sample = opts.extra?.candidates ?? 32
  const m = opts.extra?.neighbours ?? 8
  const rng = world.rng.fork()
  const t0 = performance.now()
  const loc = (i: number): { lat: number, lon: number } => ({ lat: pop.latDeg[i], lon: pop.lonDeg[i] })
  // (1) relays
  const relayGeo = new Float64Array(pairs); const relayRandom = new Float64Array(pairs)
  for (let p = 0; p < pairs; p++) {
    const s = rng.int(n); let d = rng.int(n); while (d === s) d = rng.int(n)
    const direct = net.baseOneWayMs(s, d)
    let best = -1; let bestPred = Infinity; let rand = -1
    for (let c = 0; c < sample; c++) {
      const r = rng.int(n)
      if (r === s || r === d || pop.nat[r] === 1) continue
      const pred = predictGeoRttMs(loc(s), loc(r)) + predictGeoRttMs(loc(r), loc(d))
      if (pred < bestPred) { bestPred = pred; best = r }
      if (rand < 0) rand = r
    }
    if (best < 0) { relayGeo[p] = 1; relayRandom[p] = 1; continue }
    relayGeo[p] = (net.baseOneWayMs(s, best) + net.baseOneWayMs(best, d)) / direct
    relayRandom[p] = (net.baseOneWayMs(s, rand) + net.baseOneWayMs(rand, d)) / direct
    opts.onProgress?.(p + 1, pairs * 2)
  }
  // (2) neighbours
  const nbGeo = new Int32Array(n * m); const nbRandom = new Int32Array(n * m)
  const cand = new Int32Array(sample); const candPred = new Float64Array(sample)
  let rttGeo = 0; let rttRandom = 0
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < sample; c++) { let x = rng.int(n - 1); if (x >= i) x++; cand[c] = x; candPred[c] = predictGeoRttMs(loc(i), loc(x)) }
    for (let j = 0; j < m; j++) {
      let b = j
      for (let c = j + 1; c < sample; c++) if (candPred[c] < candPred[b]) b = c
      const tn = cand[j]; cand[j] = cand[b]; cand[b] = tn
      const tp = candPred[j]; candPred[j] = candPred[b]; candPred[b] = tp
      nbGeo[i * m + j] = cand[j]
      rttGeo += 2 * net.baseOneWayMs(i, cand[j])
      let r = rng.int(n - 1); if (r >= i) r++
      nbRandom[i * m + j] = r
      rttRandom += 2 * net.baseOneWayMs(i, r)
    }
  }
  // Geo-nearest-only graphs fall apart into regional islands; like real overlays, keep
  // two of the m links random (long links) in the geo-aware graph.
  for (let i = 0; i < n; i++) for (let j = m - 2; j < m; j++) { let r = rng.int(n - 1); if (r >= i) r++; nbGeo[i * m + j] = r }
  const sources = Math.min(100, n)
  const overGeo: number[] = []; const overRandom: number[] = []
  let unreachable = 0
  const q = new EventQueue(1024)
  const dist = new Float64Array(n)
  for (let k = 0; k < sources; k++) {
    const s = rng.int(n)
    const targets: number[] = []
    for (let t = 0; t < 20; t++) { let d = rng.int(n); if (d === s) d = (d + 1) % n; targets.push(d) }
    for (const [graph, out] of [[nbGeo, overGeo], [nbRandom, overRandom]] as const) {
      dijkstra(world, graph, m, s, q, dist)
      for (const d of targets) {
        if (!Number.isFinite(dist[d])) { unreachable++; continue }
        out.push(dist[d] / net.baseOneWayMs(s, d))
      }
    }
    opts.onProgress?.(pairs + Math.round((k + 1) * pairs / sources), pairs * 2)
  }
  const wallMs = performance.now() - t0
  const rg = sortedCopy(relayGeo); const rr = sortedCopy(relayRandom); const og = sortedCopy(overGeo); const or = sortedCopy(overRandom)
  return {
    scenario: 'geo',
    seed: opts.seed,
    nodes: n,
    params: { relayPairs: pairs, candidatesPerChoice: sample, neighbours: m, randomLinksInGeoGraph: 2, overlaySources: sources },
    summary: {
      relayStretchGeoP50: round(quantile(rg, 0.5)),
      relayStretchRandomP50: round(quantile(rr, 0.5)),
      relayStretchGeoMean: round(mean(relayGeo)),
      relayStretchRandomMean: round(mean(relayRandom)),
      neighbourRttGeoMeanMs: round(rttGeo / (n * m)),
      neighbourRttRandomMeanMs: round(rttRandom / (n * m)),
      overlayStretchGeoP50: round(quantile(og, 0.5)),
      overlayStretchRandomP50: round(quantile(or, 0.5)),
      overlayStretchGeoMean: round(mean(og)),
      overlayStretchRandomMean: round(mean(or)),
      unreachablePairs: unreachable
    },
    charts: [
      { id: 'geo-relay-stretch', title: 'Relay path stretch (CDF)', kind: 'line', xLabel: 'latency via relay / direct latency', yLabel: 'share of pairs', series: [cdfSeries('geo-aware relay', rg), cdfSeries('random relay', rr)] },
      { id: 'geo-overlay-stretch', title: 'Overlay route stretch (CDF)', kind: 'line', xLabel: 'shortest overlay path latency / direct latency', yLabel: 'share of pairs', series: [cdfSeries('geo-aware neighbours', og), cdfSeries('random neighbours', or)] }
    ],
    invariants: [
      { name: 'stretch is never below 1 (triangle inequality of the latency model)', ok: rg[0] >= 0.999 && rr[0] >= 0.999 && (og.length === 0 || og[0] >= 0.999), detail: `min ${rg[0]}, ${rr[0]}, ${og[0]}` },
      { name: 'geo-aware relays are no worse than random at the median', ok: quantile(rg, 0.5) <= quantile(rr, 0.5), detail: `${quantile(rg, 0.5)} vs ${quantile(rr, 0.5)}` }
    ],
    notes: ['Predictions use declared locations only (src/core/geo predictGeoRttMs); truth adds per-node access delays the prediction does not know.'],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events: q.pushed, eventsPerSec: round(q.pushed / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: {}
    }
  }
}

function dijkstra (world: World, graph: Int32Array, m: number, s: number, q: EventQueue, dist: Float64Array): void {
  const { net } = world
  dist.fill(Infinity)
  dist[s] = 0
  q.push(0, 0, s, 0, 0)
  while (q.pop()) {
    const u = q.curA; const d = q.curTime
    if (d > dist[u]) continue
    for (let j = 0; j < m; j++) {
      const v = graph[u * m + j]
      const nd = d + net.baseOneWayMs(u, v)
      if (nd < dist[v]) { dist[v] = nd; q.push(nd, 0, v, 0, 0) }
    }
  }
}
