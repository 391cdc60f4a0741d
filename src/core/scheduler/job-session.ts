// One job's session (sans-IO): the job machine, the lease search, the budget ledger and the code
// cache, with the decisions between them that the runner (src/jobs/runner.ts) made before: when
// to run a lease round and in which mode, what a round's outcome means for the tasks, when
// spending stops new copies, and what a returned copy counts as. Inputs carry `now`; outputs are
// the machine's commands and events (polled) and `nextRoundAt`. The runner is a pump around it:
// it performs the commands, runs a round when asked, and reports what came back.
import { JobMachine, type ResultVerdict, type JobEvent } from './job-machine.js'
import { LeaseSearch, type SearchMode, type SearchRound } from './lease-search.js'
import { BudgetLedger } from './budget-ledger.js'
import { CodeCache } from './code-cache.js'
import { leasesLeft, starvedExcess, type LeaseCap } from './lease-cap.js'

/** A provider's text is stored and shown: 1 KiB is plenty for a reason (its stderr has its own caps). */
export const COPY_ERROR_MAX_CHARS = 1024

/** What came back for one copy, as the runtime saw it (the hash is computed by the runtime). */
export interface CopyAnswer {
  ok: boolean
  /** sha256 (hex) of the output received. */
  hash?: string
  /** The output hash the provider signed (hex), if it sent one. */
  claimedHash?: string
  error?: string
  /** A failed copy's result code (shape-checked), e.g. RESULT_TOO_LARGE. */
  code?: string
  /** No answer: the route to the provider failed (the copy is lost, not failed). */
  unreachable?: boolean
  /** What the copy's receipt bills (undefined: no receipt). */
  billed?: number
}

export interface CopyVerdict { verdict: ResultVerdict, ok: boolean, hash?: string, error?: string }

export class JobSession {
  readonly code = new CodeCache()
  /** When the search wants its next round (undefined: at once, once wanted). */
  private roundAt: number | undefined
  private inRound = false

  /** `maxLeases`: most leases the job holds at once, a number or a slot-aware cap (lease-cap.ts); a `more` search stops there. */
  constructor (readonly machine: JobMachine, readonly search: LeaseSearch, readonly budget: BudgetLedger, maxLeases: number | LeaseCap = Infinity) {
    machine.leaseCap = typeof maxLeases === 'number' ? { leases: maxLeases, slots: 0 } : maxLeases
  }

  /** How many more leases a round may open (at most: each counts its slots as it opens, lease-cap.ts leasesAllowed). */
  leasesLeft (): number {
    const h = this.machine.leasesHeld()
    return leasesLeft(this.machine.leaseCap, h.leases, h.slots)
  }

  /**
   * When to run the next lease round: undefined while none is wanted (no queued copy, the job
   * ended, or a round is out). A change of mode takes effect here: copies that all ended make a
   * `more` search `starved` (asked at once, its give-up clock starting now).
   */
  nextRoundAt (now: number): number | undefined {
    if (this.inRound) return undefined
    let want = this.machine.leaseWant()
    if (want === 'more' && this.leasesLeft() === 0) want = undefined
    if (want === undefined) {
      if (this.search.active) this.search.stop()
      this.roundAt = undefined
      return undefined
    }
    if (!this.search.active || this.search.searchMode !== want) {
      if (!this.search.active || want === 'starved') this.roundAt = undefined
      this.search.begin(now, want)
    }
    return this.roundAt ?? now
  }

  /**
   * At the lease cap with nothing queued: an idle lease too slow for the job's stragglers makes
   * room for a faster slot (speculation.ts). Call before polling the machine's commands, so the
   * release goes out before the round it makes room for (nextRoundAt stays a pure query).
   */
  makeRoom (now: number): void {
    if (this.inRound) return
    const want = this.machine.leaseWant()
    if (want === 'more' && this.leasesLeft() === 0) this.machine.releaseIdleLeases(now, 8)
    // a starved round leases up to cap.leases anew: leases that can run nothing go first when the
    // job would otherwise pass its ceiling (lease-cap.ts starvedRoom)
    if (want === 'starved') this.machine.releaseStarvedLeases(starvedExcess(this.machine.leaseCap, this.machine.leasesHeld()))
  }

  /** A round starts; returns its mode (a `more` round never rules tasks out). */
  startRound (): SearchMode {
    this.inRound = true
    return this.search.searchMode
  }

  /** A round's outcome: ask again later, stop (leased), or give the queued tasks up. */
  handleRound (now: number, round: SearchRound): void {
    this.inRound = false
    // a provider the job avoids now is no longer waited for
    for (const p of this.search.lostProviders) if (this.machine.avoidedProviders.has(p)) this.search.forget(p)
    // what a faster slot would give the job's stragglers (speculation.ts)
    this.machine.noteFastest(now, round.fastestRunMs)
    const d = this.search.handleRound(now, round)
    this.roundAt = d.kind === 'retry' ? d.at : undefined
    // leases held that may run none of the tasks: the machine tells each task's own reason
    if (d.kind === 'give-up') this.machine.handleGiveUp(now, d.elsewhere === undefined ? d.reason : i => `${this.machine.stuckReason(i)}; ${d.elsewhere!}`)
  }

  /**
   * The machine's events, polled: a lease lost (no heartbeat, its stream gone) makes its provider
   * "not now" for the search, which then waits for it instead of giving its tasks up.
   */
  pollEvents (now: number): JobEvent[] {
    const events = this.machine.pollEvents()
    for (const e of events) if (e.type === 'lease-lost') this.search.routeLost(now, e.provider)
    return events
  }

  /** A round that stopped the job's search for good (no escrow): the machine was told already. */
  roundStopped (): void { this.inRound = false; this.roundAt = undefined }

  /** A copy goes out at its predicted price; `exhausted`: why the escrow allows nothing more (if so). True: nothing new starts from now. */
  copySent (now: number, key: number, predicted: number, exhausted?: () => string | undefined): boolean {
    return this.stopIf(now, this.budget.copySent(key, predicted) ?? exhausted?.())
  }

  /** A copy's answer: billed, checked against the hash its provider signed, voted on. */
  handleAnswer (now: number, c: { index: number, attempt: number, provider?: string | number }, key: number, a: CopyAnswer, exhausted?: () => string | undefined): CopyVerdict {
    this.stopIf(now, this.budget.copyReturned(key, a.billed) ?? exhausted?.())
    // no answer: its provider is "not now" for the lease search until it answers again
    if (a.unreachable === true && !a.ok && c.provider !== undefined) this.search.routeLost(now, String(c.provider))
    let ok = a.ok
    let error = a.error?.slice(0, COPY_ERROR_MAX_CHARS)
    // the hash the provider signed must be the hash of what it sent
    if (ok && a.claimedHash !== undefined && a.claimedHash !== '' && a.claimedHash !== a.hash) { ok = false; error = 'output does not match its hash' }
    const hash = a.ok ? a.hash : undefined
    const verdict = this.machine.handleResult(now, { index: c.index, attempt: c.attempt, ok, hash, error, ...(a.ok || a.code === undefined ? {} : { code: a.code }), unreachable: a.unreachable === true && !a.ok })
    return { verdict, ok, hash, error }
  }

  /** Re-runs and tie-breaks cost too: once the budget (or the escrow) is used up, nothing new starts. */
  private stopIf (now: number, why: string | undefined): boolean {
    if (why === undefined || this.machine.isStopped) return false
    this.machine.handleGiveUp(now, why, true)
    return true
  }
}
