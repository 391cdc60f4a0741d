// The task/lease state machine of one job (sans-IO). Inputs: `handleLease`, `handleHeartbeat`,
// `handleResult`, `handleLeaseLost`, `handleTimeout`, `handleCancel`, each with `now`.
// Outputs: `pollCommands()` (run / cancel a copy, release a lease, ask for more leases),
// `pollEvents()` (accepted results, settled copies for billing, failures) and `nextTimeout()`.
// Verification: every task needs `quorum` copies with the same output hash out of
// `redundancy` copies on distinct providers; disagreement adds tie-break copies.
// Exactly-once: a task is accepted once; every copy (task index + attempt) settles once,
// and only copies that agree with the accepted hash, settled at acceptance, are billed.
// Default checks (`spotChecks`, src/core/scheduler/spot-check.ts): with redundancy 1, a task
// gets a second copy unless its provider is established (then a random share does), and a
// provider whose copy disagrees with an accepted result is caught: all its results are withdrawn.
import { IntDeque } from './deque.js'
import type { ReputationBook } from './reputation.js'
import { needsCheck, established, deferCheckTo, keepsQuorum, SPOT_CHECK_MAX_COPIES, DISAGREEMENT_QUORUM, type SpotCheckPolicy } from './spot-check.js'
import type { Rng } from '../rng.js'

export interface JobPolicy {
  taskCount: number
  redundancy: number
  quorum: number
  /** Most copies of one task, tie-breaks included (default 2 x redundancy + 1). */
  maxCopies?: number
  /** Failed copies (errors, timeouts) before the task is given up. */
  maxAttempts: number
  taskTimeoutMs: number
  /** No heartbeat for this long and the lease is lost (default 3 s). */
  leaseTimeoutMs?: number
  adaptive?: boolean
  /** With adaptive verification: share of tasks of trusted providers still fully checked. */
  spotCheckRate?: number
  /** A copy running longer than this many times the mean gets a speculative twin; 0 = never. */
  stragglerFactor?: number
  stragglerMinSamples?: number
  /** Consecutive failures after which a provider is avoided for this job. */
  maxProviderFailures?: number
  /** Wrong answers after which a provider is avoided for this job. */
  maxProviderWrong?: number
  /**
   * The default checks (undefined: off, the manifest opted out). With redundancy 1, tasks of
   * providers with little history get a second copy, others a `rate` share; with any
   * redundancy, one wrong answer catches its provider (every result of it withdrawn).
   */
  spotChecks?: SpotCheckPolicy
}

export type CopyReason = 'initial' | 'redundant' | 'retry' | 'speculative' | 'tie-break' | 'spot-check'
export type CopyOutcome = 'running' | 'pending' | 'agreed' | 'wrong' | 'surplus' | 'failed' | 'timeout' | 'lost' | 'cancelled' | 'unverified'
export type ResultVerdict = CopyOutcome | 'duplicate' | 'unknown'

export interface CopyRecord {
  index: number
  attempt: number
  provider: string
  leaseId: string
  reason: CopyReason
  startedAt: number
  endedAt?: number
  outcome: CopyOutcome
  hash?: string
  error?: string
}

export interface LeaseGrant { leaseId: string, provider: string, slots: number, /** lower = preferred */ rank?: number }

export type JobCommand =
  | { type: 'run', index: number, attempt: number, leaseId: string, provider: string, reason: CopyReason }
  | { type: 'cancel', index: number, attempt: number, leaseId: string, provider: string }
  | { type: 'release-lease', leaseId: string, provider: string, reason: string }
  | { type: 'need-leases', reason: string }

export type JobEvent =
  | { type: 'accepted', index: number, hash: string, attempt: number, provider: string }
  /**
   * A copy reached its final outcome; `billed` copies are the ones to pay for. `revoked`: a copy
   * settled `agreed` before is withdrawn (its provider was caught lying): pay nothing more for it.
   */
  | { type: 'copy-settled', index: number, attempt: number, provider: string, outcome: CopyOutcome, billed: boolean, revoked?: boolean }
  /** An accepted task's result no longer stands (a caught provider's vote carried it): it runs again. */
  | { type: 'task-reopened', index: number, reason: string }
  /**
   * A provider returned a result that disagrees with an accepted one: every result it gave in
   * this job is withdrawn (`invalidated` copies) and re-run elsewhere, its reputation is gone,
   * and the payer must sign nothing more for it in this job (its unpaid amounts are forfeited).
   */
  | { type: 'provider-caught', provider: string, reason: string, invalidated: number }
  | { type: 'task-failed', index: number, reason: string }
  | { type: 'lease-lost', leaseId: string, provider: string, reason: string }
  | { type: 'provider-avoided', provider: string, reason: string }
  | { type: 'finished', done: number, failed: number }

