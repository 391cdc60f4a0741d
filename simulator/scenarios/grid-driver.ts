// The grid scenario's driver: pumps the SHIPPED job session (src/core/scheduler: JobSession over
// JobMachine, LeaseSearch, BudgetLedger; placeTasks) for every job of a stream, as the runner
// (src/jobs/runner.ts) pumps it, with virtual time, simulated providers and churn in place of the
// transport, the clock and the store (as TigerBeetle's VOPR swaps only the bus, the clock and
// the storage). The session says when to run a lease round and in which mode (`starved`: nothing
// runs; `more`: copies wait behind busy leases); a round does what the runner's does
// (src/jobs/runner-leases.ts): ask a sample of providers for offers (busy ones refuse with BUSY,
// down ones do not answer), place the remaining tasks, lease the offers placement used, up to
// 64 leases. The daemon's retry and backoff apply (lease-search.ts defaults). As in the daemon, a
// lease reserves nothing: a provider's slots are taken by running copies (src/compute/slots.ts),
// its offers say how many are free now, and a copy that finds none waits in the provider's FIFO
// (64 at most, then SLOT_QUEUE_FULL). A provider that goes down drops its copies; its leases are
// lost once their heartbeats time out (the job policy's 2 s); it comes back empty.
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, validateManifest, jobPolicyOf, leaseSearchPolicyOf, expectedInputBytes, taskCount as countTasks, type Manifest, placeTasks, placeRandomly, fastestRunMs, leasesForRound, leaseCapOf, rulesOutForGood, describeUnplaced, refusalCode, type OfferView, type PlacementRequest, type SearchMode, type SearchRound } from '../../src/core/scheduler/index.js'
import { SimRandom } from '../engine/random.js'
import { distanceKm } from '../network/population.js'
import { capacitySteps, streamLowerBound, sizeLowerBound } from './grid-bound.js'
import type { World } from './world.js'

const EVENT_JOB = 30
const EVENT_COPY_DONE = 31
const EVENT_ROUND = 32
const EVENT_TIMEOUT = 33
const EVENT_DOWN = 34
const EVENT_UP = 35
const EVENT_LEASES_LOST = 36
/** The timeline's step (GridOutcome.timeline). */
const TIMELINE_STEP_MS = 100_000
/** A provider's offer carries at most this many slots (offer-policy.ts maxSlotsPerOffer default). */
const MAX_SLOTS_PER_OFFER = 64
/** The copy's key in the budget ledger, as the runner's (index x KEY + attempt). */
const KEY = 1024
/** Copies a provider holds waiting for a slot (SlotManagerInit.maxQueue default). */
const MAX_QUEUE = 64
/** startedAt of a copy the provider refused (queue full); -1: waiting in its queue. */
const REFUSED = -2

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
  /** Mean gap between two job submissions. */
  gapMs: number
  /** The manifests' task.waitS: how long queued tasks wait for busy providers. */
  waitMs: number
  /** The manifests' budget.maxPricePerHour (also what placement values an hour of the job's time at). */
  maxPricePerHour?: number
  onProgress?: (done: number, total: number) => void
  /** Leases a job holds whatever their slots (default 64, the runner's JobRunnerInit.maxLeases). */
  maxLeases?: number
  /** Past maxLeases, a job leases on while its leases hold fewer slots than this (the runner's default 256; 0 when maxLeases is set: a hard cap, lease-cap.ts leaseCapOf). */
  maxLeaseSlots?: number
  /** Every copy sent (for tracing a run). */
  onCopy?: (job: number, index: number, provider: number, runMs: number, now: number) => void
}

