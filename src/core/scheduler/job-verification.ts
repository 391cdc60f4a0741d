// The verification half of the job machine (sans-IO): votes by quorum, acceptance, failing a
// task, settling copies for billing, and catching a provider whose result disagrees with an
// accepted one (every result it gave withdrawn, its tasks re-run). The state it works on (the
// queue, the leases, stragglers) is job-leasing.ts; JobMachine (job-machine.ts) adds the inputs,
// dispatch to leases, timeouts and speculation.
import { JobLeasing } from './job-leasing.js'
import { keepsQuorum, established, DISAGREEMENT_QUORUM } from './spot-check.js'
import type { CopyRecord, CopyOutcome, TaskState } from './job-types.js'

export abstract class JobVerification extends JobLeasing {
  /** Peers queued in pendingCatch by their owner's catch, not caught yet (each queued once). */
  private readonly siblingsQueued = new Set<string>()

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
