// When a job looks for leases, how often it asks again, and when it gives its unplaced tasks up
// (sans-IO). A round is one ask: offers, placement, leases opened. Providers that refuse because
// they are busy (a transient refusal) will free a slot: the job waits, asking less and less
// often, up to `waitMs` (the manifest's `task.waitS`). When no
// provider could ever take the tasks (none answered, or all refused for a permanent reason) it
// gives up after `giveUpMs`, as before.
// Two modes: `starved` (nothing runs: the rules above) and `more` (copies run and others queue
// behind them: ask again with backoff, up to `moreMaxRetryMs`, and never give a task up, since
// the leases held will run them). A provider that offered, won placement and then refused its
// lease as BUSY is penalised for the rest of the job (placement uses it only when nothing else
// fits), and the round is asked again at once when other offers were left unused.
// A provider whose lease or copy was just lost to a route failure (relay killed, stream reset)
// is "not now" as well, not absent: until it answers again, is avoided, or `waitMs` passes since
// the loss, the job waits for it as for a busy one (it may be re-reserving on another relay).
// A job that holds leases but too few distinct providers for its verification.redundancy copies
// (one of two providers stopped) waits up to `waitMs` as well: a provider may come back or appear.
import type { UnplacedReason } from './placement.js'
import { describeUnplaced } from './explain.js'

/** Keep looking this long when no provider can ever take the tasks. */
export const SEARCH_GIVE_UP_MS = 10_000
/** First retry after a round that opened no lease; doubled while waiting, up to SEARCH_MAX_RETRY_MS. */
export const SEARCH_RETRY_MS = 250
export const SEARCH_MAX_RETRY_MS = 5_000
/** The longest pause between rounds that nobody refused as busy, before the give-up (SEARCH_GIVE_UP_MS). */
export const SEARCH_STEADY_MAX_RETRY_MS = 2_000
/** Most time between two rounds of a `more` search (each one may query the capability index). */
export const SEARCH_MORE_MAX_RETRY_MS = 30_000
/** How long tasks wait for busy providers by default (manifest `task.waitS`). */
export const DEFAULT_WAIT_MS = 600_000

/** The least gap between two rounds asked at once because a placed provider turned out busy. */
const FAST_RETRY_GAP_MS = 250

/** An offer whose owner's stake could not be read from the chain in time (src/jobs/stake-reads.ts): the job waits for the chain. */
export const STAKE_UNKNOWN = 'STAKE_UNKNOWN'

/** Refusal codes that say "not now" rather than "never": the job waits for them. */
export const TRANSIENT_REFUSALS: ReadonlySet<string> = new Set(['BUSY', 'REQUEST_EXPIRED', 'LEASE_OFFER_EXPIRED', 'LEASE_LOST', STAKE_UNKNOWN])

/**
 * The code of a refusal as providers send it (`CODE: text`, the convention of typed errors on
 * the wire); `REFUSED` for a refusal that names none (an older provider).
 */
export function refusalCode (refusal: string): string {
  const m = /^([A-Z][A-Z0-9_]{1,40}):/.exec(refusal)
  return m === null ? 'REFUSED' : m[1]
}

/** Whether a provider-sent code has the shape of a typed error code (what refusalCode accepts). */
export function isRefusalCode (code: string): boolean {
  return /^[A-Z][A-Z0-9_]{1,40}$/.test(code)
}

/** Placement reasons no later round can change (budget, price, deadline, distance): those tasks fail at once. */
export function rulesOutForGood (reason: UnplacedReason): boolean {
  return reason === 'over-budget' || reason === 'over-price' || reason === 'deadline' || reason === 'too-far'
}

export interface LeaseSearchPolicy {
  giveUpMs?: number
  retryMs?: number
  maxRetryMs?: number
  /** How long tasks wait for busy providers (0: not at all). */
  waitMs?: number
  /** Backoff cap of a `more` search (default SEARCH_MORE_MAX_RETRY_MS). */
  moreMaxRetryMs?: number
}

/** `starved`: queued copies and nothing running; `more`: copies queued behind busy leases. */
export type SearchMode = 'starved' | 'more'