export interface ResultInput { index: number, attempt: number, ok: boolean, hash?: string, error?: string }

export interface RestoredTask {
  accepted?: string
  failed?: string
  copies: Array<{ attempt: number, provider: string, outcome: CopyOutcome, hash?: string, reason?: CopyReason }>
}

interface TaskState {
  status: 'queued' | 'active' | 'done' | 'failed'
  attempts: number
  copies: CopyRecord[]
  reasons: CopyReason[]
  queued: number
  outstanding: number
  failures: number
  quorum: number
  reduced: boolean
  /** Got a second copy from the default spot checks. */
  checked: boolean
  decided: boolean
  speculated: boolean
  accepted?: string
}

interface LeaseState extends LeaseGrant { rank: number, lastHeartbeat: number, running: number, alive: boolean }

const KEY = 65536 // copy key = index * KEY + attempt
const SCAN = 64
const TERMINAL: ReadonlySet<CopyOutcome> = new Set(['pending', 'agreed', 'wrong', 'surplus', 'failed'])

export interface Progress {
  total: number, done: number, failed: number, running: number, queued: number, copies: number, retries: number, speculative: number, wrong: number, billed: number
  /** Tasks the default spot checks gave a second copy; providers caught lying. */
  checks?: number, caught?: number
}

export class JobMachine {
  readonly policy: Required<Omit<JobPolicy, 'spotChecks'>> & Pick<JobPolicy, 'spotChecks'>
  /** Default checks on a redundancy-1 job: tasks get a second copy by spot-check rules. */
  private readonly checkOne: boolean
  private readonly tasks: TaskState[]
  private readonly queue = new IntDeque(1024)
  private readonly running = new Map<number, CopyRecord>()
  private readonly leases = new Map<string, LeaseState>()
  private ordered: LeaseState[] = []
  private readonly deadlineKeys: number[] = []
  private readonly deadlineAt: number[] = []
  private readonly avoided = new Set<string>()
  private readonly consecutiveFailures = new Map<string, number>()
  private readonly wrongBy = new Map<string, number>()
  private readonly caught = new Set<string>()
  private readonly pendingCatch: Array<{ provider: string, reason: string, at: number }> = []
  private catching = false
  /** The latest `now` seen: catches started from a settled copy act at this time, not the copy's end. */
  private clock = 0
  private commands: JobCommand[] = []
  private events: JobEvent[] = []
  private durationSum = 0
  private durationN = 0
  private nextStragglerCheck = 0
  private finished = false
  private cancelled = false
  private needLeasesAsked = false
  private stopped: string | undefined
  private readonly counts = { done: 0, failed: 0, copies: 0, retries: 0, speculative: 0, wrong: 0, billed: 0, checks: 0, caught: 0 }

  constructor (policy: JobPolicy, private readonly reputation: ReputationBook, private readonly rng: Rng, restored?: ReadonlyMap<number, RestoredTask>) {
    const checkOne = policy.spotChecks !== undefined && policy.redundancy === 1
    this.checkOne = checkOne
    this.policy = {
      maxCopies: checkOne ? SPOT_CHECK_MAX_COPIES : policy.redundancy * 2 + 1,
      leaseTimeoutMs: 3000,
      adaptive: false,
      spotCheckRate: 0.1,
      stragglerFactor: 3,
      stragglerMinSamples: 10,
      maxProviderFailures: 3,
      maxProviderWrong: 2,
      ...policy
    }
    this.tasks = new Array<TaskState>(policy.taskCount)
    for (let i = 0; i < policy.taskCount; i++) {
      const t: TaskState = { status: 'queued', attempts: 0, copies: [], reasons: [], queued: 0, outstanding: 0, failures: 0, quorum: policy.quorum, reduced: false, checked: false, decided: false, speculated: false }
      this.tasks[i] = t
      const r = restored?.get(i)
      if (r !== undefined) this.restore(i, t, r)
      else this.enqueue(i, 'initial', false)
    }
    this.checkFinished()
  }

