// The runner's side of payment: the lease terms (with the payer's holder authorisation), what a
// receipt may bill at most (its offer's price for the time measured), paying each billed copy and
// sending the provider its voucher, catching up after a restart, and the final vouchers.
import { dbc } from '../wire/gen/wire.js'
import { voucherToWire } from '../core/settlement/voucher-wire.js'
import { formatCoins } from '../core/settlement/stake.js'
import { boundReceipt } from '../core/settlement/bounds.js'
import { verifyReceipt } from '../core/settlement/receipt.js'
import { TOKEN_DECIMALS } from '../core/compute/pricing.js'
import { bytesEqual } from '../core/identity/index.js'
import { nodeSuite } from '../crypto/suite.js'
import type { SignedVoucher } from '../core/settlement/voucher.js'
import type { Manifest } from '../core/scheduler/index.js'
import type { JobRunnerInit, JobSummary, RunnerPayment } from './runner-types.js'

const enc = new TextEncoder()

export class RunnerPayments {
  /** When each copy was sent, and when its result came back with its receipt (what the payer bounds). */
  private readonly sentAt = new Map<number, number>()
  private readonly returned = new Map<number, { endedAt: number, receipt?: Uint8Array }>()
  /** The prices of each leased provider's signed offer (what its receipts are bounded by). */
  readonly offerPrices = new Map<string, { priceGpuHour: number, priceCpuHour: number }>()
  private holderAuth: Uint8Array | undefined

  constructor (private readonly init: JobRunnerInit, private readonly m: Manifest, private readonly jobId: string, private readonly now: () => number) {}

  /**
   * What a finished copy's receipt bills, in tokens (undefined without one). With a budget.total
   * the budget rests on it: the signature, amount and ids are checked (~100 us; settlement checks
   * again), and a receipt that does not check, names another provider, job or task counts at
   * `predicted`. Without one it is informational: the claimed amount, unchecked.
   */
  billOf (key: number, provider: string, receipt: dbc.receipt.v1.ISignedReceipt | null | undefined, ids: { jobId: Uint8Array, taskId: Uint8Array, provider?: Uint8Array }, predicted: number): number | undefined {
    if (receipt?.receipt == null || receipt.signature == null) return undefined
    if (this.m.budget.total === undefined) {
      try { return Number(dbc.receipt.v1.UsageReceipt.decode(receipt.receipt).amount) / 10 ** TOKEN_DECIMALS } catch { return 0 }
    }
    const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: receipt.receipt, signature: receipt.signature }), ids.provider, TOKEN_DECIMALS, nodeSuite.verify)
    return v.ok && bytesEqual(v.receipt.jobId, ids.jobId) && bytesEqual(v.receipt.taskId, ids.taskId) ? Number(this.payableOf(key, provider, v.receipt)) / 10 ** TOKEN_DECIMALS : predicted
  }

  /** Read at each use: payment may be set after the runner is made (setPayment). */
  get payment (): RunnerPayment | undefined { return this.init.payment }

  sent (key: number, at: number): void { this.sentAt.set(key, at) }
  returnedCopy (key: number, endedAt: number, receipt?: Uint8Array): void { if (this.payment !== undefined) this.returned.set(key, { endedAt, receipt }) }

  /** The payment terms leases carry: the job's, with the payer's holder authorisation (signed once). */
  async leaseTerms (): Promise<dbc.task.v1.IPaymentTerms | undefined> {
    const p = this.payment
    if (p === undefined) return undefined
    if (this.holderAuth === undefined && p.leaseAuth !== undefined) this.holderAuth = await p.leaseAuth(this.init.holder.peerId)
    return this.holderAuth !== undefined ? { ...p.terms, holderAuth: this.holderAuth } : p.terms
  }

  /**
   * What a paid job will pay for this receipt at most (its offer's price for the time measured:
   * core/settlement/bounds.ts), so an overcharging receipt does not eat the budget; an unpaid
   * job (no payment terms) counts the receipt's amount.
   */
  payableOf (key: number, provider: string, r: dbc.receipt.v1.UsageReceipt): bigint {
    const amount = BigInt(r.amount)
    const offer = this.offerPrices.get(provider)
    const sent = this.sentAt.get(key)
    if (this.payment === undefined || offer === undefined || sent === undefined) return amount
    return boundReceipt({
      receiptAmount: amount, usage: { gpuSeconds: r.gpuSeconds, cpuMs: r.cpuMs }, offer, gpus: this.m.resources.gpu?.count ?? 0, cores: this.m.resources.cores,
      measuredMs: this.now() - sent, timeoutMs: this.m.task.timeoutMs, maxPricePerHour: this.m.budget.maxPricePerHour
    }).payable
  }

  /** Pays one billed copy: bounded by the payer, then the provider's new voucher goes to it. */
  async payCopy (index: number, attempt: number, provider: string, key: number): Promise<void> {
    const pay = this.payment
    if (pay === undefined) return
    let got = this.returned.get(key)
    let sent = this.sentAt.get(key)
    this.returned.delete(key); this.sentAt.delete(key)
    if (got === undefined || sent === undefined) {
      const row = this.init.store?.copies(this.jobId, index).find(c => c.attempt === attempt)
      if (row === undefined) return
      got = { endedAt: row.endedAt ?? row.startedAt, receipt: row.receipt }
      sent = row.startedAt
    }
    try {
      const out = await pay.payer.pay({ provider, key: `${index}:${attempt}`, receipt: got.receipt, taskId: enc.encode(`${this.jobId}:${index}:${attempt}`), measuredMs: got.endedAt - sent })
      if (out.voucher !== undefined && out.recorded) await this.sendVoucher(provider, out.voucher)
    } catch (err) {
      pay.onError?.(err as Error, provider)
    }
  }

  private async sendVoucher (provider: string, v: SignedVoucher): Promise<void> {
    const send = this.init.transport.sendVoucher?.bind(this.init.transport)
    if (send === undefined) return
    try {
      await send(provider, voucherToWire(v), { signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      // the next voucher (cumulative) or the final one carries this total too
      this.payment?.onError?.(err as Error, provider)
    }
  }

  /** After a restart: billed copies whose payment was not recorded before the stop. */
  async catchUp (keyOf: (index: number, attempt: number) => number): Promise<void> {
    const store = this.init.store
    if (store === undefined) return
    for (const r of store.billedReceipts(this.jobId)) await this.payCopy(r.index, r.attempt, r.provider, keyOf(r.index, r.attempt))
  }

  /** The job ended: payments in flight finish, every provider gets its final voucher. */
  async final (summary: JobSummary): Promise<JobSummary> {
    const pay = this.payment
    if (pay === undefined) return summary
    await pay.payer.idle()
    const finals = await pay.payer.flush()
    await Promise.all(finals.flatMap(f => f.providers.map(async p => { await this.sendVoucher(p, f.voucher) })))
    const view = pay.payer.view()
    return { ...summary, payment: { paid: formatCoins(BigInt(view.committed)), refused: formatCoins(BigInt(view.refused)), unit: 'DBC' } }
  }
}
