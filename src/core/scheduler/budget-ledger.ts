// The budget ledger of one job (sans-IO): what the copies sent are predicted to cost, what their
// receipts bill once they return, and when `budget.total` is spent. The budget is held against
// verified bills for finished copies plus the predicted price of copies still out; a copy that
// came back without a receipt counts nothing. Checking a receipt is the runtime's (crypto).

export class BudgetLedger {
  /** Predicted price of every copy sent (re-runs and extra copies included). */
  spent = 0
  /** What the receipts of finished copies bill. */
  metered = 0
  /** What the budget is held against: bills of finished copies + predictions of copies out. */
  committed = 0
  /** Of `metered`, what a resumed job billed before its restart (resumeWith). */
  resumed = 0
  private readonly predicted = new Map<number, number>()
  private exhausted = false

  /** `total`: the manifest's budget.total (undefined: no cap). */
  constructor (private readonly total?: number) {}

  /** A copy goes out at its predicted price; returns why nothing new may start when that spends the budget. */
  copySent (key: number, predicted: number): string | undefined {
    this.spent += predicted
    this.committed += predicted
    this.predicted.set(key, predicted)
    return this.check()
  }

  /** A copy returned; `billed` is its receipt's amount (undefined: no receipt, nothing billed). */
  copyReturned (key: number, billed: number | undefined): string | undefined {
    const predicted = this.predicted.get(key) ?? 0
    this.predicted.delete(key)
    const amount = billed !== undefined && Number.isFinite(billed) ? billed : 0
    if (billed !== undefined) this.metered += amount
    this.committed += amount - predicted
    return this.check()
  }

  /**
   * A resumed job's bills from before its restart, held against the budget as metered: else the
   * ledger starts from 0 and a job resumed after a crash may spend its budget.total again.
   */
  resumeWith (billed: number): void {
    if (!Number.isFinite(billed) || billed <= 0) return
    this.metered += billed
    this.committed += billed
    this.resumed += billed
  }

  /** The predicted price of a copy still out. */
  predictedOf (key: number): number { return this.predicted.get(key) ?? 0 }

  /** Once: the reason new copies stop when budget.total is committed. */
  private check (): string | undefined {
    if (this.exhausted || this.total === undefined || this.committed < this.total) return undefined
    this.exhausted = true
    return `budget.total (${this.total}) is spent (${this.committed.toFixed(6)} billed or still running), re-runs included`
  }
}