  private restore (index: number, t: TaskState, r: RestoredTask): void {
    for (const c of r.copies) {
      // A copy that was out when the submitter stopped is lost: its result can not arrive.
      const outcome: CopyOutcome = c.outcome === 'running' ? 'lost' : c.outcome
      t.copies.push({ index, attempt: c.attempt, provider: c.provider, leaseId: '', reason: c.reason ?? 'initial', startedAt: 0, outcome, hash: c.hash })
      t.attempts = Math.max(t.attempts, c.attempt)
      if (outcome === 'failed' || outcome === 'timeout') t.failures++
    }
    if (r.accepted !== undefined) { t.status = 'done'; t.accepted = r.accepted; this.counts.done++; return }
    if (r.failed !== undefined) { t.status = 'failed'; this.counts.failed++; return }
    t.decided = t.copies.length > 0
    // With the default checks a task decided before the restart is checked: its record is gone.
    if (t.decided && this.checkOne) { t.quorum = Math.max(t.quorum, 2); t.checked = true }
    const pending = t.copies.filter(c => c.outcome === 'pending' || c.outcome === 'agreed').length
    const want = t.decided ? Math.max(0, Math.max(this.policy.redundancy, t.quorum) - pending) : 1
    for (let k = 0; k < want; k++) this.enqueue(index, t.decided ? 'retry' : 'initial', false)
    if (t.decided) this.evaluateVotes(0, index, t)
  }

  // ---- inputs ----------------------------------------------------------------------

  handleLease (now: number, grant: LeaseGrant): void {
    this.clock = Math.max(this.clock, now)
    if (this.avoided.has(grant.provider)) { this.commands.push({ type: 'release-lease', leaseId: grant.leaseId, provider: grant.provider, reason: 'provider avoided' }); return }
    this.leases.set(grant.leaseId, { ...grant, rank: grant.rank ?? this.leases.size, lastHeartbeat: now, running: 0, alive: true })
    this.ordered = [...this.leases.values()].filter(l => l.alive).sort((a, b) => a.rank - b.rank)
    this.needLeasesAsked = false
    this.pump(now)
  }

  handleHeartbeat (now: number, leaseId: string): void {
    const l = this.leases.get(leaseId)
    if (l !== undefined && l.alive) l.lastHeartbeat = now
  }

  handleLeaseLost (now: number, leaseId: string, reason = 'lost'): void {
    const l = this.leases.get(leaseId)
    if (l === undefined || !l.alive) return
    l.alive = false
    this.ordered = this.ordered.filter(x => x !== l)
    this.events.push({ type: 'lease-lost', leaseId, provider: l.provider, reason })
    this.reputation.record(l.provider, 'timeout')
    for (const c of [...this.running.values()]) if (c.leaseId === leaseId) this.endCopy(now, c, 'lost', undefined)
    this.pump(now)
  }

  handleResult (now: number, r: ResultInput): ResultVerdict {
    this.clock = Math.max(this.clock, now)
    const t = this.tasks[r.index]
    if (t === undefined) return 'unknown'
    const c = t.copies.find(x => x.attempt === r.attempt)
    if (c === undefined) return 'unknown'
    if (TERMINAL.has(c.outcome)) return 'duplicate'
    const wasRunning = c.outcome === 'running'
    if (wasRunning) this.detach(c)
    c.endedAt = now
    if (this.caught.has(c.provider)) {
      // a caught provider's late answer counts for nothing (its copy was re-queued elsewhere)
      c.hash = r.hash
      this.settle(c, 'wrong')
      if (wasRunning && t.status !== 'done' && t.status !== 'failed') this.enqueue(r.index, 'retry', true)
      this.pump(now)
      return 'wrong'
    }
    if (!r.ok) {
      // A copy already given up (lost, timed out) was requeued then; do not requeue twice.
      if (wasRunning) this.endCopy(now, c, 'failed', r.error, true)
      else { c.error = r.error; this.settle(c, 'failed') }
      this.pump(now)
      return 'failed'
    }
    c.hash = r.hash ?? ''
    this.consecutiveFailures.set(c.provider, 0)
    this.durationSum += now - c.startedAt; this.durationN++
    if (t.status === 'done' && c.hash !== t.accepted && this.policy.spotChecks !== undefined && !this.finished && t.quorum < 2) {
      // A late copy disagrees with a result accepted on one provider's word: neither is
      // believed; the task runs again until two agree, and the loser is caught.
      this.reopen(r.index, t, `a copy from ${c.provider} disagrees with the result accepted unchecked`)
      c.outcome = 'pending'
      this.evaluateVotes(now, r.index, t)
      this.pump(now)
      return c.outcome
    }
    if (t.status === 'done' || t.status === 'failed') {
      const surplus = t.status === 'done' && c.hash === t.accepted
      this.settle(c, surplus ? 'surplus' : t.status === 'done' ? 'wrong' : 'unverified')
      this.pump(now)
      return c.outcome
    }
    c.outcome = 'pending'
    this.evaluateVotes(now, r.index, t)
    this.pump(now)
    return c.outcome
  }

