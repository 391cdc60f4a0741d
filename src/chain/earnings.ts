// What a provider earned, per job: the latest voucher the payer signed, what the chain redeemed
// to this provider, and what is still pending; and the submitter's view of a job (escrow, what it
// signed per provider, what each redeemed). The rows are built by pure functions from the
// vouchers in the store and the chain reads the bridge passes in.
import type { Address, Hex } from './config.js'
import type { StoredVoucher } from './vouchers.js'
import type { EarningsRow, EscrowView, JobPaymentView } from './types.js'

export interface ChainReads {
  redeemed: (chainJobId: Hex, provider: Address) => Promise<bigint>
  escrow: (chainJobId: Hex) => Promise<EscrowView>
}

/** One row per job this provider holds a voucher for, newest first. */
export async function earningsRows (vouchers: StoredVoucher[], provider: Address, chain: ChainReads): Promise<EarningsRow[]> {
  const rows: EarningsRow[] = []
  for (const v of vouchers) {
    const [redeemed, esc] = await Promise.all([chain.redeemed(v.voucher.escrowId, provider), chain.escrow(v.voucher.escrowId)])
    rows.push(earningsRow(v, redeemed, esc))
  }
  return rows.sort((a, b) => b.receivedAt - a.receivedAt)
}

export function earningsRow (v: StoredVoucher, redeemed: bigint, esc: EscrowView | undefined): EarningsRow {
  const pending = v.voucher.cumulative > redeemed ? v.voucher.cumulative - redeemed : 0n
  let note = pending > 0n ? v.lastError : undefined
  if (pending > 0n && esc?.refunded === true) note = 'the job was refunded before this was redeemed: lost'
  return {
    chainJobId: v.voucher.escrowId,
    payer: v.payer,
    signed: v.voucher.cumulative,
    receiptCount: v.voucher.receiptCount,
    redeemed,
    pending,
    unspent: esc?.unspent,
    refunded: esc?.refunded,
    note,
    receivedAt: v.at
  }
}

/** What the provider's ledger knows of a chain job: the job's id as its submitter names it, the tasks run. */
export type JobOfChainJob = (chainJobId: string) => { jobId?: string, tasks?: number } | undefined

/** The rows with each job's id and tasks from the provider's ledger (`dbc earnings` names the job people know, not only its escrow id). */
export function namedEarnings<T extends { jobs: EarningsRow[] }> (view: T, jobOf: JobOfChainJob | undefined): T {
  if (jobOf === undefined) return view
  return {
    ...view,
    jobs: view.jobs.map(r => {
      const j = jobOf(r.chainJobId)
      return j === undefined ? r : { ...r, ...(j.jobId !== undefined ? { jobId: j.jobId } : {}), ...(j.tasks !== undefined ? { tasks: j.tasks } : {}) }
    })
  }
}

export function earningsTotals (rows: EarningsRow[]): { signed: bigint, redeemed: bigint, pending: bigint } {
  return rows.reduce((t, r) => ({ signed: t.signed + r.signed, redeemed: t.redeemed + r.redeemed, pending: t.pending + r.pending }), { signed: 0n, redeemed: 0n, pending: 0n })
}

/** The submitter's view of a job: escrow on chain, each provider's signed total and redemption. */
export async function jobPaymentView (esc: EscrowView, issued: StoredVoucher[], account: Address, chain: Pick<ChainReads, 'redeemed'>, nowSec: number): Promise<JobPaymentView> {
  const providers = await Promise.all(issued.map(async v => {
    const redeemed = await chain.redeemed(esc.chainJobId, v.voucher.provider)
    return { provider: v.voucher.provider, signed: v.voucher.cumulative, receiptCount: v.voucher.receiptCount, redeemed, outstanding: v.voucher.cumulative > redeemed ? v.voucher.cumulative - redeemed : 0n }
  }))
  const totals = providers.reduce((t, p) => ({ signed: t.signed + p.signed, redeemed: t.redeemed + p.redeemed }), { signed: 0n, redeemed: 0n })
  const isPayer = esc.payer.toLowerCase() === account.toLowerCase()
  const refundable = isPayer && !esc.refunded && esc.refundableAt !== undefined && nowSec >= esc.refundableAt && esc.escrow > esc.paid
  return { ...esc, account, providers, totals, refundable, refundAmount: esc.refunded ? 0n : esc.escrow - esc.paid }
}

/** When the payer may refund: min(deadline, closedAt) + disputeWindow (undefined while neither is set). */
export function refundableAt (deadline: number, closedAt: number, disputeWindow: number): number | undefined {
  const ends = [deadline, closedAt].filter(t => t > 0)
  return ends.length === 0 ? undefined : Math.min(...ends) + disputeWindow
}
