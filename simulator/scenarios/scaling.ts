// `scaling`: the lookup scenario at growing sizes (1k, 3k, 10k, ... up to --nodes), giving
// the scaling curves: hops, success, latency, throughput and memory per node against N.
import { runLookup } from './lookup.js'
import { round } from './stats.js'
import type { ChartSeries, ScenarioOptions, ScenarioResult } from './types.js'

export function runScaling (opts: ScenarioOptions): ScenarioResult {
  const sizes: number[] = []
  for (let n = 1000; n < opts.nodes; n *= Math.sqrt(10)) sizes.push(Math.round(n))
  sizes.push(opts.nodes)
  const perSize = opts.count ?? 20_000
  const rows = sizes.map((n, i) => {
    const r = runLookup({ nodes: n, seed: opts.seed, count: Math.min(n, perSize) })
    opts.onProgress?.(i + 1, sizes.length)
    return r
  })
  const series = (label: string, f: (r: ScenarioResult) => number): ChartSeries => ({ label, data: rows.map(r => ({ x: r.nodes, y: round(f(r)) })) })
  const last = rows[rows.length - 1]
  const summary: Record<string, number> = {}
  for (const r of rows) {
    summary[`n${r.nodes}.meanHops`] = Number(r.summary.meanHops)
    summary[`n${r.nodes}.successRate`] = Number(r.summary.successRate)
    summary[`n${r.nodes}.latencyP50Ms`] = Number(r.summary.latencyP50Ms)
  }
  return {
    scenario: 'scaling',
    seed: opts.seed,
    nodes: opts.nodes,
    params: { sizes: sizes.join(','), lookupsPerSize: perSize, ...last.params },
    summary,
    charts: [
      { id: 'scaling-hops', title: 'Mean hops vs network size', kind: 'line', logX: true, xLabel: 'nodes', yLabel: 'hops', series: [series('mean hops', r => Number(r.summary.meanHops))] },
      { id: 'scaling-latency', title: 'Lookup latency vs network size', kind: 'line', logX: true, xLabel: 'nodes', yLabel: 'ms', series: [series('p50', r => Number(r.summary.latencyP50Ms)), series('p90', r => Number(r.summary.latencyP90Ms))] },
      { id: 'scaling-success', title: 'Success vs network size', kind: 'line', logX: true, xLabel: 'nodes', yLabel: 'share', series: [series('success', r => Number(r.summary.successRate))] },
      { id: 'scaling-rpcs', title: 'RPCs per lookup vs network size', kind: 'line', logX: true, xLabel: 'nodes', yLabel: 'RPCs', series: [series('RPCs per lookup', r => Number(r.summary.rpcsPerLookup))] }
    ],
    invariants: rows.flatMap(r => r.invariants.map(i => ({ ...i, name: `${i.name} (n=${r.nodes})` }))),
    notes: ['Each size is a fresh world with the same seed; per-size performance figures (not deterministic) are in the perf section of the last size only.'],
    perf: { ...last.perf, rates: { ...last.perf.rates, ...Object.fromEntries(rows.map(r => [`lookupsPerCpuSec@${r.nodes}`, r.perf.rates.lookupsPerCpuSec])) } }
  }
}