export interface GridOutcome {
  makespans: Float64Array
  /** Each job's own lower bound: its longest task on its fastest provider, or its work ÷ all capacity. */
  jobBounds: Float64Array
  /** From the first submission to the last task accepted. */
  totalMs: number
  /** From the first submission to the acceptance of 90% / 99% of the tasks: a tail statistic less set by one late copy than totalMs. */
  p90AcceptedMs: number
  p99AcceptedMs: number
  /** From the first submission to the offline lower bound of the whole stream (grid-bound.ts). */
  lowerBoundMs: number
  /** The same without the task-size constraints (grid-bound.ts sizeLowerBound): the bound before. */
  capacityBoundMs: number
  /** The stream's work ÷ (capacity x its span from first submission to the capacity bound): how loaded it is. */
  load: number
  cost: number
  tasks: number
  /** Checked on each job machine's own state at the end. */
  notDone: number
  acceptedTwice: number
  failedTasks: number
  lostCopies: number
  leaseRounds: number
  /** Leases a job gave back only to make room for a faster slot (speculation.ts, speed-evidence.ts). */
  speedReleases: number
  busyRefusals: number
  meanRttMs: number
  /** Mean time a copy waited in a provider's queue for a slot. */
  queueWaitMeanMs: number
  /** Copies refused because the provider's queue was full (re-run elsewhere). */
  queueFull: number
  /** Slot-time of copies running ÷ slot-time up, from first submission to last acceptance. */
  utilisation: number
  events: number
  timeline: GridTimeline
}

/** The run's state every 100 s from the first submission until the last job ends. */
export interface GridTimeline {
  /** Seconds since the first submission. */
  t: number[]
  /** Σ perf of running copies ÷ Σ slots x perf of the providers up. */
  perfUtil: number[]
  /** Copies queued in the jobs' machines (not yet sent to a provider). */
  queuedCopies: number[]
  /** Jobs with copies queued that hold their most leases (a `more` round can lease nothing). */
  jobsQueuedAtCap: number[]
  /** Copies sent that wait in a provider's queue for a slot. */
  waitingAtProviders: number[]
}

interface Lease { job: number, provider: number, open: boolean }
interface Copy { job: number, index: number, attempt: number, provider: number, epoch: number, runMs: number, sentAt: number, startedAt: number }

/**
 * A job's manifest as a user would write it: the daemon derives the job policy and the lease
 * search from it (jobPolicyOf, leaseSearchPolicyOf: the same defaults, speculation of
 * stragglers included). Verification is `off` with one copy: spot checks would add copies the
 * "one agreeing copy" invariant does not expect (they are tested in test/unit/scheduler).
 */
export function gridManifest (tasks: number, expectedMs: number, inputBytes: number, o: { waitMs: number, policy: 'cost-model' | 'random', maxPricePerHour?: number }): Manifest {
  const r = validateManifest({
    executor: 'docker', code: { image: 'sim/task' }, inputs: { range: { from: 1, to: tasks } },
    resources: { gpu: { count: 1 }, cores: 4 }, verification: { mode: 'off' }, placement: o.policy,
    budget: o.maxPricePerHour !== undefined ? { maxPricePerHour: o.maxPricePerHour } : {},
    task: { expectedMs, inputBytes: Math.round(inputBytes), timeoutMs: 4 * 3_600_000, waitS: Math.round(o.waitMs / 1000) }
  })
  if (!r.ok) throw new Error(`grid manifest: ${JSON.stringify(r.issues)}`)
  return r.manifest
}

