// Provider reputation as this node has seen it: agreed (verified) results raise it; wrong
// answers cut it hard; failures and timeouts lower it a little. Trusted providers (a long
// clean record) get fewer redundant copies when the job's verification is adaptive.
// `streak` counts results in a row that another provider's copy confirmed (the default spot
// checks: a provider is "established" after N of them); a provider caught lying loses it all.

export type ReputationOutcome = 'agreed' | 'wrong' | 'failed' | 'timeout'

export interface ProviderRecord {
  agreed: number
  wrong: number
  failed: number
  timeout: number
  /** Consecutive results confirmed by another provider's copy (reset by a wrong one). */
  streak?: number
  /** Times this provider was caught returning a wrong result. */
  caught?: number
}

/**
 * Providers whose record is kept (a daemon that runs for months meets more, and a peer that takes
 * leases under many ids would grow the book without end): past it the least recently seen record
 * with nothing against it goes first, so fresh ids cannot push out the records that caught a liar.
 */
export const MAX_REPUTATION_RECORDS = 4096

export interface ReputationInit {
  /** Agreed results before a provider counts as trusted. */
  trustAfter?: number
  /** Weight of one wrong answer against agreed ones. */
  wrongWeight?: number
}

export class ReputationBook {
  private readonly records = new Map<string, ProviderRecord>()
  private readonly trustAfter: number
  private readonly wrongWeight: number

  constructor (init: ReputationInit = {}) {
    this.trustAfter = init.trustAfter ?? 20
    this.wrongWeight = init.wrongWeight ?? 10
  }

  /** The provider's record, made if new, and moved last (the most recently seen). */
  private rec (provider: string): ProviderRecord {
    const r = this.records.get(provider) ?? { agreed: 0, wrong: 0, failed: 0, timeout: 0 }
    this.records.delete(provider)
    this.records.set(provider, r)
    if (this.records.size > MAX_REPUTATION_RECORDS) this.evict(provider)
    return r
  }

  /**
   * One record goes: the least recently seen with nothing against it, else the least recently seen;
   * never `keep`, the one just made or loaded (in a book of liars only, it went at once: no new
   * provider kept a record, so none ever became trusted; review18 L).
   */
  private evict (keep: string): void {
    let oldest: string | undefined
    for (const [id, r] of this.records) {
      if (id === keep) continue
      oldest ??= id
      if (r.wrong === 0 && (r.caught ?? 0) === 0) { this.records.delete(id); return }
    }
    if (oldest !== undefined) this.records.delete(oldest)
  }

  /** How many providers have a record. */
  get size (): number { return this.records.size }

  record (provider: string, outcome: ReputationOutcome, n = 1): void {
    const r = this.rec(provider)
    r[outcome] += n
    if (outcome === 'wrong') r.streak = 0
  }

  /** A result of `provider` that another provider's copy confirmed. */
  confirmed (provider: string): void {
    const r = this.rec(provider)
    r.streak = (r.streak ?? 0) + 1
  }

  /** Caught returning a wrong result: its record of agreed work is gone, its streak too. */
  caught (provider: string): void {
    const r = this.rec(provider)
    r.agreed = 0
    r.streak = 0
    r.caught = (r.caught ?? 0) + 1
  }

  /** Consecutive confirmed results (0 for a provider never seen or caught since). */
  streak (provider: string): number { return this.records.get(provider)?.streak ?? 0 }

  get (provider: string): ProviderRecord {
    return this.records.get(provider) ?? { agreed: 0, wrong: 0, failed: 0, timeout: 0 }
  }

  /** 0..1; 0.5 for a provider never seen (a Beta(1,1) prior). */
  score (provider: string): number {
    const r = this.records.get(provider)
    if (r === undefined) return 0.5
    const bad = r.wrong * this.wrongWeight + r.failed + r.timeout
    return (r.agreed + 1) / (r.agreed + bad + 2)
  }

  /** A long record of agreed results and no wrong answer for a long while. */
  trusted (provider: string): boolean {
    const r = this.records.get(provider)
    if (r === undefined) return false
    return r.agreed >= this.trustAfter && r.wrong * 100 <= r.agreed
  }

  toJSON (): Record<string, ProviderRecord> {
    return Object.fromEntries(this.records)
  }

  static fromJSON (data: Record<string, ProviderRecord>, init: ReputationInit = {}): ReputationBook {
    const book = new ReputationBook(init)
    for (const [k, v] of Object.entries(data)) {
      book.records.set(k, { ...v })
      if (book.records.size > MAX_REPUTATION_RECORDS) book.evict(k)
    }
    return book
  }
}