/** What one round of asking found. */
export interface SearchRound {
  /** Offers placement could use (not refused). */
  offers: number
  /** Refusal codes: of offers, and of leases the providers did not accept. */
  refusals: readonly string[]
  /** Leases opened in this round. */
  leased: number
  /** Leases the job holds after it (their slots free as copies end). */
  liveLeases: number
  /** Why placement left tasks out, if it did. */
  unplaced?: UnplacedReason
  /** The round failed (the transport threw). */
  error?: string
  /** The last refusal's text, for the give-up reason. */
  lastRefusal?: string
  /** Providers whose offer placement used but who refused the lease as BUSY. */
  busyLeases?: readonly string[]
  /** Usable offers placement did not lease (they could take the refused provider's share). */
  unusedOffers?: number
  /** Providers that answered this round (an offer or a refusal): reachable, judged by their answer. */
  answered?: readonly string[]
  /** The least predicted time of one copy on a usable offer of this round (placement.ts fastestRunMs): for speculation. */
  fastestRunMs?: number
}

/** Why a job holding leases waits for another provider (verification.redundancy copies need distinct ones). */
const SHORT = 'fewer distinct providers than verification.redundancy copies (another must come back or appear)'

/** Most providers remembered as lost at once (a job's leases are capped far below this). */
const MAX_LOST = 1024

export type SearchDecision =
  | { kind: 'leased' }
  | { kind: 'retry', at: number }
  /** `elsewhere`: set when the job holds leases that may run none of the tasks (the machine says why, per task); what the other providers said. */
  | { kind: 'give-up', reason: string, elsewhere?: string }

export class LeaseSearch {
  private readonly giveUpMs: number
  private readonly retryMs: number
  private readonly maxRetryMs: number
  readonly waitMs: number
  private startedAt: number | undefined
  private waitingSince: number | undefined
  private lastTransientAt = -Infinity
  private lastFastAt: number | undefined
  private delay: number
  private readonly moreMaxRetryMs: number
  private busy = 0
  /** Offers of the last round refused STAKE_UNKNOWN (their owner's stake could not be read): waited for like busy ones. */
  private unreadStake = 0
  private mode: SearchMode = 'starved'
  private readonly counts = new Map<string, number>()
  private readonly penalty = new Set<string>()
  /** Provider -> when its lease or a copy was last lost to a route failure (not heard from since). */
  private readonly lost = new Map<string, number>()
  private away = 0
  /** The last round placed nothing for want of distinct providers while the job holds leases. */
  private short = false
  /** Why a starved search found nobody who could ever take the tasks, while it keeps looking until the give-up (job status). */
  private permanent: { reason: string, giveUpAt: number } | undefined

  constructor (policy: LeaseSearchPolicy = {}) {
    this.giveUpMs = policy.giveUpMs ?? SEARCH_GIVE_UP_MS
    this.retryMs = policy.retryMs ?? SEARCH_RETRY_MS
    this.maxRetryMs = Math.max(this.retryMs, policy.maxRetryMs ?? SEARCH_MAX_RETRY_MS)
    this.waitMs = policy.waitMs ?? DEFAULT_WAIT_MS
    this.moreMaxRetryMs = Math.max(this.retryMs, policy.moreMaxRetryMs ?? SEARCH_MORE_MAX_RETRY_MS)
    this.delay = this.retryMs
  }

  /** A search is under way (started, not yet ended by a lease or a give-up). */
  get active (): boolean { return this.startedAt !== undefined }

  /** The current search's mode. */
  get searchMode (): SearchMode { return this.mode }

  /** Providers that refused a lease as BUSY in this job: placement puts them last. */
  get penalised (): ReadonlySet<string> { return this.penalty }

  /**
   * Begins a search, or changes a running one's mode: a `more` search whose copies all ended
   * becomes `starved` (its give-up clock starts now); a `starved` one whose copies started
   * running becomes `more` (it no longer waits to fail anything).
   */
  begin (now: number, mode: SearchMode = 'starved'): void {
    if (this.startedAt !== undefined && mode === this.mode) return
    const fresh = this.startedAt === undefined
    this.mode = mode
    if (fresh || mode === 'starved') { this.startedAt = now; this.delay = this.retryMs }
    this.waitingSince = undefined
    this.busy = 0
    this.short = false
    this.away = 0
    this.permanent = undefined
  }

  /** Ends the search (the job no longer wants leases). */
  stop (): void { this.end() }

  /** A lease or copy with `provider` was lost to a route failure: it counts as "not now" until it answers again. */
  routeLost (now: number, provider: string): void {
    if (this.lost.has(provider) || this.lost.size < MAX_LOST) this.lost.set(provider, now)
  }

