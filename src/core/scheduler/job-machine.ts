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
// The state (tasks, leases, stragglers) is job-leasing.ts, the verification half (votes,
// acceptance, catches) job-verification.ts, dispatch to leases and speculation job-dispatch.ts.
import type { ReputationBook } from './reputation.js'
import type { Rng } from '../rng.js'
import { JobDispatch, fastestFirst } from './job-dispatch.js'
import { RESULT_TOO_LARGE } from './ports.js'
import { KEY, TERMINAL, READ_AHEAD_MAX_COPY_MS, copyShare, type JobPolicy, type RestoredTask, type TaskState, type LeaseGrant, type ResultInput, type ResultVerdict, type CopyOutcome, type CopyRecord, type JobCommand, type JobEvent, type Progress } from './job-types.js'

export * from './job-types.js'

/** A task fails after this many times maxAttempts copies lost to failed routes. */
const MAX_LOST_COPIES_FACTOR = 3
/**
 * A task fails once this many distinct providers answered RESULT_TOO_LARGE (its result is above the
 * job's declared task.maxResultBytes): before, up to maxAttempts providers computed it unpaid, each
 * counted a failure. The claim cannot be checked: it counts only when the job declared a bound, and
 * the task fails early only when one of the claimants delivered an agreed result in this job (two
 * fresh identities that lie about every task only cost copies, as any failure does: review s13 M1).
 */
export const TOO_LARGE_PROVIDERS = 2

export class JobMachine extends JobDispatch {
  /** Provider -> when a lost copy last counted as one of its failures in a row. */
  private readonly lastLoss = new Map<string, number>()

