// Provider reputation as this node has seen it: agreed (verified) results raise it; wrong
// answers cut it hard; failures and timeouts lower it a little. Trusted providers (a long
// clean record) get fewer redundant copies when the job's verification is adaptive.

export type ReputationOutcome = 'agreed' | 'wrong' | 'failed' | 'timeout'

export interface ProviderRecord { agreed: number, wrong: number, failed: number, timeout: number }

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

  record (provider: string, outcome: ReputationOutcome, n = 1): void {
    let r = this.records.get(provider)
    if (r === undefined) { r = { agreed: 0, wrong: 0, failed: 0, timeout: 0 }; this.records.set(provider, r) }
    r[outcome] += n
  }

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
    for (const [k, v] of Object.entries(data)) book.records.set(k, { ...v })
    return book
  }
}
