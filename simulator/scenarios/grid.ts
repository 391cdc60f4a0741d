// `grid`: a stream of grid jobs from random submitters over the whole population. Each
// job asks a sample of GPU providers for offers and places its tasks with the core
// scheduler's cost model (placeTasks, src/core/scheduler/placement.ts); the same job
// stream is then run again with placeRandomly as the baseline. Providers run tasks on
// their slots (FIFO beyond them); run times vary around the prediction. Checked: every
// task of every job completes exactly once (none lost, none run twice).
import { placeRandomly, placeTasks, type OfferView, type Placement, type PlacementRequest } from '../../src/core/scheduler/placement.js'
import { SimRandom } from '../engine/random.js'
import { distanceKm } from '../network/population.js'
import { cdfSeries, mean, quantile, round, sortedCopy } from './stats.js'
import type { ScenarioOptions, ScenarioResult } from './types.js'
import { buildWorld, type World } from './world.js'

const EVENT_JOB = 30
const EVENT_TASK_DONE = 31
const EVENT_RETRY = 32

interface PolicyOutcome { makespans: Float64Array, cost: number, completed: number, duplicates: number, lost: number, unplacedRetries: number, meanRttMs: number, events: number }

interface Providers { node: Int32Array, slots: Int32Array, perf: Float64Array, price: Float64Array, bw: Float64Array, rep: Float64Array }

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
  const t0 = performance.now(); const e0 = world.q.pushed
  const model = simulate(world, prov, jobs, candidates, jobSeed, 'cost-model', opts.onProgress)
  const random = simulate(world, prov, jobs, candidates, jobSeed, 'random', undefined)
  const wallMs = performance.now() - t0
  const events = world.q.pushed - e0
  const sm = sortedCopy(model.makespans); const sr = sortedCopy(random.makespans)
  const totalTasks = model.completed
  return {
    scenario: 'grid',
    seed: opts.seed,
    nodes: n,
    params: { jobs, providers: count, candidatesPerJob: candidates, providerShare },
    summary: {
      tasks: totalTasks,
      makespanMeanS: round(mean(model.makespans) / 1000),
      makespanP90S: round(quantile(sm, 0.9) / 1000),
      randomMakespanMeanS: round(mean(random.makespans) / 1000),
      randomMakespanP90S: round(quantile(sr, 0.9) / 1000),
      makespanVsRandom: round(mean(model.makespans) / mean(random.makespans)),
      cost: round(model.cost),
      randomCost: round(random.cost),
      costVsRandom: round(model.cost / random.cost),
      meanRttToChosenMs: round(model.meanRttMs),
      randomMeanRttToChosenMs: round(random.meanRttMs),
      unplacedRetries: model.unplacedRetries
    },
    charts: [
      { id: 'grid-makespan-cdf', title: 'Job makespan (CDF)', kind: 'line', xLabel: 'seconds', yLabel: 'share of jobs', series: [cdfSeries('cost model (placeTasks)', sm.map(x => x / 1000)), cdfSeries('random placement', sr.map(x => x / 1000))] }
    ],
    invariants: [
      { name: 'no task lost (cost model)', ok: model.lost === 0, detail: `${model.lost} tasks never completed` },
      { name: 'no task completed twice (cost model)', ok: model.duplicates === 0, detail: `${model.duplicates} duplicates` },
      { name: 'no task lost (random)', ok: random.lost === 0, detail: `${random.lost} tasks never completed` },
      { name: 'no task completed twice (random)', ok: random.duplicates === 0, detail: `${random.duplicates} duplicates` }
    ],
    notes: [
      'Offers come from a random sample of providers (as gossip announcements would give); a provider whose queue is over twice its slots refuses.',
      'RTT in offers is the geo model\'s; actual run time = predicted x lognormal(0, 0.25).'
    ],
    perf: {
      wallMs: round(wallMs), setupMs: round(world.setupMs), events, eventsPerSec: round(events / (wallMs / 1000)),
      liveBytesPerNode: round(world.memory.live / n), heapUsedBytes: world.memory.heapUsed, arrayBufferBytes: world.memory.arrayBuffers,
      rssBytes: process.memoryUsage().rss, forcedGc: world.memory.forcedGc, rates: { tasksPerWallSec: round((model.completed + random.completed) / (wallMs / 1000)) }
    }
  }
}

