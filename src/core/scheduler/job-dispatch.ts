// Dispatch half of the job machine (sans-IO): the queue of copies to free lease slots (checking
// copies wait for an established provider), what the job wants from the lease search, and the
// straggler twins (speculation.ts against predictions, the job's mean duration otherwise).
// JobMachine (job-machine.ts) adds the inputs and the ends of copies; the state is job-leasing.ts, the verification half job-verification.ts.
import { established, deferCheckTo, needsCheck } from './spot-check.js'
import { JobVerification } from './job-verification.js'
import { KEY, SCAN, inSlots, copyShare, type TaskState, type LeaseState, type CopyRecord } from './job-types.js'
import { TASK_BUNDLE_CUT_MS } from './ports.js'

/**
 * The order the pump fills leases in: predicted copy time (runMs) first, a lease with no
 * prediction last, then the rank placement gave it in its round.
 */
export function fastestFirst (a: Pick<LeaseState, 'runMs' | 'rank'>, b: Pick<LeaseState, 'runMs' | 'rank'>): number {
  const ra = a.runMs ?? Infinity
  const rb = b.runMs ?? Infinity
  return ra !== rb ? (ra < rb ? -1 : 1) : a.rank - b.rank
}

export abstract class JobDispatch extends JobVerification {
  /** A `more-leases` was asked and the queue has not emptied nor a lease opened since. */
  protected moreLeasesAsked = false

  protected pump (now: number): void {
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
    const tooSlow: typeof this.ordered = []
    // whether the job is at its lease cap: read once per pump (leasesHeld walks every lease; the loop
    // below changes no lease's slots and releases none before it ends)
    let atCap: boolean | undefined
    const isAtCap = (): boolean => (atCap ??= !this.mayLeaseMore())
    // the tail's bundle size, read once per pump (before this pump's copies leave: each lease gets the same share)
    let tail: number | undefined
    for (const l of this.ordered) {
      if (l.suspendedAt !== undefined) continue
      // at the lease cap, an idle lease far slower than offers seen makes room for a faster one (speculation.ts)
      if (this.tooSlowAtCap(l, tooSlow.length, isAtCap)) { tooSlow.push(l); continue }
      const defer = known.length > 0 && deferCheckTo(this.reputation, l.provider, sc!, known)
      // read-ahead (tiny tasks) only while a long queue waits: never at a job's tail, where a copy queued
      // behind a slow one would wait for it; and under spot checks only to an established provider (a
      // newcomer's copies each cost a check, and a liar's would all be re-run: it gets no more than its slots)
      const ahead = l.readAhead !== undefined && this.queue.length > 4 * (l.slots + l.readAhead) &&
        (sc === undefined || established(this.reputation, l.provider, sc)) ? l.readAhead : 0
      // a lease with bundles holds slots x bundle copies (each slot runs a bundle's one after another),
      // only while the queue holds twice that: a short job, or a job's tail, spreads over the job's
      // leases as single copies do, instead of the first lease taking it all (a 40-task job went to 2 of 4)
      const held = this.held(l)
      // bundles of a job's tail: the queue's share per open slot (tailShare), single copies while it is below 2
      const inBundle = held > l.slots && this.queue.length < 2 * held ? Math.min(held / l.slots, (tail ??= this.tailShare())) : held / l.slots
      const cap = inBundle >= 2 ? l.slots * inBundle : l.slots
      while (l.running < cap + ahead && this.queue.length > 0) {
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
        this.dispatch(now, taken, l, cap > l.slots ? inBundle : undefined)
        dispatched++
      }
    }
    if (tooSlow.length > 0) this.speed.released(tooSlow[0].runMs!)
    this.releaseLeases(tooSlow, 'too slow: making room under the lease cap for a faster provider')
    this.dropStale()
    if (this.queue.length > 0 && dispatched === 0 && this.running.size === 0 && !this.needLeasesAsked) {
      this.needLeasesAsked = true
      this.commands.push({ type: 'need-leases', reason: this.ordered.length === 0 ? 'no live lease left' : 'no leased provider may run the queued copies' })
    } else if (this.queue.length > 0 && this.running.size > 0 && !this.moreLeasesAsked) {
      // copies wait behind busy leases: more providers could take them now (a provider that did
      // not answer the first round, or refused its lease, would otherwise never be asked again)
      this.moreLeasesAsked = true
      this.commands.push({ type: 'more-leases', reason: `${this.queue.length} copies wait for a slot of ${this.ordered.length} leases` })
    }
    if (this.queue.length === 0) this.moreLeasesAsked = false
  }

  /**
   * What the job wants from the lease search now: `starved` (copies queued and nothing running,
   * so no lease can take them: the search may give them up), `more` (copies queued behind busy
   * leases: more providers would help, the running ones will take them otherwise) or nothing.
   */
  leaseWant (): 'starved' | 'more' | undefined {
    if (this.cancelled || this.finished || this.stopped !== undefined) return undefined
    this.dropStale()
    // nothing queued: a round only to find a faster slot for stragglers (speculation.ts)
    if (this.queue.length === 0) return this.wantsFaster(this.clock) ? 'more' : undefined
    return this.running.size === 0 ? 'starved' : 'more'
  }