  /** The provider is no longer waited for (avoided by the job). */
  forget (provider: string): void { this.lost.delete(provider) }

  /** Providers lost to a route failure that the job still waits for. */
  get lostProviders (): ReadonlySet<string> { return new Set(this.lost.keys()) }

  /** Feeds one round's outcome; says whether to stop, ask again (when) or give the unplaced tasks up. */
  handleRound (now: number, r: SearchRound): SearchDecision {
    if (this.startedAt === undefined) this.begin(now, this.mode)
    let transient = 0
    let unreadStake = 0
    for (const code of r.refusals) {
      this.counts.set(code, (this.counts.get(code) ?? 0) + 1)
      if (TRANSIENT_REFUSALS.has(code)) transient++
      if (code === STAKE_UNKNOWN) unreadStake++
    }
    // a lost provider that answered is judged by its answer; one silent for waitMs is given up on
    for (const p of r.answered ?? []) this.lost.delete(p)
    for (const [p, at] of this.lost) if (now - at > this.waitMs) this.lost.delete(p)
    this.busy = transient - unreadStake
    this.unreadStake = unreadStake
    this.away = this.lost.size
    transient += this.away
    // too few distinct providers beside the job's leased ones (one of them stopped): one may come back
    this.short = r.error === undefined && r.liveLeases > 0 && r.unplaced === 'not-enough-providers'
    if (this.short) transient++
    let newlyBusy = 0
    for (const p of r.busyLeases ?? []) if (!this.penalty.has(p)) { this.penalty.add(p); newlyBusy++ }
    if (r.leased > 0) { this.end(); return { kind: 'leased' } }
    // the provider placement chose is busy after all: its share goes to the other offers at once
    // (at most one such round per FAST_RETRY_GAP_MS: fresh identities that each offer and then
    // refuse BUSY cannot keep the search looping)
    if (newlyBusy > 0 && (r.unusedOffers ?? 0) > 0) {
      const at = this.lastFastAt === undefined ? now : Math.max(now, this.lastFastAt + FAST_RETRY_GAP_MS)
      this.lastFastAt = at
      return { kind: 'retry', at }
    }
    if (this.mode === 'more') {
      const at = now + this.delay
      this.delay = Math.min(this.moreMaxRetryMs, this.delay * 2)
      return { kind: 'retry', at }
    }
    // busy providers free their slots later: the tasks wait for one (the job's own idle leases do
    // not count: the machine asks for more only when none of them may run the queued copies)
    if (transient > 0) {
      this.lastTransientAt = now
      this.waitingSince ??= now
      if (now - this.waitingSince >= this.waitMs) {
        const waited = Math.round(this.waitMs / 1000)
        const why = `${this.busy} busy${this.stakeText()}${this.away > 0 ? `, ${this.away} unreachable since ${this.away === 1 ? 'its lease was' : 'their leases were'} lost` : ''}${this.short ? `, ${SHORT}` : ''}`
        const onlyStake = this.busy === 0 && this.away === 0 && !this.short && this.unreadStake > 0
        this.end()
        if (onlyStake) return { kind: 'give-up', reason: `not placed: the chain did not answer for the providers' stake within task.waitS (${waited} s; ${why.replace(/^0 busy, /, '')}); check the node's chain RPC (dbc chain status)` }
        return { kind: 'give-up', reason: `not placed: no provider had a free slot within task.waitS (${waited} s; ${why})` }
      }
      // the last round lands when task.waitS ends, so the tasks fail then and say why
      const at = Math.min(now + this.delay, this.waitingSince + this.waitMs)
      this.delay = Math.min(this.maxRetryMs, this.delay * 2)
      return { kind: 'retry', at }
    }
    const start = this.startedAt ?? now
    // what the user sees while it keeps looking (before: nothing for 10 s, then the failure)
    if (r.error === undefined && !(r.liveLeases > 0)) this.permanent = { reason: this.reasonOf(r), giveUpAt: Math.max(start, this.lastTransientAt) + this.giveUpMs }
    // a provider that was busy a moment ago may answer again soon: keep looking as long as that
    if (now - this.lastTransientAt < this.giveUpMs) return { kind: 'retry', at: now + this.retryMs }
    // nobody busy: what the providers said does not change from one moment to the next (an executor
    // they do not run, too few GPUs): ask again less and less often (up to SEARCH_STEADY_MAX_RETRY_MS
    // apart, so a provider that joins meanwhile is found) until the give-up, not every 250 ms
    if (now - start < this.giveUpMs) {
      // (the last round lands when the give-up time comes, so the tasks fail then and say why)
      const at = Math.min(now + this.delay, start + this.giveUpMs)
      this.delay = Math.min(SEARCH_STEADY_MAX_RETRY_MS, this.delay * 2)
      return { kind: 'retry', at }
    }
    this.end()
    if (r.error === undefined && r.liveLeases > 0) {
      const elsewhere = this.elsewhere(r)
      return { kind: 'give-up', reason: `no provider may run another copy: each leased provider holds one already or failed it; ${elsewhere}`, elsewhere }
    }
    return { kind: 'give-up', reason: this.reasonOf(r) }
  }

