// `grid`: a stream of grid jobs from random submitters over the whole population, each run by
// the SHIPPED job session (JobSession, JobMachine, LeaseSearch, placeTasks: src/core/scheduler) through a
// virtual-time driver (grid-driver.ts): busy providers refuse (BUSY) and jobs wait for their
// slots; 30% of providers churn (down once, leases lost on heartbeat timeout, back empty). The
// same job stream runs again with placeRandomly as the baseline. Checked on each job machine's
// own state: every task done, accepted once, one agreeing copy (none lost, none done twice).
import { cdfSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld } from './world.js'
import { simulateGrid, type Providers } from './grid-driver.js'
import { leaseCapOf } from '../../src/core/scheduler/lease-cap.js'

export function runGrid (opts: ScenarioOptions): ScenarioResult {
  const world = buildWorld(opts.nodes, opts.seed, { noDht: true })
  const n = world.pop.count
  const jobs = opts.count ?? 200
  const providerShare = opts.extra?.providerShare ?? 0.05
  const candidates = opts.extra?.candidates ?? 200
  const prng = world.rng.fork()
  const count = Math.max(4, Math.round(n * providerShare))
  const prov: Providers = { node: new Int32Array(count), slots: new Int32Array(count), perf: new Float64Array(count), price: new Float64Array(count), bw: new Float64Array(count), rep: new Float64Array(count) }
  for (let i = 0; i < count; i++) {
    prov.node[i] = prng.int(n)
    prov.slots[i] = 1 + prng.int(8)
    prov.perf[i] = Math.exp(0.5 * prng.normal())
    prov.price[i] = 0.2 + 0.6 * prov.perf[i] * Math.exp(0.3 * prng.normal())
    prov.bw[i] = 2e6 + prng.next() * 1e8
    prov.rep[i] = 0.5 + 0.5 * prng.next()
  }
  const jobSeed = world.rng.u32()
  const churn = opts.extra?.churn ?? 0.3
  const downMs = opts.extra?.downMs ?? 600_000
  const gapMs = (opts.extra?.gapS ?? 20) * 1000
  // the manifests' task.waitS: jobs of minutes-long tasks wait for busy providers as long as the stream lasts
  const waitMs = (opts.extra?.waitS ?? 6 * 3600) * 1000
  // a job's most leases (default the runner's 64): `--set maxLeases=N` shows what the cap costs a loaded stream
  const maxLeases = opts.extra?.maxLeases
  // past maxLeases a job leases on while its leases hold fewer slots (default the runner's 256; `--set maxLeaseSlots=0`: a hard cap of 64 leases, as before)
  const maxLeaseSlots = opts.extra?.maxLeaseSlots
  const t0 = performance.now(); const e0 = world.q.pushed
  const model = simulateGrid(world, prov, { jobs, candidates, seed: jobSeed, policy: 'cost-model', churn, downMs, gapMs, waitMs, maxLeases, maxLeaseSlots, onProgress: opts.onProgress })
  const random = simulateGrid(world, prov, { jobs, candidates, seed: jobSeed, policy: 'random', churn, downMs, gapMs, waitMs, maxLeases, maxLeaseSlots })
  const wallMs = performance.now() - t0
  const events = world.q.pushed - e0
  const sm = sortedCopy(model.makespans); const sr = sortedCopy(random.makespans)
  const jobRatio = (r: typeof model): Float64Array => sortedCopy(r.makespans.map((x, j) => x / r.jobBounds[j]))
  const jm = jobRatio(model)
  // capacity used at the samples where some job had copies queued at its lease cap
  const atCapUtil = model.timeline.perfUtil.filter((_, i) => model.timeline.jobsQueuedAtCap[i] > 0)
  const invariants = (name: string, r: typeof model): ScenarioResult['invariants'] => [
    { name: `no task lost (${name}; every task done in its job machine)`, ok: r.notDone === 0, detail: `${r.notDone} tasks not done (${r.failedTasks} failed)` },
    { name: `no task done twice (${name}; accepted once, one agreeing copy)`, ok: r.acceptedTwice === 0, detail: `${r.acceptedTwice} tasks accepted twice or with two billed copies` }
  ]
  return {
    scenario: 'grid',
    seed: opts.seed,
    nodes: n,
    params: { jobs, providers: count, candidatesPerJob: candidates, providerShare, churn, downMeanS: downMs / 1000, meanGapS: gapMs / 1000, waitS: waitMs / 1000, maxLeases: leaseCapOf({ maxLeases, maxLeaseSlots }).leases, maxLeaseSlots: leaseCapOf({ maxLeases, maxLeaseSlots }).slots },
    summary: {
      tasks: model.tasks,
      makespanMeanS: round(mean(model.makespans) / 1000),
      makespanP90S: round(quantile(sm, 0.9) / 1000),
      randomMakespanMeanS: round(mean(random.makespans) / 1000),
      randomMakespanP90S: round(quantile(sr, 0.9) / 1000),
      makespanVsRandom: round(mean(model.makespans) / mean(random.makespans)),
      totalS: round(model.totalMs / 1000),
      lowerBoundS: round(model.lowerBoundMs / 1000),
      totalVsLowerBound: round(model.totalMs / model.lowerBoundMs),
      // the same at 90% and 99% of the tasks accepted: the last acceptance is set by one copy (a late churn loss, one long task on a slow slot)
      p90AcceptedVsLowerBound: round(model.p90AcceptedMs / model.lowerBoundMs),
      p99AcceptedVsLowerBound: round(model.p99AcceptedMs / model.lowerBoundMs),
      capacityBoundS: round(model.capacityBoundMs / 1000),
      totalVsCapacityBound: round(model.totalMs / model.capacityBoundMs),
      randomTotalVsLowerBound: round(random.totalMs / random.lowerBoundMs),
      offeredLoad: round(model.load),
      jobMakespanVsOwnBoundMean: round(mean(jm)),
      jobMakespanVsOwnBoundP90: round(quantile(jm, 0.9)),
      providerQueueWaitMeanS: round(model.queueWaitMeanMs / 1000),
      queueFullRefusals: model.queueFull,
      slotUtilisation: round(model.utilisation),
      cost: round(model.cost),
      randomCost: round(random.cost),
      costVsRandom: round(model.cost / random.cost),
      meanRttToChosenMs: round(model.meanRttMs),
      randomMeanRttToChosenMs: round(random.meanRttMs),
      leaseRounds: model.leaseRounds,
      speedReleases: model.speedReleases,
      busyRefusals: model.busyRefusals,
      copiesLostToChurn: model.lostCopies,
      // from the timeline (every 100 s): jobs whose copies queue while they hold their most leases, and capacity idle meanwhile
      jobsQueuedAtCapPeak: Math.max(0, ...model.timeline.jobsQueuedAtCap),
      ...(atCapUtil.length > 0 ? { perfUtilWhileJobsQueuedAtCapMin: round(Math.min(...atCapUtil)) } : {})
    },
    charts: [
      { id: 'grid-timeline-util', title: 'Cost model: perf-weighted slot utilisation over time', kind: 'line', xLabel: 'seconds since the first submission', yLabel: 'share of capacity up', series: [{ label: 'running copies (Σ perf ÷ Σ slots x perf up)', data: model.timeline.t.map((x, i) => ({ x, y: round(model.timeline.perfUtil[i]) })) }] },
      { id: 'grid-timeline-queue', title: 'Cost model: copies queued in the jobs and jobs held at their lease cap', kind: 'line', xLabel: 'seconds since the first submission', yLabel: 'count', series: [{ label: 'copies queued in jobs', data: model.timeline.t.map((x, i) => ({ x, y: model.timeline.queuedCopies[i] })) }, { label: 'jobs with copies queued at their lease cap', data: model.timeline.t.map((x, i) => ({ x, y: model.timeline.jobsQueuedAtCap[i] })) }, { label: 'copies waiting in providers\' queues', data: model.timeline.t.map((x, i) => ({ x, y: model.timeline.waitingAtProviders[i] })) }] },
      { id: 'grid-makespan-cdf', title: 'Job makespan (CDF)', kind: 'line', xLabel: 'seconds', yLabel: 'share of jobs', series: [cdfSeries('cost model (placeTasks)', sm.map(x => x / 1000)), cdfSeries('random placement', sr.map(x => x / 1000))] }
    ],
    invariants: [...invariants('cost model', model), ...invariants('random', random)],
    notes: [
      'Each job runs the shipped JobSession (JobMachine, LeaseSearch, BudgetLedger; src/core/scheduler) pumped as src/jobs/runner.ts pumps it; only transport, clock and storage are simulated.',
      'Offers come from a random sample of providers (as gossip announcements would give); a provider with no free slot refuses with BUSY and the job waits (task.waitS). As in the daemon a lease reserves no slot: running copies take them, and a copy that finds none waits in the provider\'s queue (64, then SLOT_QUEUE_FULL).',
      `Churn: ${Math.round(churn * 100)}% of providers go down once (its copies die; its leases are lost after the 2 s heartbeat timeout and the copies re-queued), back after ~${Math.round(downMs / 1000)} s with empty slots.`,
      'Lower bound (offline, grid-bound.ts): for every k, the work of jobs arriving at or after job k fits only into the capacity (slots × perf) UP between its arrival and the end; no job ends before its longest task on its fastest provider; and a copy runs whole on one slot, so tasks too long for a slow slot before the end count only against the faster slots (sizeLowerBound). totalVsLowerBound = (last acceptance - first submission) ÷ that; totalVsCapacityBound without the task sizes.',
      'A job\'s own bound: its longest task on its fastest provider, or its work ÷ all capacity; offeredLoad = work ÷ (capacity × the bound\'s span).',
      'Each session uses the daemon\'s lease-search retry and backoff (250 ms doubling to 5 s; 30 s cap while copies run), its lease cap (64 leases, more while they hold under 256 slots, 256 at most: lease-cap.ts), and task.waitS (default here 6 h, --set waitS=N).',
      'RTT in offers is the geo model\'s; run time = transfer + expected × lognormal(0, 0.25) (per task, the same for each copy) ÷ perf. Lease rounds take no virtual time.'
    ],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: { tasksPerWallSec: round((model.tasks + random.tasks) / (wallMs / 1000)) }
    }
  }
}