  /** Queue entries at the front whose task ended meanwhile (entries are removed lazily). */
  private dropStale (): void {
    for (let i = this.queue.popFront(); i !== undefined; i = this.queue.popFront()) {
      const t = this.tasks[i]
      if (t.status !== 'done' && t.status !== 'failed') { this.queue.pushFront(i); return }
      t.queued--; t.reasons.shift()
    }
  }

  /** A checking copy (second opinion, tie-break) that an established provider may run instead. */
  private waitsForKnown (t: TaskState, known: readonly string[]): boolean {
    const reason = t.reasons[0]
    if (reason !== 'spot-check' && reason !== 'tie-break') return false
    return known.some(p => this.allowed(t, p))
  }

  /**
   * A job's tail (fewer queued copies than twice what a bundle lease holds): how many copies a slot of
   * a bundle lease takes in one bundle, the queued copies shared evenly over the open leases' slots
   * (at most the lease's bundle). Before, the tail left one copy per slot per round trip: the last ~64
   * copies of a 1,000-task job took ~8 round trips (~90 ms in bench grid, TRACE s18). 1 (single copies,
   * each in a slot of its own) for a job that has sent fewer than 4 copies per queued one (a short job:
   * its first lease would otherwise take the copies the leases still opening should share; f91ed34),
   * and while fewer than two leases are open.
   */
  private tailShare (): number {
    let slots = 0
    let leases = 0
    for (const l of this.ordered) if (l.suspendedAt === undefined) { slots += l.slots; leases++ }
    if (leases < 2 || slots === 0 || this.counts.copies < 4 * this.queue.length) return 1
    return Math.max(1, Math.floor(this.queue.length / slots))
  }

  /** `bundle`: the copy may leave in a TaskBundle of at most that many with the lease's other copies of this step (undefined: alone; a twin, a short job's copies). */
  private dispatch (now: number, index: number, l: LeaseState, sendBundle?: number): void {
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
    // a copy sent ahead of the lease's slots waits for one at the provider: its timeout counts the
    // copies ahead of it (each ends by the task's timeout), so an honest provider is not timed out for the wait;
    // a copy within slots x bundle runs in a bundle, whose results go out together when it ends: up to
    // TASK_BUNDLE_CUT_MS (no task starts later) and one task's timeout after it started (review18 F2)
    const bundle = this.bundleOf(l)
    const held = inSlots({ slots: l.slots, bundle })
    const waves = l.running >= held ? Math.ceil((l.running + 1 - held) / l.slots) : 0
    const unit = this.policy.taskTimeoutMs + (bundle !== undefined ? TASK_BUNDLE_CUT_MS : 0)
    const c: CopyRecord = { index, attempt, provider: l.provider, leaseId: l.leaseId, reason, startedAt: now, outcome: 'running', ...(waves > 0 || bundle !== undefined ? { timeoutMs: unit * (1 + waves) } : {}) }
    // a copy outside bundles (a twin, a short job's copies) goes alone, in a slot of its own; a job's
    // tail leaves in bundles of its share (tailShare)
    const sendIn = bundle !== undefined && sendBundle !== undefined && sendBundle >= 2 ? Math.min(bundle, Math.floor(sendBundle)) : undefined
    if (sendIn !== undefined) {
      // the copies of one step on this lease leave together (their time to an answer is their bundle's)
      if (l.batch === undefined || l.batch.at !== now || l.batch.bundle !== sendIn) l.batch = { at: now, n: 0, bundle: sendIn }
      l.batch.n++
      c.batch = l.batch
    }
    t.copies.push(c)
    t.outstanding++
    l.running++
    this.ranOn.add(l.leaseId)
    this.counts.copies++
    if (reason === 'retry') this.counts.retries++
    if (reason === 'speculative') this.counts.speculative++
    const key = index * KEY + attempt
    this.running.set(key, c)
    this.deadlines.push(now + (c.timeoutMs ?? this.policy.taskTimeoutMs), key)
    this.commands.push({ type: 'run', index, attempt, leaseId: l.leaseId, provider: l.provider, reason, ...(sendIn !== undefined ? { bundle: sendIn } : {}) })
  }

  private maybeSpeculate (now: number): void {
    this.clock = Math.max(this.clock, now)
    // against the predicted time on a faster free slot, where leases carry predictions (speculation.ts)
    for (const { index, lease } of this.twinsDue(now)) {
      this.tasks[index].speculated = true
      this.enqueue(index, 'speculative', true)
      this.queue.popFront()
      this.dispatch(now, index, lease)
    }
    const p = this.policy
    if (p.stragglerFactor <= 0 || this.queue.length > 0 || this.durationN < p.stragglerMinSamples || now < this.nextStragglerCheck) return
    const mean = this.durationSum / this.durationN
    this.nextStragglerCheck = now + Math.max(1, mean / 2)
    let free = 0
    for (const l of this.ordered) if (l.suspendedAt === undefined) free += Math.max(0, this.held(l) - l.running)
    if (free === 0) return
    for (const c of this.running.values()) {
      if (free === 0) break
      const t = this.tasks[c.index]
      // mean is per copy; a bundled copy answers when its bundle ends (copyShare)
      if (t.speculated || (now - c.startedAt) / copyShare(c) < p.stragglerFactor * mean) continue
      t.speculated = true
      this.enqueue(c.index, 'speculative', true)
      free--
    }
  }
}
