// The verification half of the job machine (sans-IO): its state, the queue of copies, votes by
// quorum, acceptance, failing a task, settling copies for billing, and catching a provider whose
// result disagrees with an accepted one (every result it gave withdrawn, its tasks re-run).
// JobMachine (job-machine.ts) adds the inputs, dispatch to leases, timeouts and speculation.
import { IntDeque } from './deque.js'
import { DeadlineHeap } from './deadline-heap.js'
import type { ReputationBook } from './reputation.js'
import { keepsQuorum, established, DISAGREEMENT_QUORUM, SPOT_CHECK_MAX_COPIES } from './spot-check.js'
import type { Rng } from '../rng.js'
import { pickTwins, wantsFasterSlot, MAX_TWINS_PER_TASK, SPECULATION_GAIN, FASTER_ROUND_GAP_MS, OVERDUE_SHARE, FASTER_ROUND_OVERDUE_SHARE, type StragglerView } from './speculation.js'
import { SpeedEvidence } from './speed-evidence.js'
import { mayLease, type LeaseCap } from './lease-cap.js'
import { KEY, type JobPolicy, type CopyRecord, type CopyOutcome, type JobCommand, type JobEvent, type TaskState, type LeaseState, type CopyReason } from './job-types.js'

export abstract class JobVerification {
  readonly policy: Required<Omit<JobPolicy, 'spotChecks'>> & Pick<JobPolicy, 'spotChecks'>
  /** Default checks on a redundancy-1 job: tasks get a second copy by spot-check rules. */
  protected readonly checkOne: boolean
  protected readonly tasks: TaskState[]
  protected readonly queue = new IntDeque(1024)
  protected readonly running = new Map<number, CopyRecord>()
  protected readonly leases = new Map<string, LeaseState>()
  protected ordered: LeaseState[] = []
  protected readonly deadlines = new DeadlineHeap()
  protected readonly avoided = new Set<string>()
  /** Provider -> the owner its leases named (LeaseGrant.owner): bounded by the providers leased. */
  protected readonly owners = new Map<string, string>()
  protected readonly consecutiveFailures = new Map<string, number>()
  protected readonly wrongBy = new Map<string, number>()
  protected readonly caught = new Set<string>()
  protected readonly pendingCatch: Array<{ provider: string, reason: string, at: number }> = []
  /** Peers queued in pendingCatch by their owner's catch, not caught yet (each queued once). */
  private readonly siblingsQueued = new Set<string>()
  protected catching = false
  /** The latest `now` seen: catches started from a settled copy act at this time, not the copy's end. */
  protected clock = 0
  protected commands: JobCommand[] = []
  protected events: JobEvent[] = []
  protected durationSum = 0
  protected durationN = 0
  protected nextStragglerCheck = 0
  protected finished = false
  protected cancelled = false
  protected needLeasesAsked = false
  protected stopped: string | undefined
  protected readonly counts = { done: 0, failed: 0, copies: 0, retries: 0, speculative: 0, wrong: 0, billed: 0, checks: 0, caught: 0 }
  /** Measured copy times, the latest round's fastest offer, the release limits (speed-evidence.ts). */
  protected readonly speed = new SpeedEvidence()
  /** No round for a faster slot is asked before this (FASTER_ROUND_GAP_MS after the last round). */
  protected fasterAfter = -Infinity
  private twinsAtRound = 0
  /** Leases that ran a copy of this job. */
  protected readonly ranOn = new Set<string>()

  /** Providers with an agreed result in this job (their RESULT_TOO_LARGE counts toward failing a task early). */
  protected readonly agreedHere = new Set<string>()