  /** Why the tasks do not run yet, while waiting (undefined when not). */
  waiting (now: number): string | undefined {
    if (this.waitingSince === undefined) {
      if (this.permanent === undefined || this.startedAt === undefined || this.mode !== 'starved') return undefined
      const left = Math.max(0, Math.ceil((this.permanent.giveUpAt - now) / 1000))
      return `searching: ${this.permanent.reason}; the tasks fail in ${left} s unless a provider that can take them answers`
    }
    const left = Math.max(0, Math.ceil((this.waitingSince + this.waitMs - now) / 1000))
    const plural = (n: number): string => `${n} provider${n === 1 ? '' : 's'}`
    if (this.busy === 0 && this.away === 0 && this.short) return `waiting: ${SHORT}; tasks fail if none appears within ${left} s`
    if (this.busy === 0 && this.away > 0) return `waiting: ${plural(this.away)} unreachable since ${this.away === 1 ? 'its lease was' : 'their leases were'} lost (a route failure); tasks fail if none returns within ${left} s`
    if (this.busy === 0 && this.away === 0 && !this.short && this.unreadStake > 0) return `waiting: ${this.stakeText().slice(2)}; tasks fail if the chain does not answer within ${left} s`
    return `waiting: ${plural(this.busy)} busy${this.stakeText()}${this.away > 0 ? `, ${this.away} unreachable since ${this.away === 1 ? 'its lease was' : 'their leases were'} lost` : ''}${this.short ? `, ${SHORT}` : ''}; tasks fail if none frees within ${left} s`
  }

  /** Refusals seen so far, by code (what `job status` shows). */
  refusals (): Record<string, number> { return Object.fromEntries(this.counts) }

  /** ", N offers whose owner's stake could not be read from the chain", or nothing. */
  private stakeText (): string {
    return this.unreadStake === 0 ? '' : `, ${this.unreadStake} offer${this.unreadStake === 1 ? '' : 's'} whose owner's stake could not be read from the chain (STAKE_UNKNOWN)`
  }

  private end (): void {
    this.startedAt = undefined
    this.permanent = undefined
    this.mode = 'starved'
    this.waitingSince = undefined
    this.delay = this.retryMs
    this.busy = 0
    this.unreadStake = 0
    this.away = 0
    this.short = false
  }

  /** What the providers other than the job's leased ones said in the last round. */
  private elsewhere (r: SearchRound): string {
    if (r.unplaced !== undefined && r.offers + r.refusals.length > 0) return `other providers: not placed: ${describeUnplaced(r.unplaced)}${r.lastRefusal !== undefined ? ` (${r.lastRefusal})` : ''}`
    if (r.lastRefusal !== undefined) return `other providers refused: ${r.lastRefusal}`
    return 'no other provider offered'
  }

  private reasonOf (r: SearchRound): string {
    if (r.error !== undefined) return `looking for providers failed: ${r.error}`
    if (r.unplaced !== undefined && r.offers + r.refusals.length > 0) return `not placed: ${describeUnplaced(r.unplaced)}${r.lastRefusal !== undefined ? ` (${r.lastRefusal})` : ''}`
    if (r.unplaced !== undefined) return `not placed: ${describeUnplaced(r.unplaced)}`
    return `no provider left to run it (all lost, refused or avoided)${r.lastRefusal !== undefined ? `; last lease refused: ${r.lastRefusal}` : ''}`
  }
}
