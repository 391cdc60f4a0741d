// What a job paid, from the payment store alone: the payment side of `dbc job status` and
// `dbc job settle` (and the daemon's /v1/jobs/:id/payments), for a running or an ended job.
import type { PaymentStore } from './payment-store.js'

type Address = `0x${string}`

export interface PaymentView {
  /** Sum of the payable amounts (smallest units, decimal text). */
  committed: string
  /** Sum the providers billed, and what was refused. */
  billed: string
  refused: string
  providers: Array<{ payout: Address, providers: string[], intended: string, signed: string, receipts: number, forfeited?: string }>
  /** The latest refusals (up to 20): which receipt, how much, why. */
  refusals: Array<{ key: string, provider: string, billed: string, paid: string, reason: string }>
  /** The latest billed receipts (up to 500): billed, paid, the bound that applied and the measured time it used. */
  receipts: Array<{ key: string, provider: string, payout: Address, billed: string, paid: string, limit: string, measuredMs?: number }>
}

/** The payment side of `dbc job status` and `dbc job settle`, from the store alone. */
export function paymentView (store: PaymentStore, jobId: string): PaymentView {
  const rows = store.payments(jobId)
  let billed = 0n; let refused = 0n; let committed = 0n
  const refusals: PaymentView['refusals'] = []
  for (const r of rows) {
    billed += r.billed; refused += r.refused; committed += r.payable
    if (r.refused > 0n && r.reason !== undefined) refusals.push({ key: r.receiptKey, provider: r.provider, billed: r.billed.toString(), paid: r.payable.toString(), reason: r.reason })
  }
  const payees = store.payees(jobId)
  return {
    committed: committed.toString(),
    billed: billed.toString(),
    refused: refused.toString(),
    providers: store.vouchers(jobId).map(v => ({
      payout: v.payout, providers: payees.filter(p => p.payout === v.payout).map(p => p.provider), intended: v.cumulative.toString(), signed: v.signedCumulative.toString(),
      receipts: v.signedCount, ...(v.forfeited !== undefined ? { forfeited: v.forfeited } : {})
    })),
    refusals: refusals.slice(-20),
    receipts: rows.slice(-500).map(r => ({ key: r.receiptKey, provider: r.provider, payout: r.payout, billed: r.billed.toString(), paid: r.payable.toString(), limit: r.limit, ...(r.measuredMs !== undefined ? { measuredMs: r.measuredMs } : {}) }))
  }
}
