// The state of a job's tasks and leases (sans-IO), the base of the job machine: the queue of
// copies, the leases and the lease cap, measured copy times, stragglers and their twins, and which
// provider may run a copy of a task. JobVerification (job-verification.ts) adds votes, acceptance,
// failing a task, settling copies for billing and catches; JobDispatch and JobMachine build on it.
import { IntDeque } from './deque.js'
import { DeadlineHeap } from './deadline-heap.js'
import type { ReputationBook } from './reputation.js'
import { SPOT_CHECK_MAX_COPIES, established } from './spot-check.js'
import type { Rng } from '../rng.js'
import { pickTwins, wantsFasterSlot, MAX_TWINS_PER_TASK, SPECULATION_GAIN, FASTER_ROUND_GAP_MS, OVERDUE_SHARE, FASTER_ROUND_OVERDUE_SHARE, type StragglerView } from './speculation.js'
import { SpeedEvidence } from './speed-evidence.js'
import { mayLease, type LeaseCap } from './lease-cap.js'
import { KEY, inSlots, copyShare, type JobPolicy, type CopyRecord, type JobCommand, type JobEvent, type TaskState, type LeaseState, type CopyReason } from './job-types.js'

export abstract class JobLeasing {
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

  /**
   * The bundle lease `l`'s copies may go in now (undefined: none, one copy per slot): its grant's,
   * under the default checks only for an established provider (as read-ahead: a newcomer's copies
   * each cost a check, and a liar's would all be re-run: it gets no more than its slots).
   */
  protected bundleOf (l: LeaseState): number | undefined {
    const sc = this.policy.spotChecks
    return l.bundle !== undefined && (sc === undefined || established(this.reputation, l.provider, sc)) ? l.bundle : undefined
  }

  /** Copies lease `l` holds in its slots now: slots x its bundle (bundleOf), else its slots. Every comparison of running with slots uses it. */
  protected held (l: LeaseState): number {
    return inSlots({ slots: l.slots, bundle: this.bundleOf(l) })
  }

  /** The job's lease cap (JobSession's maxLeases, lease-cap.ts): at it, queued copies cannot get new leases. */
  leaseCap: LeaseCap = { leases: Infinity, slots: 0 }

  /** The live leases and their slots, as the lease cap counts them (real slots: a bundle runs in one). */
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
      // a bundled copy's answer comes when its bundle ends: runMs for each copy of it (copyShare)
      const endsAt = runMs === undefined ? -Infinity : Math.max(c.startedAt + runMs * copyShare(c), now + (now - c.startedAt) * overdueShare)
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
    // (free as the pump counts it: slots x bundle on a lease with bundles)
    const free = this.ordered.filter(l => l.suspendedAt === undefined && l.runMs !== undefined && l.running < this.held(l))
    if (free.length === 0) return []
    const stragglers = this.stragglerViews(now)
    if (stragglers.length === 0) return []
    const views = free.map(l => ({ leaseId: l.leaseId, runMs: l.runMs!, free: this.held(l) - l.running }))
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
}
