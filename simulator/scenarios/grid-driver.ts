// The grid scenario's driver: pumps the SHIPPED job core (src/core/scheduler: JobMachine,
// LeaseSearch, placeTasks) for every job of a stream, with virtual time, simulated providers
// and churn in place of the transport, the clock and the store (as TigerBeetle's VOPR swaps
// only the bus, the clock and the storage). A lease round does what the runner's does
// (src/jobs/runner-leases.ts): ask a sample of providers for offers (busy ones refuse with BUSY,
// down ones do not answer), place the remaining tasks, lease the offers placement used. Providers
// reserve a lease's slots until it is released; a provider that goes down loses its leases once
// their heartbeats time out, and comes back empty.
import { JobMachine, LeaseSearch, ReputationBook, placeTasks, placeRandomly, rulesOutForGood, describeUnplaced, refusalCode, type OfferView, type PlacementRequest, type SearchRound } from '../../src/core/scheduler/index.js'
import { SimRandom } from '../engine/random.js'
import { distanceKm } from '../network/population.js'
import type { World } from './world.js'

const EVENT_JOB = 30
const EVENT_COPY_DONE = 31
const EVENT_ROUND = 32
const EVENT_TIMEOUT = 33
const EVENT_DOWN = 34
const EVENT_UP = 35
const EVENT_LEASES_LOST = 36
/** Heartbeats stop when a provider goes down; its leases are lost this long after. */
const LEASE_TIMEOUT_MS = 3000
const MAX_LEASES = 64

export interface Providers { node: Int32Array, slots: Int32Array, perf: Float64Array, price: Float64Array, bw: Float64Array, rep: Float64Array }

export interface GridRunOptions {
  jobs: number
  candidates: number
  seed: number
  policy: 'cost-model' | 'random'
  /** Share of providers that go down once during the run (and come back). */
  churn: number
  /** Mean time a churned provider stays down. */
  downMs: number
  onProgress?: (done: number, total: number) => void
}

export interface GridOutcome {
  makespans: Float64Array
  /** From the first submission to the last task accepted. */
  totalMs: number
  /** Sum of the accepted copies' work ÷ the providers' capacity (slots × perf): no schedule beats it. */
  lowerBoundMs: number
  cost: number
  tasks: number
  /** Checked on each job machine's own state at the end. */
  notDone: number
  acceptedTwice: number
  failedTasks: number
  lostCopies: number
  leaseRounds: number
  busyRefusals: number
  meanRttMs: number
  events: number
}

interface Lease { job: number, provider: number, slots: number, open: boolean }
interface Copy { job: number, index: number, attempt: number, provider: number, epoch: number, leaseId: string, runMs: number }