function simulate (world: World, prov: Providers, jobs: number, candidates: number, seed: number, policy: 'cost-model' | 'random', onProgress?: (d: number, t: number) => void): PolicyOutcome {
  const { q, net, pop } = world
  const rng = new SimRandom(seed)
  const placeRng = new SimRandom(seed ^ 0x5bd1e995).asCoreRng()
  const np = prov.node.length
  const busy = new Int32Array(np)
  const queue: number[][] = Array.from({ length: np }, () => [])
  // Per job
  const jobStart = new Float64Array(jobs); const jobLeft = new Int32Array(jobs); const jobEnd = new Float64Array(jobs)
  const jobTaskBase = new Int32Array(jobs + 1); const jobSubmitter = new Int32Array(jobs)
  const jobTaskMs = new Float64Array(jobs); const jobBytes = new Float64Array(jobs)
  // Tasks are numbered globally; their count is known once the job stream is drawn.
  let totalTasks = 0
  const taskCounts: number[] = []
  for (let j = 0; j < jobs; j++) { const t = 10 + rng.int(190); taskCounts.push(t); jobTaskBase[j] = totalTasks; totalTasks += t }
  jobTaskBase[jobs] = totalTasks
  const taskDone = new Uint8Array(totalTasks); const taskProv = new Int32Array(totalTasks).fill(-1); const taskRunMs = new Float64Array(totalTasks)
  let cost = 0; let completed = 0; let duplicates = 0; let retries = 0; let rttSum = 0; let rttN = 0
  const e0 = q.pushed
  let t = 0
  for (let j = 0; j < jobs; j++) {
    t += rng.exp(20_000)
    jobSubmitter[j] = rng.int(pop.count)
    jobTaskMs[j] = 60_000 + rng.next() * 540_000
    jobBytes[j] = 1e7 + rng.next() * 5e8
    q.push(t, EVENT_JOB, j, 0, 0)
  }
  const startNext = (p: number, now: number): void => {
    while (busy[p] < prov.slots[p] && queue[p].length > 0) {
      const task = queue[p].shift() as number
      busy[p]++
      q.push(now + taskRunMs[task], EVENT_TASK_DONE, task, p, 0)
    }
  }
  const place = (j: number, now: number, pending: number[]): void => {
    const submitter = jobSubmitter[j]
    const offers: OfferView[] = []; const offerProv: number[] = []
    for (let c = 0; c < candidates; c++) {
      const p = rng.int(np)
      const backlog = busy[p] + queue[p].length
      offers.push({
        offerId: `${j}:${c}`, provider: String(p), slots: prov.slots[p], priceGpuHour: prov.price[p], priceCpuHour: 0,
        perfScore: prov.perf[p], expiresAt: now + 60_000, refusal: backlog >= 2 * prov.slots[p] ? 'busy' : undefined,
        rttMs: 2 * net.baseOneWayMs(submitter, prov.node[p]), bandwidthBytesPerSec: prov.bw[p], reputation: prov.rep[p],
        distanceKm: distanceKm(pop, submitter, prov.node[p])
      })
      offerProv.push(p)
    }
    const req: PlacementRequest = { now, taskCount: pending.length, copies: 1, expectedTaskMs: jobTaskMs[j], inputBytes: jobBytes[j], gpuCount: 1, cores: 4, timeValuePerHour: 2 }
    const placement: Placement = policy === 'cost-model' ? placeTasks(req, offers) : placeRandomly(req, offers, placeRng)
    const unplaced: number[] = []
    for (let i = 0; i < pending.length; i++) {
      const oi = placement.copyOffer[i]
      const task = pending[i]
      if (oi < 0) { unplaced.push(task); continue }
      const p = offerProv[oi]
      const pred = placement.predictions[oi]
      taskProv[task] = p
      taskRunMs[task] = pred.transferMs + pred.runMs * Math.exp(0.25 * rng.normal())
      rttSum += offers[oi].rttMs ?? 0; rttN++
      queue[p].push(task)
      startNext(p, now)
    }
    if (unplaced.length > 0) { retries++; pendingRetry.set(j, unplaced); q.push(now + 30_000, EVENT_RETRY, j, 0, 0) }
  }
  const pendingRetry = new Map<number, number[]>()
  let jobsDone = 0
  while (q.pop()) {
    const now = q.curTime
    if (q.curKind === EVENT_JOB) {
      const j = q.curA
      jobStart[j] = now; jobLeft[j] = taskCounts[j]
      const pending: number[] = []
      for (let x = jobTaskBase[j]; x < jobTaskBase[j + 1]; x++) pending.push(x)
      place(j, now, pending)
    } else if (q.curKind === EVENT_RETRY) {
      const j = q.curA; const pending = pendingRetry.get(j) ?? []
      pendingRetry.delete(j)
      place(j, now, pending)
    } else if (q.curKind === EVENT_TASK_DONE) {
      const task = q.curA; const p = q.curB
      busy[p]--
      if (taskDone[task] === 1) duplicates++
      else {
        taskDone[task] = 1; completed++
        const pred = prov.price[p] * (taskRunMs[task] / 3_600_000)
        cost += pred
        let lo = 0; let hi = jobs
        while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (jobTaskBase[mid] <= task) lo = mid; else hi = mid }
        if (--jobLeft[lo] === 0) { jobEnd[lo] = now; jobsDone++; onProgress?.(jobsDone, jobs) }
      }
      startNext(p, now)
    }
  }
  let lost = 0
  for (let x = 0; x < totalTasks; x++) if (taskDone[x] === 0) lost++
  const makespans = new Float64Array(jobs)
  for (let j = 0; j < jobs; j++) makespans[j] = jobEnd[j] - jobStart[j]
  return { makespans, cost, completed, duplicates, lost, unplacedRetries: retries, meanRttMs: rttSum / Math.max(1, rttN), events: q.pushed - e0 }
}