  /** Expired copies and leases; call at `nextTimeout()` (or any time). */
  handleTimeout (now: number): void {
    this.clock = Math.max(this.clock, now)
    while (this.deadlineAt.length > 0 && this.deadlineAt[0] <= now) {
      const key = this.popDeadline()
      const c = this.running.get(key)
      if (c !== undefined && c.startedAt + this.policy.taskTimeoutMs <= now) {
        this.detach(c)
        c.endedAt = now
        this.endCopy(now, c, 'timeout', 'timed out', true)
      }
    }
    for (const l of [...this.ordered]) if (now - l.lastHeartbeat > this.policy.leaseTimeoutMs) this.handleLeaseLost(now, l.leaseId, 'no heartbeat')
    this.pump(now)
  }

  handleCancel (now: number): void {
    this.cancelled = true
    for (const c of [...this.running.values()]) { this.detach(c); c.endedAt = now; this.settle(c, 'cancelled'); this.commands.push({ type: 'cancel', index: c.index, attempt: c.attempt, leaseId: c.leaseId, provider: c.provider }) }
    for (const l of this.ordered) this.commands.push({ type: 'release-lease', leaseId: l.leaseId, provider: l.provider, reason: 'job cancelled' })
  }

  /** Gives one task up before it runs (placement found it over budget, past the deadline...). */
  handleTaskRejected (now: number, index: number, reason: string): void {
    const t = this.tasks[index]
    if (t === undefined || t.status === 'done' || t.status === 'failed') return
    this.failTask(now, index, t, reason)
  }

  /** The job's deadline passed: every unfinished task fails now and its copies are cancelled. */
  handleDeadline (now: number): void {
    for (let i = 0; i < this.tasks.length; i++) {
      const t = this.tasks[i]
      if (t.status !== 'done' && t.status !== 'failed') this.failTask(now, i, t, 'the job deadline passed')
    }
  }

  /**
   * No more providers can be found (or the budget is spent): every task still waiting fails
   * with `reason`. With `stopNew`, nothing is dispatched any more either: copies still out
   * finish, but a task whose copy fails from now on fails too.
   */
  handleGiveUp (now: number, reason: string, stopNew = false): void {
    if (stopNew) this.stopped = reason
    for (let i = 0; i < this.tasks.length; i++) {
      const t = this.tasks[i]
      if ((t.status === 'queued' || t.status === 'active') && t.outstanding === 0) this.failTask(now, i, t, reason)
    }
    this.pump(now)
  }

  // ---- outputs ---------------------------------------------------------------------

  pollCommands (): JobCommand[] { const out = this.commands; this.commands = []; return out }
  pollEvents (): JobEvent[] { const out = this.events; this.events = []; return out }

  nextTimeout (): number | undefined {
    let next = Infinity
    if (this.deadlineAt.length > 0) next = this.deadlineAt[0]
    for (const l of this.ordered) next = Math.min(next, l.lastHeartbeat + this.policy.leaseTimeoutMs + 1)
    if (this.running.size > 0 && this.queue.length === 0 && this.policy.stragglerFactor > 0 && this.durationN >= this.policy.stragglerMinSamples) next = Math.min(next, this.nextStragglerCheck)
    return next === Infinity || this.finished || this.cancelled ? undefined : next
  }

  get isFinished (): boolean { return this.finished }
  get isCancelled (): boolean { return this.cancelled }
  get avoidedProviders (): ReadonlySet<string> { return this.avoided }
  taskStatus (index: number): TaskState['status'] { return this.tasks[index].status }
  acceptedHash (index: number): string | undefined { return this.tasks[index].accepted }
  copiesOf (index: number): readonly CopyRecord[] { return this.tasks[index].copies }
  liveLeases (): Array<{ leaseId: string, provider: string, slots: number, running: number }> {
    return this.ordered.map(l => ({ leaseId: l.leaseId, provider: l.provider, slots: l.slots, running: l.running }))
  }

  progress (): Progress {
    let queued = 0
    for (const t of this.tasks) if (t.status === 'queued' || (t.status === 'active' && t.outstanding === 0)) queued++
    return { total: this.tasks.length, ...this.counts, running: this.running.size, queued }
  }