  constructor (policy: JobPolicy, protected readonly reputation: ReputationBook, protected readonly rng: Rng) {
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
      declaredResultBound: false,
      ...policy
    }
    this.tasks = new Array<TaskState>(policy.taskCount)
  }

  /**
   * A lease round's fastest usable offer (transfer + run, ms): a straggler predicted to need
   * SPECULATION_GAIN times that makes the job look for a faster slot (leaseWant), at most once
   * per FASTER_ROUND_GAP_MS.
   */
  noteFastest (now: number, runMs: number | undefined): void {
    this.clock = Math.max(this.clock, now)
    this.speed.roundEnded(now, runMs)
    // a round whose leases took twins may be followed at once (a job with many stragglers finds
    // fast slots a sample at a time); one that took none waits FASTER_ROUND_GAP_MS
    this.fasterAfter = this.counts.speculative > this.twinsAtRound ? now : now + FASTER_ROUND_GAP_MS
    this.twinsAtRound = this.counts.speculative
  }

  /**
   * Releases the job's idle leases that no straggler could use (predicted SPECULATION_GAIN times
   * too slow), slowest first, at most `n`; when nothing is queued. Lets a job at its lease cap
   * look for faster slots; returns how many went.
   */
  releaseIdleLeases (now: number, n: number): number {
    if (this.queue.length > 0 || n <= 0 || !this.speed.mayRelease()) return 0
    const stragglers = this.stragglerViews(now)
    let longest = 0
    for (const s of stragglers) longest = Math.max(longest, s.endsAt - now)
    const idle = this.ordered.filter(l => l.running === 0 && l.runMs !== undefined && SPECULATION_GAIN * l.runMs > longest).sort((a, b) => b.runMs! - a.runMs!).slice(0, n)
    // one release per round (speed-evidence.ts): a round that finds no faster slot stops them
    if (idle.length > 0) this.speed.released(idle[idle.length - 1].runMs!)
    this.releaseLeases(idle, 'idle: too slow for the job\'s stragglers')
    return idle.length
  }

  /**
   * Starved (copies queued, none running: every live lease is idle and can take none of them, e.g.
   * each provider already holds a copy of every queued task): releases `n` of those leases, the
   * slowest first (those that ran nothing last), so a starved round can lease fresh providers
   * without the job passing its lease ceiling (lease-cap.ts, review s9 M2). Returns how many went.
   */
  releaseStarvedLeases (n: number): number {
    if (n <= 0 || this.queue.length === 0 || this.running.size > 0) return 0
    const idle = this.ordered.filter(l => l.running === 0).sort((a, b) => (b.runMs ?? Infinity) - (a.runMs ?? Infinity)).slice(0, n)
    this.releaseLeases(idle, 'idle: can run none of the queued copies; making room under the lease ceiling')
    return idle.length
  }

  /** The job's lease cap (JobSession's maxLeases, lease-cap.ts): at it, queued copies cannot get new leases. */
  leaseCap: LeaseCap = { leases: Infinity, slots: 0 }

  /** The live leases and their slots, as the lease cap counts them. */
  leasesHeld (): { leases: number, slots: number } {
    let slots = 0
    for (const l of this.ordered) slots += l.slots
    return { leases: this.ordered.length, slots }
  }

  /**
   * At the lease cap with copies queued: an idle lease predicted SPECULATION_GAIN times slower
   * than the fastest offer seen is released rather than refilled, so a round can lease a faster
   * provider (re-placing queued copies instead of committing them to a slow slot). One per pump.
   */
  protected tooSlowAtCap (l: LeaseState, releasing: number, atCap: () => boolean): boolean {
    // a lease that has not run a copy yet was just chosen from the offers there are: it runs one first
    return releasing === 0 && this.speed.mayRelease() && l.running === 0 && this.ranOn.has(l.leaseId) && l.runMs !== undefined && this.policy.stragglerFactor > 0 && atCap() &&
      this.queue.length > 0 && SPECULATION_GAIN * this.speed.fastestRunMs < l.runMs
  }

  protected mayLeaseMore (): boolean {
    const h = this.leasesHeld()
    return mayLease(this.leaseCap, h.leases, h.slots)
  }

  /** Gives leases back to their providers (they ran nothing for the job now): no reputation change. */
  protected releaseLeases (ls: readonly LeaseState[], reason: string): void {
    if (ls.length === 0) return
    for (const l of ls) {
      l.alive = false
      this.commands.push({ type: 'release-lease', leaseId: l.leaseId, provider: l.provider, reason })
    }
    this.ordered = this.ordered.filter(l => l.alive)
  }

  /**
   * Tasks that wait on one answer from their running copies (one needed copy and its twins), each
   * copy's end predicted (its lease said how long a copy takes there), twinned fewer than
   * MAX_TWINS_PER_TASK times: at the end of their soonest copy. A task whose twin went to a slot
   * only somewhat faster may get another on a far faster slot.
   */
  protected stragglerViews (now: number, overdueShare = OVERDUE_SHARE): StragglerView[] {
    const out: StragglerView[] = []
    // tasks with more than one copy running (twinned, or a quorum of two): soonest end, copies, twins among them
    let several: Map<number, { endsAt: number, copies: number, twins: number }> | undefined
    for (const c of this.running.values()) {
      const t = this.tasks[c.index]
      if (t.status === 'done' || t.status === 'failed') continue
      const runMs = this.leases.get(c.leaseId)?.runMs
      // -Infinity: a copy with no prediction, which may end at any time (its task is no straggler)
      const endsAt = runMs === undefined ? -Infinity : Math.max(c.startedAt + runMs, now + (now - c.startedAt) * overdueShare)
      if (t.outstanding === 1) {
        if (endsAt !== -Infinity && this.twinsOf(t) < MAX_TWINS_PER_TASK) out.push({ index: c.index, endsAt })
        continue
      }
      several ??= new Map()
      const v = several.get(c.index) ?? { endsAt: Infinity, copies: 0, twins: 0 }
      v.endsAt = Math.min(v.endsAt, endsAt); v.copies++
      if (c.reason === 'speculative') v.twins++
      several.set(c.index, v)
    }
    if (several !== undefined) {
      for (const [index, v] of several) {
        // two copies needed (a quorum of two running): the soonest end is not the task's
        if (v.endsAt === -Infinity || v.copies - v.twins > 1) continue
        if (this.twinsOf(this.tasks[index]) < MAX_TWINS_PER_TASK) out.push({ index, endsAt: v.endsAt })
      }
    }
    return out
  }

  private twinsOf (t: TaskState): number {
    let twins = 0
    for (const x of t.copies) if (x.reason === 'speculative') twins++
    return twins
  }

  /** Twins to send now: a straggler and a free slot of a lease predicted to end a copy far sooner (speculation.ts). */
  protected twinsDue (now: number): Array<{ index: number, lease: LeaseState }> {
    if (this.policy.stragglerFactor <= 0 || this.queue.length > 0) return []
    const free = this.ordered.filter(l => l.suspendedAt === undefined && l.runMs !== undefined && l.running < l.slots)
    if (free.length === 0) return []
    const stragglers = this.stragglerViews(now)
    if (stragglers.length === 0) return []
    const views = free.map(l => ({ leaseId: l.leaseId, runMs: l.runMs!, free: l.slots - l.running }))
    return pickTwins(now, stragglers, views, (i, id) => this.allowed(this.tasks[i], this.leases.get(id)!.provider)).map(x => ({ index: x.index, lease: this.leases.get(x.leaseId)! }))
  }

  /** An ok copy ended: its provider's leases reckon with the measured time from now on, not its claim. */
  protected measured (provider: string, ms: number): void {
    this.speed.copyMeasured(provider, ms)
    for (const l of this.ordered) if (l.provider === provider && l.runMs !== undefined) l.runMs = this.speed.runMsOf(provider, l.runMs)
  }

  /** Whether the job should look for a faster slot now: its queue is empty and a straggler would gain from the fastest offer seen. */
  protected wantsFaster (now: number): boolean {
    if (this.policy.stragglerFactor <= 0 || this.queue.length > 0 || now < this.fasterAfter || !Number.isFinite(this.speed.fastestRunMs)) return false
    return wantsFasterSlot(now, this.stragglerViews(now, FASTER_ROUND_OVERDUE_SHARE), this.speed.fastestRunMs)
  }

  /** Dispatches queued copies to free lease slots. */
  protected abstract pump (now: number): void
  abstract handleLeaseLost (now: number, leaseId: string, reason?: string): void

  protected enqueue (index: number, reason: CopyReason, front: boolean): void {
    const t = this.tasks[index]
    t.queued++
    if (front) { t.reasons.unshift(reason); this.queue.pushFront(index) } else { t.reasons.push(reason); this.queue.pushBack(index) }
  }

  protected allowed (t: TaskState, provider: string): boolean {
    if (this.avoided.has(provider)) return false
    const owner = this.owners.get(provider)
    for (const c of t.copies) {
      // a peer of the same owner (LeaseGrant.owner) counts as this provider: its copy is no second opinion
      if (c.provider !== provider && (owner === undefined || this.owners.get(c.provider) !== owner)) continue
      // Lost and cancelled copies say nothing against the provider; anything else does.
      if (c.outcome !== 'lost' && c.outcome !== 'cancelled') return false
    }
    return true
  }

  /** Removes a running copy from the running set and its lease. */
  protected detach (c: CopyRecord): void {
    this.running.delete(c.index * KEY + c.attempt)
    this.tasks[c.index].outstanding--
    const l = this.leases.get(c.leaseId)
    if (l !== undefined) l.running--
  }

  /** A second opinion on another provider: the task now needs two agreeing copies. */
  protected addCheck (index: number, t: TaskState): void {
    t.quorum = Math.max(t.quorum, 2)
    if (!t.checked) { t.checked = true; this.counts.checks++ }
    this.enqueue(index, 'spot-check', true)
  }

  protected evaluateVotes (now: number, index: number, t: TaskState): void {
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

  protected accept (now: number, index: number, t: TaskState, hash: string): void {
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

  protected failTask (now: number, index: number, t: TaskState, reason: string): void {
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

  protected settle (c: CopyRecord, outcome: CopyOutcome): void {
    c.outcome = outcome
    const billed = outcome === 'agreed'
    if (billed) { this.counts.billed++; this.reputation.record(c.provider, 'agreed'); if (this.agreedHere.size < 65_536) this.agreedHere.add(c.provider) }
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
  protected drainCatches (): void {
    if (this.catching) return
    for (let w = this.pendingCatch.shift(); w !== undefined; w = this.pendingCatch.shift()) this.catchProvider(w.at, w.provider, w.reason)
    this.checkFinished()
  }

  /** An accepted task whose result no longer stands runs again, now with two agreeing copies needed. */
  protected reopen (index: number, t: TaskState, reason: string): void {
    t.status = 'active'; t.accepted = undefined; t.reduced = false; this.counts.done--
    t.quorum = Math.max(t.quorum, this.policy.quorum, 2)
    if (this.checkOne && !t.checked) { t.checked = true; this.counts.checks++ }
    this.events.push({ type: 'task-reopened', index, reason })
  }

  /** Withdraws a copy settled `agreed` before: no longer billed, no longer a vote. */
  protected revoke (c: CopyRecord): void {
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
  protected catchProvider (now: number, provider: string, reason: string): void {
    if (this.caught.has(provider)) return
    this.caught.add(provider)
    this.siblingsQueued.delete(provider)
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
      // its owner's other peers (LeaseGrant.owner: one payout key) are caught with it (drainCatches runs them next)
      const owner = this.owners.get(provider)
      // (each once: a sibling's own catch queued every sibling not yet caught again, N^2/2 for N peers; review s14 L4)
      if (owner !== undefined) {
        for (const [peer, o] of this.owners) {
          if (o !== owner || this.caught.has(peer) || this.siblingsQueued.has(peer)) continue
          this.siblingsQueued.add(peer)
          this.pendingCatch.push({ provider: peer, at: now, reason: `it is paid through the same payout address as ${provider}, caught: ${reason}` })
        }
      }
    } finally { this.catching = false }
    this.pump(now)
  }

  protected avoid (now: number, provider: string, reason: string): void {
    if (this.avoided.has(provider)) return
    this.avoided.add(provider)
    this.events.push({ type: 'provider-avoided', provider, reason })
    for (const l of [...this.ordered]) {
      if (l.provider !== provider) continue
      this.commands.push({ type: 'release-lease', leaseId: l.leaseId, provider, reason })
      this.handleLeaseLost(now, l.leaseId, `provider avoided: ${reason}`)
    }
  }

  /**
   * Before the job ends, with the default checks: a task accepted only on the word of providers
   * that are still not established (two newcomers that agreed: a colluding pair that ran nothing
   * else was never caught, and its wrong value stood) gets one copy more, from another provider,
   * when this job has an established provider; its agreeing copies vote again (a disagreement
   * then needs 3, and the pair is caught). Once per task; returns whether any task was reopened.
   */
  private auditUnconfirmed (): boolean {
    const sc = this.policy.spotChecks
    if (sc === undefined || !this.checkOne) return false
    // someone to ask: a provider of this job that is established by now and not avoided (its lease
    // may be gone: the lease search then asks for one again)
    const trusted = (p: string): boolean => !this.avoided.has(p) && established(this.reputation, p, sc)
    if (!this.tasks.some(t => t.copies.some(c => c.outcome === 'agreed' && trusted(c.provider)))) return false
    const reopened: number[] = []
    for (let i = 0; i < this.tasks.length; i++) {
      const t = this.tasks[i]
      if (t.status !== 'done' || t.audited === true) continue
      const voters = t.copies.filter(c => c.outcome === 'agreed' && c.hash === t.accepted)
      if (voters.length === 0 || voters.some(c => established(this.reputation, c.provider, sc))) continue
      t.audited = true
      this.reopen(i, t, 'accepted only on the word of providers not established by the end of the job: one copy more')
      t.quorum = Math.max(t.quorum, voters.length + 1)
      reopened.push(i)
    }
    if (reopened.length === 0) return false
    const now = this.clock
    for (const i of reopened) if (this.tasks[i].status === 'active') this.evaluateVotes(now, i, this.tasks[i])
    this.pump(now)
    return true
  }

  protected checkFinished (): void {
    if (this.finished || this.catching || this.pendingCatch.length > 0 || this.counts.done + this.counts.failed < this.tasks.length) return
    if (this.auditUnconfirmed()) return
    this.finished = true
    for (const l of this.ordered) this.commands.push({ type: 'release-lease', leaseId: l.leaseId, provider: l.provider, reason: 'job finished' })
    this.events.push({ type: 'finished', done: this.counts.done, failed: this.counts.failed })
  }
}
