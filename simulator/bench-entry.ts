// One measurement for bench/sim.ts, run in its own process (node --expose-gc) so each
// size starts from a clean heap: `--mode joined|omniscient|churn --nodes N --seed S
// [--count L]`. joined: tables built by joining (the model that ships); omniscient: the
// previous model's globally filled tables (the reference); churn: joined tables, then
// lookups during churn (median session 30 min). Prints one JSON line. `--max-rss-gb G` and
// `--max-wall-s S` cap a run (10M): it stops during the joins and prints how far it got.
import { loadavg } from 'node:os'
import { runLookup } from './scenarios/lookup.js'
import type { BuildProgress } from './scenarios/world.js'

const arg = (name: string, dflt: string): string => { const i = process.argv.indexOf(`--${name}`); return i < 0 ? dflt : process.argv[i + 1] }
const mode = arg('mode', 'joined'); const nodes = Number(arg('nodes', '10000')); const seed = Number(arg('seed', '1'))
const count = arg('count', '') === '' ? undefined : Number(arg('count', ''))
const extra: Record<string, number> = mode === 'omniscient' ? { tables: 1 } : mode === 'churn' ? { session: 30, minutes: 20 } : {}
// --build-slots N: walks in flight during the joins (default BUILD_SLOTS in world.ts; 489 = the builds before it).
if (arg('build-slots', '') !== '') extra.buildSlots = Number(arg('build-slots', ''))
const t0 = performance.now()
const load0 = loadavg()[0]
// Progress on stderr (joins, then lookups), at most every 10 s.
let lastProgress = 0
const onProgress = (done: number, total: number): void => {
  if (Date.now() - lastProgress < 10_000 && done < total) return
  lastProgress = Date.now()
  const cpu = process.cpuUsage()
  process.stderr.write(`[sim ${mode} ${nodes}] ${done}/${total} at ${((performance.now() - t0) / 1000).toFixed(0)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(0)} s CPU, rss ${(process.memoryUsage().rss / 2 ** 30).toFixed(2)} GiB, load ${loadavg()[0].toFixed(1)}\n`)
}
// Guard for capped runs (10M): stop, printing what the joins reached, past --max-rss-gb of
// resident memory or --max-wall-s of wall time (checked at least every 10,000 joins).
const maxRss = Number(arg('max-rss-gb', 'Infinity')) * 2 ** 30; const maxWallMs = Number(arg('max-wall-s', 'Infinity')) * 1000
let buildT0 = 0; let buildCpu0 = 0; let fixedBytes = 0
const onBuildProgress = (p: BuildProgress): void => {
  const mem = process.memoryUsage(); const wallMs = performance.now() - t0
  const cpu = process.cpuUsage(); const cpuS = (cpu.user + cpu.system) / 1e6
  if (buildT0 === 0) { buildT0 = performance.now(); buildCpu0 = cpuS; fixedBytes = mem.heapUsed + mem.arrayBuffers - p.poolSlots * 4 }
  if (mem.rss < maxRss && wallMs < maxWallMs) return
  const joinWallS = (performance.now() - buildT0) / 1000; const joinCpuS = cpuS - buildCpu0
  console.log(JSON.stringify({
    mode, nodes, partial: true, stoppedBy: mem.rss >= maxRss ? 'rss' : 'wall', joined: p.joined, virtualMs: p.virtualMs, events: p.events,
    joinWallSec: joinWallS, joinCpuSec: joinCpuS, joinEventsPerSec: p.events / joinWallS, joinEventsPerCpuSec: p.events / joinCpuS, cpuMsPerJoin: 1000 * joinCpuS / p.joined,
    rssBytes: mem.rss, peakRssBytes: process.resourceUsage().maxRSS * 1024, heapUsedBytes: mem.heapUsed, arrayBufferBytes: mem.arrayBuffers,
    // Per-node arrays (ids, positions, table heads, lookup engine) are allocated for every node up front; contacts grow with joins.
    fixedBytesPerNode: fixedBytes / nodes, poolSlotsUsed: p.poolSlotsUsed, poolBytesPerJoinedNode: 4 * p.poolSlotsUsed / p.joined,
    setupWallSec: (buildT0 - t0) / 1000, cpuSec: cpuS, loadAvg1m: [load0, loadavg()[0]]
  }))
  process.exit(0)
}
const r = runLookup({ nodes, seed, count, extra, onProgress, onBuildProgress })
const s = r.summary; const rates = r.perf.rates
const cpuEnd = process.cpuUsage()
console.log(JSON.stringify({
  mode, nodes, lookups: s.lookups, succeeded: s.succeeded, successRate: s.successRate, meanHops: s.meanHops, rpcsPerLookup: s.rpcsPerLookup,
  timeoutsPerLookup: s.timeoutsPerLookup, deadRpcsPerLookup: s.deadRpcsPerLookup, latencyP50Ms: s.latencyP50Ms, wallMs: r.perf.wallMs, setupMs: r.perf.setupMs, totalMs: performance.now() - t0,
  eventsPerSec: r.perf.eventsPerSec, liveBytesPerNode: r.perf.liveBytesPerNode, heapUsedBytes: r.perf.heapUsedBytes, arrayBufferBytes: r.perf.arrayBufferBytes,
  peakRssBytes: process.resourceUsage().maxRSS * 1024, lookupsPerWallSec: rates.lookupsPerWallSec, lookupsPerCpuSec: rates.lookupsPerCpuSec,
  joinWallSec: rates.joinWallSec, joinCpuSec: rates.joinCpuSec, joinEventsPerSec: rates.joinEventsPerSec, meanContacts: s['join.meanContacts'] ?? s.meanContactsPerNode,
  joinRpcsPerNode: s['join.rpcsPerNode'], maxWalksInFlight: s['join.maxWalksInFlight'], churnCpuSec: rates.churnCpuSec, slotWaits: s.slotWaits, maxWaitingForSlot: s.maxWaitingForSlot, meanSlotWaitMs: s.meanSlotWaitMs,
  departures: s.departures, returns: s.returns, newcomers: s.newcomers, walkTimeouts: s.walkTimeouts, evictedByFullLeafPing: s.evictedByFullLeafPing,
  cpuSec: (cpuEnd.user + cpuEnd.system) / 1e6, loadAvg1m: [load0, loadavg()[0]], hops: r.charts[1].series[0].data
}))