  /** Why task `index` runs where it runs, or why it does not run. */
  whyNotRunning (index: number): string | undefined {
    const t = this.tasks[index]
    if (t.status === 'done' || t.status === 'failed' || t.outstanding > 0) return undefined
    if (this.cancelled) return 'the job was cancelled'
    if (this.ordered.length === 0) return 'waiting: no live lease (providers lost, refused or avoided); more offers requested'
    if (this.ordered.every(l => !this.allowed(t, l.provider))) return 'waiting: every leased provider already holds a copy of it or failed it'
    return `waiting for a free slot (${this.queue.length} copies queued, ${this.running.size} running)`
  }

  // ---- internals -------------------------------------------------------------------

  private enqueue (index: number, reason: CopyReason, front: boolean): void {
    const t = this.tasks[index]
    t.queued++
    if (front) { t.reasons.unshift(reason); this.queue.pushFront(index) } else { t.reasons.push(reason); this.queue.pushBack(index) }
  }

  private allowed (t: TaskState, provider: string): boolean {
    if (this.avoided.has(provider)) return false
    for (const c of t.copies) {
      if (c.provider !== provider) continue
      // Lost and cancelled copies say nothing against the provider; anything else does.
      if (c.outcome !== 'lost' && c.outcome !== 'cancelled') return false
    }
    return true
  }

  private pump (now: number): void {
    if (this.cancelled || this.finished) return
    if (this.stopped !== undefined) {
      for (let i = this.queue.popFront(); i !== undefined; i = this.queue.popFront()) {
        const t = this.tasks[i]
        t.queued--; t.reasons.shift()
        if (t.status !== 'done' && t.status !== 'failed' && t.outstanding === 0 && t.queued === 0) this.failTask(now, i, t, this.stopped)
      }
      return
    }
    this.maybeSpeculate(now)
    const skipped: number[] = []
    let dispatched = 0
    const sc = this.policy.spotChecks
    // Checking copies wait for an established provider when one holds a live lease.
    const known = sc === undefined ? [] : this.ordered.filter(l => established(this.reputation, l.provider, sc)).map(l => l.provider)
    for (const l of this.ordered) {
      const defer = known.length > 0 && deferCheckTo(this.reputation, l.provider, sc!, known)
      while (l.running < l.slots && this.queue.length > 0) {
        let taken = -1
        for (let s = 0; s < SCAN && this.queue.length > 0; s++) {
          const i = this.queue.popFront()!
          const t = this.tasks[i]
          if (t.status === 'done' || t.status === 'failed') { t.queued--; t.reasons.shift(); s--; continue }
          if (this.allowed(t, l.provider) && !(defer && this.waitsForKnown(t, known))) { taken = i; break }
          skipped.push(i)
        }
        for (let s = skipped.length - 1; s >= 0; s--) this.queue.pushFront(skipped[s])
        skipped.length = 0
        if (taken < 0) break
        this.dispatch(now, taken, l)
        dispatched++
      }
    }
    if (this.queue.length > 0 && dispatched === 0 && this.running.size === 0 && !this.needLeasesAsked) {
      this.needLeasesAsked = true
      this.commands.push({ type: 'need-leases', reason: this.ordered.length === 0 ? 'no live lease left' : 'no leased provider may run the queued copies' })
    }
  }

  /** A checking copy (second opinion, tie-break) that an established provider may run instead. */
  private waitsForKnown (t: TaskState, known: readonly string[]): boolean {
    const reason = t.reasons[0]
    if (reason !== 'spot-check' && reason !== 'tie-break') return false
    return known.some(p => this.allowed(t, p))
  }

