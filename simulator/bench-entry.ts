// One measurement for bench/sim.ts, run in its own process (node --expose-gc) so each
// size starts from a clean heap: `--mode fast|naive --nodes N --seed S`. Prints one JSON line.
import { runNaiveLookups } from './baseline/naive-kad.js'
import { runLookup } from './scenarios/lookup.js'

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(`--${name}`); return i < 0 ? dflt : process.argv[i + 1] }
const mode = arg('mode', 'fast'); const nodes = Number(arg('nodes', '10000')); const seed = Number(arg('seed', '1'))
if (mode === 'naive') {
  console.log(JSON.stringify(runNaiveLookups(nodes, seed)))
} else {
  const t0 = performance.now()
  const r = runLookup({ nodes, seed })
  const s = r.summary
  console.log(JSON.stringify({
    nodes, lookups: s.lookups, succeeded: s.succeeded, successRate: s.successRate, meanHops: s.meanHops, rpcsPerLookup: s.rpcsPerLookup,
    latencyP50Ms: s.latencyP50Ms, wallMs: r.perf.wallMs, setupMs: r.perf.setupMs, totalMs: performance.now() - t0, eventsPerSec: r.perf.eventsPerSec,
    liveBytesPerNode: r.perf.liveBytesPerNode, heapUsedBytes: r.perf.heapUsedBytes, arrayBufferBytes: r.perf.arrayBufferBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024, lookupsPerWallSec: r.perf.rates.lookupsPerWallSec, lookupsPerCpuSec: r.perf.rates.lookupsPerCpuSec, lookupCpuSec: r.perf.rates.lookupCpuSec, setupCpuSec: r.perf.rates.setupCpuSec, loadAvg1m: (await import('node:os')).loadavg()[0], hops: r.charts[1].series[0].data
  }))
}