export function simulateGrid (world: World, prov: Providers, o: GridRunOptions): GridOutcome {
  const { q, net, pop } = world
  const rng = new SimRandom(o.seed)
  const placeRng = new SimRandom(o.seed ^ 0x5bd1e995).asCoreRng()
  const np = prov.node.length
  const cap = leaseCapOf(o)
  const running = new Int32Array(np)
  const waiting: number[][] = Array.from({ length: np }, () => [])
  const freeOf = (p: number): number => prov.slots[p] - running[p]
  const up = new Uint8Array(np).fill(1)
  const epoch = new Int32Array(np)
  const leasesOf: Array<Set<string>> = Array.from({ length: np }, () => new Set())
  const leases = new Map<string, Lease>()
  const copies = new Map<number, Copy>()
  const copyOf = new Map<string, number>()
  const copiesAt: Array<Set<number>> = Array.from({ length: np }, () => new Set())
  let nextCopy = 0; let nextLease = 0
  const sessions: JobSession[] = []
  /** Per job: the offer each leased provider was leased on (a `more` round places against them too, as the runner's). */
  const leasedViews: Array<Map<string, OfferView>> = []
  const manifests: Manifest[] = []
  const timeoutAt = new Float64Array(o.jobs).fill(Infinity)
  const roundAt = new Float64Array(o.jobs).fill(Infinity)
  const roundGen = new Int32Array(o.jobs)
  const submitter = new Int32Array(o.jobs); const taskMs = new Float64Array(o.jobs); const bytes = new Float64Array(o.jobs); const taskCount = new Int32Array(o.jobs)
  const noise: Float64Array[] = []
  const jobStart = new Float64Array(o.jobs); const jobEnd = new Float64Array(o.jobs)
  const accepted: Uint8Array[] = []
  let acceptedTwice = 0; let lostCopies = 0; let leaseRounds = 0; let speedReleases = 0; let busyRefusals = 0; let cost = 0; let rttSum = 0; let rttN = 0; let jobsDone = 0
  /** When each task was first accepted (virtual ms), in order. */
  const acceptedAt: number[] = []
  let busySlotMs = 0; let waitMs = 0; let started = 0; let queueFull = 0
  const capChanges: Array<{ t: number, delta: number, slots: number }> = []
  const e0 = q.pushed
  let t = 0
  for (let j = 0; j < o.jobs; j++) {
    t += rng.exp(o.gapMs)
    submitter[j] = rng.int(pop.count)
    taskMs[j] = 60_000 + rng.next() * 540_000
    bytes[j] = 1e7 + rng.next() * 5e8
    taskCount[j] = 10 + rng.int(190)
    // a task's length varies (its input, not the machine): drawn once, the same for every copy
    noise[j] = Float64Array.from({ length: taskCount[j] }, () => Math.exp(0.25 * rng.normal()))
    q.push(t, EVENT_JOB, j, 0, 0)
  }
  const horizon = t + 3_600_000
  for (let p = 0; p < np; p++) if (rng.next() < o.churn) q.push(rng.next() * horizon, EVENT_DOWN, p, 0, 0)

  const runMsOf = (j: number, i: number, p: number): number => bytes[j] / prov.bw[p] * 1000 + taskMs[j] * noise[j][i] / prov.perf[p]

  const closeLease = (id: string): Lease | undefined => {
    const l = leases.get(id)
    if (l === undefined || !l.open) return undefined
    l.open = false
    leasesOf[l.provider].delete(id)
    return l
  }

  /** A copy takes a free slot of its provider: it ends runMs later. */
  const start = (id: number, c: Copy, now: number): void => {
    running[c.provider]++
    c.startedAt = now
    waitMs += now - c.sentAt; started++
    q.push(now + c.runMs, EVENT_COPY_DONE, id, 0, 0)
  }

  /** A copy ends (result, cancel or loss): its slot (if it ran) goes to the provider's next waiting copy. */
  const endCopy = (id: number, now: number): Copy | undefined => {
    const c = copies.get(id)
    if (c === undefined) return undefined
    copies.delete(id)
    copyOf.delete(`${c.job}:${c.index}:${c.attempt}`)
    copiesAt[c.provider].delete(id)
    if (c.startedAt === REFUSED) return c
    if (c.startedAt < 0) { const w = waiting[c.provider]; const at = w.indexOf(id); if (at >= 0) w.splice(at, 1); return c }
    busySlotMs += now - c.startedAt
    if (c.epoch !== epoch[c.provider]) return c // the provider went down meanwhile: its slots were reset
    running[c.provider]--
    const w = waiting[c.provider]
    while (freeOf(c.provider) > 0 && w.length > 0) { const next = w.shift()!; start(next, copies.get(next)!, now) }
    return c
  }

  /** Applies what job j's session decided, then arms its timeout and its next lease round (the runner's step + arm). */
  const drain = (j: number, now: number): void => {
    const s = sessions[j]
    const m = s.machine
    s.makeRoom(now) // as the runner's tick: releases go out before the round they make room for
    for (const c of m.pollCommands()) {
      if (c.type === 'run') {
        const p = Number(c.provider)
        const id = nextCopy++
        const runMs = runMsOf(j, c.index, p)
        o.onCopy?.(j, c.index, p, runMs, now)
        const copy: Copy = { job: j, index: c.index, attempt: c.attempt, provider: p, epoch: epoch[p], runMs, sentAt: now, startedAt: -1 }
        s.copySent(now, c.index * KEY + c.attempt, prov.price[p] * runMs / 3_600_000)
        // a down provider never answers (its lease is lost); a full queue refuses (the answer comes back at once)
        if (up[p] === 0) continue
        copies.set(id, copy)
        copyOf.set(`${j}:${c.index}:${c.attempt}`, id)
        copiesAt[p].add(id)
        if (freeOf(p) > 0) start(id, copy, now)
        else if (waiting[p].length < MAX_QUEUE) waiting[p].push(id)
        else { queueFull++; copy.startedAt = REFUSED; q.push(now, EVENT_COPY_DONE, id, 0, 0) }
      } else if (c.type === 'release-lease') {
        if (c.reason.startsWith('too slow') || c.reason.startsWith('idle:')) speedReleases++
        closeLease(c.leaseId)
      } else if (c.type === 'cancel') {
        // the provider stops the copy (or drops it from its queue): its slot frees
        const id = copyOf.get(`${j}:${c.index}:${c.attempt}`)
        if (id !== undefined) endCopy(id, now)
      }
      // need-leases / more-leases: the session's nextRoundAt below says when
    }
    for (const e of s.pollEvents(now)) { // through the session, as the runner does: lease losses reach its search
      if (e.type === 'accepted') {
        if (accepted[j][e.index] === 1) acceptedTwice++
        else acceptedAt.push(now)
        accepted[j][e.index] = 1
      } else if (e.type === 'copy-settled' && e.outcome === 'lost') lostCopies++
      else if (e.type === 'finished') { jobEnd[j] = now; jobsDone++; o.onProgress?.(jobsDone, o.jobs) }
    }
    const next = m.nextTimeout()
    if (next !== undefined && next < timeoutAt[j]) { timeoutAt[j] = next; q.push(next, EVENT_TIMEOUT, j, 0, 0) }
    const at = s.nextRoundAt(now)
    if (at !== undefined && at < roundAt[j]) { roundAt[j] = at; q.push(Math.max(now, at), EVENT_ROUND, j, ++roundGen[j], 0) }
  }

  /** One lease round for job j, as the runner's (src/jobs/runner-leases.ts). */
  const leaseRound = (j: number, now: number, mode: SearchMode): SearchRound => {
    const s = sessions[j]
    const m = s.machine
    leaseRounds++
    const exclude = new Set<string>([...m.avoidedProviders, ...m.liveLeases().map(l => l.provider)])
    const p0 = m.progress()
    const remaining = Math.max(1, p0.total - p0.done - p0.failed)
    const offers: OfferView[] = []
    const refusals: string[] = []
    for (let c = 0; c < o.candidates; c++) {
      const p = rng.int(np)
      if (up[p] === 0 || exclude.has(String(p))) continue // a down provider does not answer
      const refusal = freeOf(p) === 0 ? 'BUSY: all slots for this shape are busy; ask again later' : undefined
      if (refusal !== undefined) { refusals.push(refusalCode(refusal)); busyRefusals++ }
      exclude.add(String(p))
      offers.push({
        offerId: `${j}:${p}:${now}`, provider: String(p), slots: Math.min(freeOf(p), remaining, MAX_SLOTS_PER_OFFER), priceGpuHour: prov.price[p], priceCpuHour: 0,
        perfScore: prov.perf[p], expiresAt: now + 60_000, refusal, rttMs: 2 * net.baseOneWayMs(submitter[j], prov.node[p]),
        bandwidthBytesPerSec: prov.bw[p], reputation: prov.rep[p], distanceKm: distanceKm(pop, submitter[j], prov.node[p])
      })
    }
    // the request as runner-leases.ts builds it from the manifest
    const mf = manifests[j]
    const req: PlacementRequest = {
      now, taskCount: remaining, copies: mf.verification.redundancy, expectedTaskMs: mf.task.expectedMs, inputBytes: expectedInputBytes(mf, undefined),
      gpuCount: mf.resources.gpu?.count ?? 0, cores: mf.resources.cores, maxPricePerHour: mf.budget.maxPricePerHour, budgetTotal: mf.budget.total, avoid: m.avoidedProviders, penalise: s.search.penalised
    }
    // a `more` round places against the leases it holds as well, as runner-leases.ts does: a new
    // offer is leased only when the cost model gives it work beside them
    const held = mode === 'more' ? m.liveLeases().map(l => leasedViews[j].get(l.provider)).filter((v): v is OfferView => v !== undefined) : []
    const all = [...offers, ...held]
    const placement = o.policy === 'cost-model' ? placeTasks(req, all) : placeRandomly(req, all, placeRng)
    if (mode === 'starved' && p0.done + p0.failed === 0) for (const [x, why] of placement.unplaced) if (rulesOutForGood(why)) m.handleTaskRejected(now, x, `not placed: ${describeUnplaced(why)}`)
    const used = offers.map((v, i) => ({ v, i })).filter(x => placement.tasksPerOffer[x.i] > 0)
      .sort((a, b) => placement.predictions[a.i].runMs - placement.predictions[b.i].runMs)
    // the lease cap as runner-leases.ts applies it (leases, then slots: lease-cap.ts)
    used.splice(leasesForRound(cap, mode, m.leasesHeld(), used.map(x => x.v.slots)))
    const busyLeases: string[] = []
    let leased = 0
    for (const { v, i } of used) {
      const p = Number(v.provider)
      // the lease opens in the same instant as the offer: its slots are still free
      const id = `${j}/${p}/${nextLease++}`
      leases.set(id, { job: j, provider: p, open: true })
      leasesOf[p].add(id)
      rttSum += v.rttMs ?? 0; rttN++
      leasedViews[j].set(v.provider, v)
      m.handleLease(now, { leaseId: id, provider: v.provider, slots: v.slots, rank: leased, runMs: placement.predictions[i].transferMs + placement.predictions[i].runMs })
      leased++
    }
    const unusedOffers = placement.rejections.slice(0, offers.length).filter(r => r === undefined).length - used.length
    return { offers: offers.length - refusals.length, refusals, leased, liveLeases: m.liveLeases().length, unplaced: placement.unplaced.values().next().value, busyLeases, unusedOffers, fastestRunMs: fastestRunMs(placement, offers.length) }
  }

  const loseLeases = (p: number, now: number, why: string): void => {
    for (const id of [...leasesOf[p]]) {
      const l = closeLease(id)!
      sessions[l.job].machine.handleLeaseLost(now, id, why)
      drain(l.job, now)
    }
  }

  let cap0 = 0
  let leaseTimeoutMs = 2000
  for (let p = 0; p < np; p++) cap0 += prov.slots[p] * prov.perf[p]
  /** The next timeline sample (from the first submission, every TIMELINE_STEP_MS until the last job ends). */
  let nextSample = Infinity; let firstSample = 0
  const timeline: GridTimeline = { t: [], perfUtil: [], queuedCopies: [], jobsQueuedAtCap: [], waitingAtProviders: [] }
  const sample = (at: number): void => {
    let busyPerf = 0; let upPerf = 0; let waitingNow = 0; let queued = 0; let atCap = 0
    for (let p = 0; p < np; p++) {
      if (up[p] === 0) continue
      upPerf += prov.slots[p] * prov.perf[p]; busyPerf += running[p] * prov.perf[p]; waitingNow += waiting[p].length
    }
    for (const s of sessions) {
      if (s === undefined || s.machine.isFinished) continue
      const n = s.machine.progress().queued
      queued += n
      if (n > 0 && s.leasesLeft() === 0) atCap++
    }
    timeline.t.push((at - firstSample) / 1000); timeline.perfUtil.push(upPerf > 0 ? busyPerf / upPerf : 0)
    timeline.queuedCopies.push(queued); timeline.jobsQueuedAtCap.push(atCap); timeline.waitingAtProviders.push(waitingNow)
  }
  while (q.pop()) {
    const now = q.curTime
    const k = q.curKind
    if (k === EVENT_JOB && q.curA === 0) { nextSample = now; firstSample = now }
    while (nextSample <= now && jobsDone < o.jobs) { sample(nextSample); nextSample += TIMELINE_STEP_MS }
    if (k === EVENT_JOB) {
      const j = q.curA
      jobStart[j] = now
      accepted[j] = new Uint8Array(taskCount[j])
      const m = gridManifest(taskCount[j], taskMs[j], bytes[j], o)
      manifests[j] = m
      const policy = jobPolicyOf(m, countTasks(m))
      leaseTimeoutMs = policy.leaseTimeoutMs ?? leaseTimeoutMs
      // heartbeats are not sent as events: the driver declares a down provider's leases lost
      // leaseTimeoutMs after it went down, as the machine would on their missing heartbeats
      const machine = new JobMachine({ ...policy, leaseTimeoutMs: 365 * 86_400_000 }, new ReputationBook(), rng.fork().asCoreRng())
      leasedViews[j] = new Map()
      sessions[j] = new JobSession(machine, new LeaseSearch(leaseSearchPolicyOf(m)), new BudgetLedger(m.budget.total), cap)
      drain(j, now)
    } else if (k === EVENT_ROUND) {
      const j = q.curA
      if (q.curB !== roundGen[j]) continue // superseded by an earlier round
      roundAt[j] = Infinity
      const s = sessions[j]
      const at = s.nextRoundAt(now)
      if (at === undefined) continue
      if (at > now) { roundAt[j] = at; q.push(at, EVENT_ROUND, j, ++roundGen[j], 0); continue }
      const mode = s.startRound()
      s.handleRound(now, leaseRound(j, now, mode))
      drain(j, now)
    } else if (k === EVENT_COPY_DONE) {
      const c0 = copies.get(q.curA)
      // gone: cancelled, or its provider went down (its lease is lost instead)
      if (c0 === undefined || epoch[c0.provider] !== c0.epoch || up[c0.provider] === 0) continue
      const refused = c0.startedAt === REFUSED
      const c = endCopy(q.curA, now)!
      const price = refused ? 0 : prov.price[c.provider] * c.runMs / 3_600_000
      const answer = refused ? { ok: false, error: `SLOT_QUEUE_FULL: the queue is full (${MAX_QUEUE} tasks waiting)` } : { ok: true, hash: `h${c.index}`, billed: price }
      const v = sessions[c.job].handleAnswer(now, c, c.index * KEY + c.attempt, answer)
      if (v.verdict === 'agreed' || v.verdict === 'pending') cost += price
      drain(c.job, now)
    } else if (k === EVENT_TIMEOUT) {
      const j = q.curA
      if (timeoutAt[j] > now) continue
      timeoutAt[j] = Infinity
      sessions[j].machine.handleTimeout(now)
      drain(j, now)
    } else if (k === EVENT_DOWN) {
      const p = q.curA
      if (up[p] === 0) continue
      up[p] = 0; epoch[p]++
      // its copies die with it (the submitter learns when the lease's heartbeats stop)
      for (const id of [...copiesAt[p]]) endCopy(id, now)
      running[p] = 0; waiting[p].length = 0
      capChanges.push({ t: now, delta: -prov.slots[p] * prov.perf[p], slots: -prov.slots[p] })
      q.push(now + leaseTimeoutMs, EVENT_LEASES_LOST, p, epoch[p], 0)
      q.push(now + rng.exp(o.downMs), EVENT_UP, p, 0, 0)
    } else if (k === EVENT_LEASES_LOST) {
      // back up already (and its old leases lost then): leases opened since are live
      if (q.curB !== epoch[q.curA]) continue
      loseLeases(q.curA, now, 'no heartbeat')
    } else if (k === EVENT_UP) {
      const p = q.curA
      up[p] = 1; epoch[p]++
      capChanges.push({ t: now, delta: prov.slots[p] * prov.perf[p], slots: prov.slots[p] })
      loseLeases(p, now, 'provider restarted')
    }
  }
  return summarise()

  function summarise (): GridOutcome {
    let notDone = 0; let failedTasks = 0; let tasks = 0; let last = 0
    // the least slot-time x perf a copy can cost: its work plus its input's transfer on the provider where that costs least
    let perfPerBw = Infinity
    for (let p = 0; p < np; p++) perfPerBw = Math.min(perfPerBw, prov.perf[p] / prov.bw[p] * 1000)
    const work = new Float64Array(o.jobs); const longest = new Float64Array(o.jobs); const jobBounds = new Float64Array(o.jobs)
    const makespans = new Float64Array(o.jobs)
    const tasksWork = noise.map((x, j) => x.map(n => taskMs[j] * n + bytes[j] * perfPerBw))
    for (let j = 0; j < o.jobs; j++) {
      const m = sessions[j].machine
      tasks += taskCount[j]
      let maxNoise = 0
      for (let i = 0; i < taskCount[j]; i++) { work[j] += tasksWork[j][i]; maxNoise = Math.max(maxNoise, noise[j][i]) }
      longest[j] = Infinity
      for (let p = 0; p < np; p++) longest[j] = Math.min(longest[j], bytes[j] / prov.bw[p] * 1000 + taskMs[j] * maxNoise / prov.perf[p])
      jobBounds[j] = Math.max(longest[j], work[j] / cap0)
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
    const steps = capacitySteps(jobStart[0], cap0, capChanges)
    const capBound = streamLowerBound({ arrivals: jobStart, work, longest, steps })
    const bound = sizeLowerBound({ arrivals: jobStart, tasks: tasksWork, perf: prov.perf, slots: prov.slots, from: capBound, feasible: last })
    let totalWork = 0
    for (let j = 0; j < o.jobs; j++) totalWork += work[j]
    // slot-time up over the run (from the first submission to the last acceptance), for utilisation
    let slotsUp = 0
    for (let p = 0; p < np; p++) slotsUp += prov.slots[p]
    let upSlotMs = 0; let tPrev = jobStart[0]
    for (const c of [...capChanges].sort((a, b) => a.t - b.t)) {
      const tc = Math.min(last, Math.max(jobStart[0], c.t))
      upSlotMs += slotsUp * (tc - tPrev); tPrev = tc; slotsUp += c.slots
    }
    upSlotMs += slotsUp * (last - tPrev)
    const acceptedShareAt = (f: number): number => acceptedAt.length === 0 ? last : acceptedAt[Math.min(acceptedAt.length - 1, Math.ceil(f * tasks) - 1)]
    return {
      makespans, jobBounds, totalMs: last - jobStart[0], p90AcceptedMs: acceptedShareAt(0.9) - jobStart[0], p99AcceptedMs: acceptedShareAt(0.99) - jobStart[0], lowerBoundMs: bound - jobStart[0], capacityBoundMs: capBound - jobStart[0], load: totalWork / (cap0 * (capBound - jobStart[0])),
      cost, tasks, notDone, acceptedTwice, failedTasks, lostCopies, leaseRounds, speedReleases, busyRefusals,
      meanRttMs: rttSum / Math.max(1, rttN), queueWaitMeanMs: waitMs / Math.max(1, started), queueFull, utilisation: busySlotMs / Math.max(1, upSlotMs), events: q.pushed - e0, timeline
    }
  }
}