export function simulateGrid (world: World, prov: Providers, o: GridRunOptions): GridOutcome {
  const { q, net, pop } = world
  const rng = new SimRandom(o.seed)
  const placeRng = new SimRandom(o.seed ^ 0x5bd1e995).asCoreRng()
  const np = prov.node.length
  const free = Int32Array.from(prov.slots)
  const up = new Uint8Array(np).fill(1)
  const epoch = new Int32Array(np)
  const leasesOf: Array<Set<string>> = Array.from({ length: np }, () => new Set())
  const leases = new Map<string, Lease>()
  const copies = new Map<number, Copy>()
  let nextCopy = 0
  const machines: JobMachine[] = []
  const searches: LeaseSearch[] = []
  const searching = new Uint8Array(o.jobs)
  const timeoutAt = new Float64Array(o.jobs).fill(Infinity)
  const submitter = new Int32Array(o.jobs); const taskMs = new Float64Array(o.jobs); const bytes = new Float64Array(o.jobs); const taskCount = new Int32Array(o.jobs)
  const jobStart = new Float64Array(o.jobs); const jobEnd = new Float64Array(o.jobs)
  const accepted: Uint8Array[] = []
  let acceptedTwice = 0; let lostCopies = 0; let leaseRounds = 0; let busyRefusals = 0; let cost = 0; let work = 0; let rttSum = 0; let rttN = 0; let jobsDone = 0
  const e0 = q.pushed
  let t = 0
  for (let j = 0; j < o.jobs; j++) {
    t += rng.exp(20_000)
    submitter[j] = rng.int(pop.count)
    taskMs[j] = 60_000 + rng.next() * 540_000
    bytes[j] = 1e7 + rng.next() * 5e8
    taskCount[j] = 10 + rng.int(190)
    q.push(t, EVENT_JOB, j, 0, 0)
  }
  const horizon = t + 3_600_000
  for (let p = 0; p < np; p++) if (rng.next() < o.churn) q.push(rng.next() * horizon, EVENT_DOWN, p, 0, 0)

  const runMsOf = (j: number, p: number): number => bytes[j] / prov.bw[p] * 1000 + taskMs[j] / prov.perf[p] * Math.exp(0.25 * rng.normal())

  /** Applies what job j's machine decided: copies out, cancels, leases released, leases wanted. */
  const drain = (j: number, now: number): void => {
    const m = machines[j]
    for (const c of m.pollCommands()) {
      if (c.type === 'run') {
        const p = Number(c.provider)
        const id = nextCopy++
        const runMs = runMsOf(j, p)
        copies.set(id, { job: j, index: c.index, attempt: c.attempt, provider: p, epoch: epoch[p], leaseId: c.leaseId, runMs })
        q.push(now + runMs, EVENT_COPY_DONE, id, 0, 0)
      } else if (c.type === 'release-lease') {
        const l = leases.get(c.leaseId)
        if (l !== undefined && l.open) { l.open = false; leasesOf[l.provider].delete(c.leaseId); if (up[l.provider] === 1) free[l.provider] += l.slots }
      } else if (c.type === 'need-leases') {
        startSearch(j, now)
      }
      // 'cancel': the copy's result is ignored when it comes (the machine settled it already)
    }
    for (const e of m.pollEvents()) {
      if (e.type === 'accepted') {
        if (accepted[j][e.index] === 1) acceptedTwice++
        accepted[j][e.index] = 1
      } else if (e.type === 'copy-settled' && e.outcome === 'lost') lostCopies++
      else if (e.type === 'finished') { jobEnd[j] = now; jobsDone++; o.onProgress?.(jobsDone, o.jobs) }
    }
    const next = m.nextTimeout()
    if (next !== undefined && next < timeoutAt[j]) { timeoutAt[j] = next; q.push(next, EVENT_TIMEOUT, j, 0, 0) }
  }

  const startSearch = (j: number, now: number): void => {
    if (searching[j] === 1 || machines[j].isFinished) return
    searching[j] = 1
    searches[j].begin(now)
    q.push(now, EVENT_ROUND, j, 0, 0)
  }

  /** One lease round for job j, as the runner's (src/jobs/runner-leases.ts). */
  const leaseRound = (j: number, now: number): void => {
    const m = machines[j]
    leaseRounds++
    const exclude = new Set<string>([...m.avoidedProviders, ...m.liveLeases().map(l => l.provider)])
    const p0 = m.progress()
    const remaining = Math.max(1, p0.total - p0.done - p0.failed)
    const offers: OfferView[] = []
    const refusals: string[] = []
    for (let c = 0; c < o.candidates; c++) {
      const p = rng.int(np)
      if (up[p] === 0 || exclude.has(String(p))) continue // a down provider does not answer
      const refusal = free[p] === 0 ? 'BUSY: all slots for this shape are busy; ask again later' : undefined
      if (refusal !== undefined) { refusals.push(refusalCode(refusal)); busyRefusals++ }
      exclude.add(String(p))
      offers.push({
        offerId: `${j}:${p}:${now}`, provider: String(p), slots: Math.min(free[p], remaining), priceGpuHour: prov.price[p], priceCpuHour: 0,
        perfScore: prov.perf[p], expiresAt: now + 60_000, refusal, rttMs: 2 * net.baseOneWayMs(submitter[j], prov.node[p]),
        bandwidthBytesPerSec: prov.bw[p], reputation: prov.rep[p], distanceKm: distanceKm(pop, submitter[j], prov.node[p])
      })
    }
    const req: PlacementRequest = { now, taskCount: remaining, copies: 1, expectedTaskMs: taskMs[j], inputBytes: bytes[j], gpuCount: 1, cores: 4, timeValuePerHour: 2, avoid: m.avoidedProviders }
    const placement = o.policy === 'cost-model' ? placeTasks(req, offers) : placeRandomly(req, offers, placeRng)
    if (p0.done + p0.failed === 0) for (const [x, why] of placement.unplaced) if (rulesOutForGood(why)) m.handleTaskRejected(now, x, `not placed: ${describeUnplaced(why)}`)
    const used = offers.map((v, i) => ({ v, i })).filter(x => placement.tasksPerOffer[x.i] > 0)
      .sort((a, b) => placement.predictions[a.i].runMs - placement.predictions[b.i].runMs).slice(0, MAX_LEASES)
    let leased = 0
    for (const { v } of used) {
      const p = Number(v.provider)
      if (free[p] < v.slots || v.slots === 0) { refusals.push('BUSY'); continue }
      free[p] -= v.slots
      const id = `${j}/${p}/${leases.size}`
      leases.set(id, { job: j, provider: p, slots: v.slots, open: true })
      leasesOf[p].add(id)
      rttSum += v.rttMs ?? 0; rttN++
      m.handleLease(now, { leaseId: id, provider: v.provider, slots: v.slots, rank: leased })
      leased++
    }
    const round: SearchRound = { offers: offers.length - refusals.length, refusals, leased, liveLeases: m.liveLeases().length, unplaced: placement.unplaced.values().next().value }
    const d = searches[j].handleRound(now, round)
    if (d.kind === 'retry') q.push(d.at, EVENT_ROUND, j, 0, 0)
    else {
      searching[j] = 0
      if (d.kind === 'give-up') m.handleGiveUp(now, d.reason)
    }
    drain(j, now)
  }

  while (q.pop()) {
    const now = q.curTime
    const k = q.curKind
    if (k === EVENT_JOB) {
      const j = q.curA
      jobStart[j] = now
      accepted[j] = new Uint8Array(taskCount[j])
      machines[j] = new JobMachine({ taskCount: taskCount[j], redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 4 * 3_600_000, leaseTimeoutMs: 4 * 3_600_000, stragglerFactor: 0 }, new ReputationBook(), rng.fork().asCoreRng())
      // tasks of minutes: wait for busy providers as long as the stream lasts
      searches[j] = new LeaseSearch({ waitMs: 6 * 3_600_000 })
      startSearch(j, now)
    } else if (k === EVENT_ROUND) {
      leaseRound(q.curA, now)
    } else if (k === EVENT_COPY_DONE) {
      const c = copies.get(q.curA)
      if (c === undefined) continue
      copies.delete(q.curA)
      // a provider that went down since never answers (its lease is lost instead)
      if (epoch[c.provider] !== c.epoch || up[c.provider] === 0) continue
      const verdict = machines[c.job].handleResult(now, { index: c.index, attempt: c.attempt, ok: true, hash: `h${c.index}` })
      if (verdict === 'agreed' || verdict === 'pending') { work += c.runMs * prov.perf[c.provider]; cost += prov.price[c.provider] * c.runMs / 3_600_000 }
      drain(c.job, now)
    } else if (k === EVENT_TIMEOUT) {
      const j = q.curA
      if (timeoutAt[j] > now) continue
      timeoutAt[j] = Infinity
      machines[j].handleTimeout(now)
      drain(j, now)
    } else if (k === EVENT_DOWN) {
      const p = q.curA
      if (up[p] === 0) continue
      up[p] = 0; epoch[p]++
      q.push(now + LEASE_TIMEOUT_MS, EVENT_LEASES_LOST, p, epoch[p], 0)
      q.push(now + rng.exp(o.downMs), EVENT_UP, p, 0, 0)
    } else if (k === EVENT_LEASES_LOST) {
      const p = q.curA
      for (const id of [...leasesOf[p]]) {
        const l = leases.get(id)!
        l.open = false
        leasesOf[p].delete(id)
        machines[l.job].handleLeaseLost(now, id, 'no heartbeat')
        drain(l.job, now)
      }
    } else if (k === EVENT_UP) {
      const p = q.curA
      up[p] = 1; epoch[p]++
      free[p] = prov.slots[p] // comes back empty: its leases were lost
      for (const id of [...leasesOf[p]]) { const l = leases.get(id)!; l.open = false; leasesOf[p].delete(id); machines[l.job].handleLeaseLost(now, id, 'provider restarted'); drain(l.job, now) }
    }
  }
  let notDone = 0; let failedTasks = 0; let tasks = 0; let last = 0
  let maxPerf = 0
  for (let p = 0; p < np; p++) maxPerf = Math.max(maxPerf, prov.perf[p])
  let arrivalBound = 0
  for (let j = 0; j < o.jobs; j++) arrivalBound = Math.max(arrivalBound, jobStart[j] - jobStart[0] + taskMs[j] / maxPerf)
  let capacity = 0
  for (let p = 0; p < np; p++) capacity += prov.slots[p] * prov.perf[p]
  const makespans = new Float64Array(o.jobs)
  for (let j = 0; j < o.jobs; j++) {
    const m = machines[j]
    tasks += taskCount[j]
    // the invariants read the machine's own state: every task done, accepted once, one agreeing copy
    for (let i = 0; i < taskCount[j]; i++) {
      const s = m.taskStatus(i)
      if (s === 'failed') failedTasks++
      if (s !== 'done') { notDone++; continue }
      if (m.copiesOf(i).filter(c => c.outcome === 'agreed').length !== 1) acceptedTwice++
    }
    makespans[j] = (m.isFinished ? jobEnd[j] : Infinity) - jobStart[j]
    last = Math.max(last, jobEnd[j])
  }
  return {
    makespans, totalMs: last - jobStart[0], lowerBoundMs: Math.max(work / capacity, arrivalBound), cost, tasks, notDone, acceptedTwice, failedTasks, lostCopies, leaseRounds, busyRefusals,
    meanRttMs: rttSum / Math.max(1, rttN), events: q.pushed - e0
  }
}