  private dispatch (now: number, index: number, l: LeaseState): void {
    const t = this.tasks[index]
    t.queued--
    const reason = t.reasons.shift() ?? 'retry'
    const sc = this.policy.spotChecks
    if (!t.decided) {
      t.decided = true
      if (this.checkOne) {
        if (needsCheck(this.reputation, l.provider, sc!, this.rng)) this.addCheck(index, t)
        else t.reduced = true
      } else if (this.policy.adaptive && this.reputation.trusted(l.provider) && this.rng.next() >= this.policy.spotCheckRate) {
        t.reduced = true; t.quorum = 1
      } else {
        for (let k = 1; k < this.policy.redundancy; k++) this.enqueue(index, 'redundant', true)
      }
    } else if (t.reduced && !(this.checkOne ? established(this.reputation, l.provider, sc!) : this.reputation.trusted(l.provider))) {
      // The trusted provider's copy went away; an untrusted one gets the full check.
      t.reduced = false; t.quorum = this.policy.quorum
      if (this.checkOne) this.addCheck(index, t)
      else for (let k = 1; k < this.policy.redundancy; k++) this.enqueue(index, 'redundant', true)
    }
    t.status = 'active'
    const attempt = ++t.attempts
    const c: CopyRecord = { index, attempt, provider: l.provider, leaseId: l.leaseId, reason, startedAt: now, outcome: 'running' }
    t.copies.push(c)
    t.outstanding++
    l.running++
    this.counts.copies++
    if (reason === 'retry') this.counts.retries++
    if (reason === 'speculative') this.counts.speculative++
    const key = index * KEY + attempt
    this.running.set(key, c)
    this.pushDeadline(now + this.policy.taskTimeoutMs, key)
    this.commands.push({ type: 'run', index, attempt, leaseId: l.leaseId, provider: l.provider, reason })
  }

  /** A second opinion on another provider: the task now needs two agreeing copies. */
  private addCheck (index: number, t: TaskState): void {
    t.quorum = Math.max(t.quorum, 2)
    if (!t.checked) { t.checked = true; this.counts.checks++ }
    this.enqueue(index, 'spot-check', true)
  }

  /** Removes a running copy from the running set and its lease. */
  private detach (c: CopyRecord): void {
    this.running.delete(c.index * KEY + c.attempt)
    this.tasks[c.index].outstanding--
    const l = this.leases.get(c.leaseId)
    if (l !== undefined) l.running--
  }

  /** A copy that produced no usable result: requeue the task or give it up. */
  private endCopy (now: number, c: CopyRecord, outcome: 'failed' | 'timeout' | 'lost', error: string | undefined, detached = false): void {
    if (!detached) this.detach(c)
    c.endedAt ??= now
    c.error = error
    this.settle(c, outcome)
    const t = this.tasks[c.index]
    if (outcome !== 'lost') {
      this.reputation.record(c.provider, outcome === 'failed' ? 'failed' : 'timeout')
      t.failures++
      const n = (this.consecutiveFailures.get(c.provider) ?? 0) + 1
      this.consecutiveFailures.set(c.provider, n)
      if (n >= this.policy.maxProviderFailures) this.avoid(now, c.provider, `${n} failures in a row`)
    }
    if (t.status === 'done' || t.status === 'failed') return
    if (t.failures >= this.policy.maxAttempts) { this.failTask(now, c.index, t, `${t.failures} copies failed (last: ${error ?? outcome})`); return }
    if (this.stopped !== undefined && t.outstanding === 0) { this.failTask(now, c.index, t, this.stopped); return }
    this.enqueue(c.index, 'retry', true)
  }

  private evaluateVotes (now: number, index: number, t: TaskState): void {
    const votes = new Map<string, number>()
    let best = ''; let bestN = 0
    for (const c of t.copies) {
      // `agreed` copies vote only in a task reopened after a catch (they were accepted before).
      if (c.outcome !== 'pending' && c.outcome !== 'agreed') continue
      const n = (votes.get(c.hash!) ?? 0) + 1
      votes.set(c.hash!, n)
      if (n > bestN) { best = c.hash!; bestN = n }
    }
    // Copies disagree: with the default checks the winner needs 3 agreeing copies, so two
    // colluders that agree on a wrong value can not out-vote one honest copy and get it caught.
    if (this.checkOne && votes.size > 1) t.quorum = Math.max(t.quorum, DISAGREEMENT_QUORUM)
    if (bestN >= t.quorum) { this.accept(now, index, t, best); return }
    const remaining = t.outstanding + t.queued
    const need = t.quorum - bestN
    if (remaining >= need) return
    // Copies that produced (or may still produce) an answer; failures are bounded by maxAttempts.
    const issued = t.copies.filter(c => c.outcome === 'pending' || c.outcome === 'running').length + t.queued
    if (issued + need - remaining > this.policy.maxCopies) { this.failTask(now, index, t, `no ${t.quorum} of ${issued} copies agree (maxCopies ${this.policy.maxCopies})`); return }
    for (let k = remaining; k < need; k++) this.enqueue(index, 'tie-break', true)
  }

