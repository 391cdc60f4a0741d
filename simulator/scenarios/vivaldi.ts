// `vivaldi`: every node runs the core Vivaldi machine (src/core/geo/vivaldi.ts), measuring
// the RTT to a random member of a small neighbour set once per period; the scenario tracks
// how the prediction error of random pairs falls over time. Coordinates of all nodes live
// in one Float64Array; each node's coordinate is a subarray of it (what the core expects).
import { DEFAULT_VIVALDI, predictRtt, vivaldiUpdate, type VivaldiConfig } from '../../src/core/geo/vivaldi.js'
import { quantile, round, sortedCopy } from './stats.js'
import type { ChartSeries, ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld } from './world.js'

const EVENT_MEASURE = 20
const EVENT_SAMPLE = 21

export function runVivaldi (opts: ScenarioOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed, { noDht: true })
  const { q, net, pop } = world
  const n = pop.count
  const rounds = opts.count ?? 60
  const periodMs = 1000
  const neighbours = Math.max(2, opts.extra?.neighbours ?? 16)
  const config: VivaldiConfig = { ...DEFAULT_VIVALDI, dims: opts.extra?.dims ?? DEFAULT_VIVALDI.dims }
  const stride = config.dims + 2
  const rng = world.rng.fork(); const coreRng = world.rng.fork().asCoreRng()
  const buf = new Float64Array(n * stride)
  const coord: Float64Array[] = []
  for (let i = 0; i < n; i++) {
    const c = buf.subarray(i * stride, (i + 1) * stride)
    c[config.dims] = config.minHeight; c[config.dims + 1] = config.initialError
    coord.push(c)
  }
  // Fixed random neighbour sets (as a partial view would give).
  const nb = new Int32Array(n * neighbours)
  for (let i = 0; i < n; i++) for (let j = 0; j < neighbours; j++) { let p = rng.int(n - 1); if (p >= i) p++; nb[i * neighbours + j] = p }
  const pairsA = new Int32Array(2000); const pairsB = new Int32Array(2000)
  for (let i = 0; i < pairsA.length; i++) { pairsA[i] = rng.int(n); let b = rng.int(n - 1); if (b >= pairsA[i]) b++; pairsB[i] = b }

  const t0 = performance.now(); const events0 = q.pushed
  for (let i = 0; i < n; i++) q.push(rng.next() * periodMs, EVENT_MEASURE, i, 0, 0)
  for (let r = 1; r <= rounds; r++) q.push(r * periodMs, EVENT_SAMPLE, r, 0, 0)
  const end = rounds * periodMs
  const median: ChartSeries = { label: 'median relative error', data: [] }
  const p90: ChartSeries = { label: 'p90 relative error', data: [] }
  let updates = 0; let rejected = 0
  const errs = new Float64Array(pairsA.length)
  while (q.pop()) {
    const now = q.curTime
    if (q.curKind === EVENT_MEASURE) {
      const i = q.curA
      const p = nb[i * neighbours + rng.int(neighbours)]
      const rtt = net.oneWayMs(i, p) + net.oneWayMs(p, i)
      if (vivaldiUpdate(coord[i], coord[p], rtt, config, coreRng)) updates++; else rejected++
      if (now + periodMs <= end) q.push(now + periodMs, EVENT_MEASURE, i, 0, 0)
    } else {
      for (let k = 0; k < pairsA.length; k++) {
        const a = pairsA[k]; const b = pairsB[k]
        const truth = 2 * net.baseOneWayMs(a, b)
        errs[k] = Math.abs(predictRtt(coord[a], coord[b]) - truth) / truth
      }
      const s = sortedCopy(errs)
      median.data.push({ x: now / 1000, y: round(quantile(s, 0.5)) })
      p90.data.push({ x: now / 1000, y: round(quantile(s, 0.9)) })
      opts.onProgress?.(q.curA, rounds)
    }
  }
  const wallMs = performance.now() - t0
  const events = q.pushed - events0
  const last = median.data[median.data.length - 1]?.y ?? NaN
  const final = sortedCopy(errs)
  let within25 = 0
  for (const e of final) if (e <= 0.25) within25++
  return {
    scenario: 'vivaldi',
    seed: opts.seed,
    nodes: n,
    params: { rounds, periodMs, neighbours, dims: config.dims, ce: config.ce, cc: config.cc },
    summary: {
      finalMedianRelError: last,
      finalP90RelError: p90.data[p90.data.length - 1]?.y ?? NaN,
      firstMedianRelError: median.data[0]?.y ?? NaN,
      pairsWithin25Percent: round(within25 / final.length),
      updates,
      rejectedSamples: rejected
    },
    charts: [{ id: 'vivaldi-error', title: 'Vivaldi prediction error over time (random pairs)', kind: 'line', xLabel: 'virtual time (s)', yLabel: 'relative error', series: [median, p90] }],
    invariants: [
      { name: 'every node measured every round', ok: updates + rejected === n * rounds, detail: `${updates + rejected} of ${n * rounds}` },
      { name: 'error falls (last median below the first)', ok: last < (median.data[0]?.y ?? Infinity), detail: `${median.data[0]?.y} -> ${last}` }
    ],
    notes: ['Drives vivaldiUpdate/predictRtt from src/core/geo/vivaldi.ts; RTT samples come from the geo latency model with jitter; truth is the jitter-free RTT.'],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: { updatesPerWallSec: round(updates / (wallMs / 1000)) }
    }
  }
}