  constructor (policy: JobPolicy, reputation: ReputationBook, rng: Rng, restored?: ReadonlyMap<number, RestoredTask>) {
    super(policy, reputation, rng)
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

  handleLease (now: number, grant: LeaseGrant): void {
    this.clock = Math.max(this.clock, now)
    if (this.avoided.has(grant.provider)) { this.commands.push({ type: 'release-lease', leaseId: grant.leaseId, provider: grant.provider, reason: 'provider avoided' }); return }
    // a provider the job measured is reckoned at its measured copy time, not its offer's claim
    const runMs = grant.runMs === undefined ? undefined : this.speed.runMsOf(grant.provider, grant.runMs)
    this.speed.leased(runMs)
    if (grant.owner !== undefined) this.owners.set(grant.provider, grant.owner)
    // a bundle of 1 (or a malformed one) is no bundle
    const bundle = grant.bundle !== undefined && Number.isFinite(grant.bundle) && grant.bundle >= 2 ? Math.floor(grant.bundle) : undefined
    this.leases.set(grant.leaseId, { ...grant, runMs, bundle, rank: grant.rank ?? this.leases.size, lastHeartbeat: now, running: 0, alive: true })
    // copies go to the free lease predicted fastest first (a retry late in the job to the lease that
    // ends it soonest, not the first by its round's rank: ranks restart each round), then by rank
    this.ordered = [...this.leases.values()].filter(l => l.alive).sort(fastestFirst)
    this.needLeasesAsked = false
    this.moreLeasesAsked = false
    this.pump(now)
  }

  /** A heartbeat; true when it resumed a lease suspended by a lost copy (poll the commands). */
  handleHeartbeat (now: number, leaseId: string): boolean {
    const l = this.leases.get(leaseId)
    if (l === undefined || !l.alive) return false
    l.lastHeartbeat = now
    if (l.suspendedAt === undefined || now <= l.suspendedAt) return false
    l.suspendedAt = undefined
    this.pump(now)
    return true
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
      // no answer for a copy already given up (its lease lost): it stays lost, nothing against the provider
      if (!wasRunning && r.unreachable === true && (c.outcome === 'lost' || c.outcome === 'timeout')) { c.error ??= r.error; return c.outcome }
      // A copy already given up (lost, timed out) was requeued then; do not requeue twice.
      if (wasRunning && r.unreachable === true) this.endLostCopy(now, c, r.error)
      else if (wasRunning) this.endCopy(now, c, 'failed', r.error, true, r.code)
      else { c.error = r.error; this.settle(c, 'failed') }
      this.pump(now)
      return 'failed'
    }
    c.hash = r.hash ?? ''
    this.consecutiveFailures.set(c.provider, 0)
    // per copy: a bundled copy's answer came when its bundle ended (copyShare: review18 F3)
    const took = (now - c.startedAt) / copyShare(c)
    this.durationSum += took; this.durationN++
    if (wasRunning) this.measured(c.provider, took)
    // (a bundle that took this long in all ends the lease's bundles and read-ahead: not tiny tasks)
    if (now - c.startedAt > READ_AHEAD_MAX_COPY_MS) this.noLongerAhead(c.leaseId)
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

  /**
   * A copy that waited on this side before it went out (the node's admission of results that cannot
   * be paused: result-admission.ts) is timed from now: the wait was ours, not the provider's.
   */
  handleCopyAdmitted (now: number, index: number, attempt: number): void {
    const key = index * KEY + attempt
    const c = this.running.get(key)
    if (c === undefined) return
    c.admissionWait = undefined
    if (now <= c.startedAt) return
    c.startedAt = now
    this.deadlines.push(now + (c.timeoutMs ?? this.policy.taskTimeoutMs), key)
  }

  /**
   * The copy waits on this side for that admission (review s12 M2): its deadline does not run until
   * handleCopyAdmitted (a provider ahead in the line that never answers must not make the copies
   * behind it time out, blamed on their own honest providers).
   */
  handleCopyWaiting (index: number, attempt: number): void {
    const c = this.running.get(index * KEY + attempt)
    if (c !== undefined) c.admissionWait = true
  }

  /** Expired copies and leases; call at `nextTimeout()` (or any time). */
  handleTimeout (now: number): void {
    this.clock = Math.max(this.clock, now)
    while (this.deadlines.nextAt <= now) {
      const key = this.deadlines.pop()
      const c = this.running.get(key)
      if (c !== undefined && c.admissionWait !== true && c.startedAt + (c.timeoutMs ?? this.policy.taskTimeoutMs) <= now) {
        this.noLongerAhead(c.leaseId)
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
  handleGiveUp (now: number, reason: string | ((index: number) => string), stopNew = false): void {
    if (stopNew && typeof reason === 'string') this.stopped = reason
    for (let i = 0; i < this.tasks.length; i++) {
      const t = this.tasks[i]
      if ((t.status === 'queued' || t.status === 'active') && t.outstanding === 0) this.failTask(now, i, t, typeof reason === 'string' ? reason : reason(i))
    }
    this.pump(now)
  }

  pollCommands (): JobCommand[] { const out = this.commands; this.commands = []; return out }

  pollEvents (): JobEvent[] { const out = this.events; this.events = []; return out }

  nextTimeout (): number | undefined {
    let next = this.deadlines.nextAt
    for (const l of this.ordered) next = Math.min(next, l.lastHeartbeat + this.policy.leaseTimeoutMs + 1)
    if (this.running.size > 0 && this.queue.length === 0 && this.policy.stragglerFactor > 0 && this.durationN >= this.policy.stragglerMinSamples) next = Math.min(next, this.nextStragglerCheck)
    // the next round for a faster slot, when stragglers would want one then
    if (this.fasterAfter > this.clock && this.fasterAfter < next && this.wantsFaster(this.fasterAfter)) next = this.fasterAfter
    return next === Infinity || this.finished || this.cancelled ? undefined : next
  }

  get isFinished (): boolean { return this.finished }

  get isCancelled (): boolean { return this.cancelled }
  /** Nothing new is dispatched any more (budget or escrow spent). */
  get isStopped (): boolean { return this.stopped !== undefined }

  get avoidedProviders (): ReadonlySet<string> { return this.avoided }

  taskStatus (index: number): TaskState['status'] { return this.tasks[index].status }

  acceptedHash (index: number): string | undefined { return this.tasks[index].accepted }

  copiesOf (index: number): readonly CopyRecord[] { return this.tasks[index].copies }

  /** `bundle`: copies each slot runs one after another (leases with bundles only). */
  liveLeases (): Array<{ leaseId: string, provider: string, slots: number, running: number, bundle?: number }> {
    return this.ordered.map(l => ({ leaseId: l.leaseId, provider: l.provider, slots: l.slots, running: l.running, ...(l.bundle !== undefined && l.bundle > 1 ? { bundle: l.bundle } : {}) }))
  }

  progress (): Progress {
    let queued = 0
    for (const t of this.tasks) if (t.status === 'queued' || (t.status === 'active' && t.outstanding === 0)) queued++
    // a lease's copies past its slots were sent ahead and wait at the provider: "16 running" on two
    // providers of 2 slots each was 4 running and 12 waiting (user walks s13/s14); so do the copies
    // of a bundle behind the one its slot runs (running never counts more than the real slots)
    let ahead = 0
    for (const l of this.ordered) if (l.running > l.slots) ahead += l.running - l.slots
    return { total: this.tasks.length, ...this.counts, running: this.running.size - ahead, queued, ahead }
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

  /** No more copies sent ahead of this lease's slots, nor bundles (the task was predicted short and is not). */
  private noLongerAhead (leaseId: string): void {
    const l = this.leases.get(leaseId)
    if (l !== undefined) { l.readAhead = undefined; l.bundle = undefined }
  }

  /**
   * Why no leased provider may run another copy of task `index` (a give-up's reason, per task):
   * its copies disagree and every provider holds one, or each holds a copy or failed it.
   */
  stuckReason (index: number): string {
    const t = this.tasks[index]
    const votes = new Map<string, number>()
    let best = 0
    for (const c of t.copies) {
      if (c.outcome !== 'pending' && c.outcome !== 'agreed') continue
      const n = (votes.get(c.hash ?? '') ?? 0) + 1
      votes.set(c.hash ?? '', n)
      best = Math.max(best, n)
    }
    let holds = 0; let failed = 0; let lastError: string | undefined
    for (const l of this.ordered) {
      const mine = t.copies.filter(c => c.provider === l.provider && c.outcome !== 'lost' && c.outcome !== 'cancelled')
      if (mine.some(c => c.outcome === 'failed' || c.outcome === 'timeout' || c.outcome === 'wrong')) failed++
      else if (mine.length > 0) holds++
    }
    for (const c of t.copies) if ((c.outcome === 'failed' || c.outcome === 'timeout') && c.error !== undefined) lastError = c.error
    const n = this.ordered.length
    const leased = `of the job's ${n} leased provider${n === 1 ? '' : 's'}, ${holds} hold${holds === 1 ? 's' : ''} a copy already${failed > 0 ? ` and ${failed} failed it${lastError !== undefined ? ` (last: ${lastError})` : ''}` : ''}`
    if (votes.size > 1) return `its copies disagree (${votes.size} different outputs; ${best} agree, ${t.quorum} needed) and no provider may run another: ${leased}`
    return `no provider may run another copy (${t.failures} of ${this.policy.maxAttempts} attempts failed): ${leased}`
  }

  /**
   * A copy whose route failed (no answer at all): lost, so the provider is not barred from the task
   * and its reputation is untouched; but repeated losses on one provider count towards avoiding it,
   * and a task losing copies again and again fails, so a provider that resets every stream cannot
   * keep a job running for ever.
   */
  private endLostCopy (now: number, c: CopyRecord, error: string | undefined): void {
    const t = this.tasks[c.index]
    t.lostCopies = (t.lostCopies ?? 0) + 1
    // its route failed: the lease's other slots would fail the same way (a loop of lost copies)
    // until a heartbeat shows the route works again, or the lease times out and is lost
    const lease = this.leases.get(c.leaseId)
    if (lease !== undefined && lease.alive) lease.suspendedAt = now
    // copies that were out together when the route broke (a relay killed) are one failure, not one each
    const last = this.lastLoss.get(c.provider)
    if (last === undefined || c.startedAt >= last) {
      this.lastLoss.set(c.provider, now)
      const n = (this.consecutiveFailures.get(c.provider) ?? 0) + 1
      this.consecutiveFailures.set(c.provider, n)
      if (n >= this.policy.maxProviderFailures) this.avoid(now, c.provider, `${n} failures in a row (last: no answer)`)
    }
    if (t.lostCopies >= MAX_LOST_COPIES_FACTOR * this.policy.maxAttempts && t.status !== 'done' && t.status !== 'failed') {
      c.endedAt ??= now
      c.error = error
      this.settle(c, 'lost')
      this.failTask(now, c.index, t, `${t.lostCopies} copies got no answer (last: ${error ?? 'unreachable'})`)
      return
    }
    this.endCopy(now, c, 'lost', error, true)
  }

  /** A copy that produced no usable result: requeue the task or give it up. */
  private endCopy (now: number, c: CopyRecord, outcome: 'failed' | 'timeout' | 'lost', error: string | undefined, detached = false, code?: string): void {
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
    if (outcome === 'failed' && code === RESULT_TOO_LARGE && this.policy.declaredResultBound === true && !(t.tooLarge ??= []).includes(c.provider)) t.tooLarge.push(c.provider)
    if (t.status === 'done' || t.status === 'failed') return
    // the job's declared result bound is too small (distinct providers agree; one alone could be
    // lying): no more copies run unpaid, and the task says what to change (review s12 L11)
    if ((t.tooLarge?.length ?? 0) >= TOO_LARGE_PROVIDERS && t.tooLarge!.some(p => this.agreedHere.has(p))) {
      if (t.outstanding > 0) return
      this.failTask(now, c.index, t, `its result is larger than the job's declared bound (manifest task.maxResultBytes): ${t.tooLarge?.length ?? 0} providers answered RESULT_TOO_LARGE; raise task.maxResultBytes (last: ${error ?? outcome})`)
      return
    }
    if (t.failures >= this.policy.maxAttempts) {
      // another copy (a twin's original, say) still runs: its answer decides, not a failed twin's
      if (t.outstanding > 0) return
      this.failTask(now, c.index, t, `${t.failures} copies failed (last: ${error ?? outcome})`)
      return
    }
    if (this.stopped !== undefined && t.outstanding === 0) { this.failTask(now, c.index, t, this.stopped); return }
    this.enqueue(c.index, 'retry', true)
  }

}