  private accept (now: number, index: number, t: TaskState, hash: string): void {
    t.status = 'done'
    t.accepted = hash
    this.counts.done++
    // Catches this acceptance causes run after it is complete (they may reopen other tasks).
    const outer = this.catching
    this.catching = true
    const agreeing = t.copies.filter(c => (c.outcome === 'pending' || c.outcome === 'agreed') && c.hash === hash)
    // The copy whose output is kept: one that answered in this run (a copy restored from before
    // a restart has its hash in the store but its output was never kept).
    const first = agreeing.find(c => c.outcome === 'pending' && c.leaseId !== '') ?? agreeing.find(c => c.outcome === 'pending') ?? agreeing[0]
    // Two providers or more agreeing: each result was checked by another provider's copy.
    if (agreeing.length >= 2) for (const c of agreeing) if (c.outcome === 'pending') this.reputation.confirmed(c.provider)
    for (const c of t.copies) {
      if (c.outcome === 'pending') {
        if (c.hash === hash) this.settle(c, 'agreed'); else this.settle(c, 'wrong')
      } else if (c.outcome === 'agreed' && c.hash !== hash) {
        this.revoke(c) // a reopened task: this copy had agreed with a caught provider's wrong result
        this.pendingCatch.push({ provider: c.provider, at: Math.max(now, this.clock), reason: `its result for task ${index} agreed with a caught provider's, not with the re-run` })
      } else if (c.outcome === 'running') {
        this.detach(c); c.endedAt = now; this.settle(c, 'cancelled')
        this.commands.push({ type: 'cancel', index, attempt: c.attempt, leaseId: c.leaseId, provider: c.provider })
      }
    }
    this.events.push({ type: 'accepted', index, hash, attempt: first.attempt, provider: first.provider })
    this.catching = outer
    this.drainCatches()
  }

  private failTask (now: number, index: number, t: TaskState, reason: string): void {
    t.status = 'failed'
    this.counts.failed++
    for (const c of t.copies) {
      if (c.outcome === 'pending') this.settle(c, 'unverified')
      else if (c.outcome === 'running') {
        this.detach(c); c.endedAt = now; this.settle(c, 'cancelled')
        this.commands.push({ type: 'cancel', index, attempt: c.attempt, leaseId: c.leaseId, provider: c.provider })
      }
    }
    this.events.push({ type: 'task-failed', index, reason })
    this.checkFinished()
  }

  private settle (c: CopyRecord, outcome: CopyOutcome): void {
    c.outcome = outcome
    const billed = outcome === 'agreed'
    if (billed) { this.counts.billed++; this.reputation.record(c.provider, 'agreed') }
    if (outcome === 'wrong') {
      this.counts.wrong++
      this.reputation.record(c.provider, 'wrong')
      const n = (this.wrongBy.get(c.provider) ?? 0) + 1
      this.wrongBy.set(c.provider, n)
      if (this.policy.spotChecks !== undefined) this.pendingCatch.push({ provider: c.provider, at: this.clock, reason: `its result for task ${c.index} disagrees with the accepted one` })
      else if (n >= this.policy.maxProviderWrong) this.avoid(Math.max(c.endedAt ?? 0, this.clock), c.provider, `${n} wrong answers`)
    }
    if (outcome !== 'pending' && outcome !== 'running') this.events.push({ type: 'copy-settled', index: c.index, attempt: c.attempt, provider: c.provider, outcome, billed })
    this.drainCatches()
  }

  /** Catches queued while another catch or an acceptance was under way run now, in order. */
  private drainCatches (): void {
    if (this.catching) return
    for (let w = this.pendingCatch.shift(); w !== undefined; w = this.pendingCatch.shift()) this.catchProvider(w.at, w.provider, w.reason)
    this.checkFinished()
  }

  /** An accepted task whose result no longer stands runs again, now with two agreeing copies needed. */
  private reopen (index: number, t: TaskState, reason: string): void {
    t.status = 'active'; t.accepted = undefined; t.reduced = false; this.counts.done--
    t.quorum = Math.max(t.quorum, this.policy.quorum, 2)
    if (this.checkOne && !t.checked) { t.checked = true; this.counts.checks++ }
    this.events.push({ type: 'task-reopened', index, reason })
  }

  /** Withdraws a copy settled `agreed` before: no longer billed, no longer a vote. */
  private revoke (c: CopyRecord): void {
    c.outcome = 'wrong'
    this.counts.billed--
    this.counts.wrong++
    this.events.push({ type: 'copy-settled', index: c.index, attempt: c.attempt, provider: c.provider, outcome: 'wrong', billed: false, revoked: true })
  }

  /**
   * Caught once: the provider is avoided (its running copies re-queued elsewhere), its
   * reputation is gone, and every result it gave in this job is withdrawn: a waiting vote
   * becomes `wrong`; an accepted task its vote carried is reopened and runs again.
   */
  private catchProvider (now: number, provider: string, reason: string): void {
    if (this.caught.has(provider)) return
    this.caught.add(provider)
    this.catching = true
    try {
      this.counts.caught++
      this.reputation.caught(provider)
      // first, so the payer stops signing for it before it sees any of the revocations below
      const caughtEvent = { type: 'provider-caught' as const, provider, reason, invalidated: 0 }
      this.events.push(caughtEvent)
      this.avoid(now, provider, `caught: ${reason}`)
      let invalidated = 0
      const recheck: number[] = []
      for (let i = 0; i < this.tasks.length; i++) {
        const t = this.tasks[i]
        let touched = false
        for (const c of t.copies) {
          if (c.provider !== provider) continue
          if (c.outcome === 'pending') { c.outcome = 'wrong'; this.counts.wrong++; this.events.push({ type: 'copy-settled', index: i, attempt: c.attempt, provider, outcome: 'wrong', billed: false }); invalidated++; touched = true }
          else if (c.outcome === 'agreed') { this.revoke(c); invalidated++; touched = true }
        }
        if (!touched) continue
        if (t.status === 'done') {
          const others = t.copies.filter(c => c.outcome === 'agreed' && c.hash === t.accepted).length
          if (keepsQuorum(others, t.quorum) || this.finished) continue
          this.reopen(i, t, `provider ${provider} was caught: ${reason}`)
        }
        if (t.status === 'active' || t.status === 'queued') recheck.push(i)
      }
      caughtEvent.invalidated = invalidated // read when the events are polled, after this returns
      for (const i of recheck) if (this.tasks[i].status !== 'done' && this.tasks[i].status !== 'failed') this.evaluateVotes(now, i, this.tasks[i])
    } finally { this.catching = false }
    this.pump(now)
  }

  private avoid (now: number, provider: string, reason: string): void {
    if (this.avoided.has(provider)) return
    this.avoided.add(provider)
    this.events.push({ type: 'provider-avoided', provider, reason })
    for (const l of [...this.ordered]) {
      if (l.provider !== provider) continue
      this.commands.push({ type: 'release-lease', leaseId: l.leaseId, provider, reason })
      this.handleLeaseLost(now, l.leaseId, `provider avoided: ${reason}`)
    }
  }

  private maybeSpeculate (now: number): void {
    const p = this.policy
    if (p.stragglerFactor <= 0 || this.queue.length > 0 || this.durationN < p.stragglerMinSamples || now < this.nextStragglerCheck) return
    const mean = this.durationSum / this.durationN
    this.nextStragglerCheck = now + Math.max(1, mean / 2)
    let free = 0
    for (const l of this.ordered) free += Math.max(0, l.slots - l.running)
    if (free === 0) return
    for (const c of this.running.values()) {
      if (free === 0) break
      const t = this.tasks[c.index]
      if (t.speculated || now - c.startedAt < p.stragglerFactor * mean) continue
      t.speculated = true
      this.enqueue(c.index, 'speculative', true)
      free--
    }
  }

  private checkFinished (): void {
    if (this.finished || this.catching || this.pendingCatch.length > 0 || this.counts.done + this.counts.failed < this.tasks.length) return
    this.finished = true
    for (const l of this.ordered) this.commands.push({ type: 'release-lease', leaseId: l.leaseId, provider: l.provider, reason: 'job finished' })
    this.events.push({ type: 'finished', done: this.counts.done, failed: this.counts.failed })
  }

  private pushDeadline (at: number, key: number): void {
    const a = this.deadlineAt; const k = this.deadlineKeys
    let j = a.length
    a.push(at); k.push(key)
    while (j > 0) {
      const p = (j - 1) >> 1
      if (a[p] <= at) break
      a[j] = a[p]; k[j] = k[p]; j = p
    }
    a[j] = at; k[j] = key
  }

  private popDeadline (): number {
    const a = this.deadlineAt; const k = this.deadlineKeys
    const top = k[0]
    const lastA = a.pop()!; const lastK = k.pop()!
    if (a.length === 0) return top
    let j = 0
    for (;;) {
      let c = 2 * j + 1
      if (c >= a.length) break
      if (c + 1 < a.length && a[c + 1] < a[c]) c++
      if (a[c] >= lastA) break
      a[j] = a[c]; k[j] = k[c]; j = c
    }
    a[j] = lastA; k[j] = lastK
    return top
  }
}
