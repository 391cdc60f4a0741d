// The runner's side of payment: the lease terms (with the payer's holder authorisation), what a
// receipt may bill at most (its offer's price for the time measured), paying billed copies (a batch
// per turn) and sending the provider its cumulative voucher when due, catching up after a restart,
// and the final vouchers.
import { dbc } from '../wire/gen/wire.js'
import { voucherToWire } from '../core/settlement/voucher-wire.js'
import { formatCoins } from '../core/settlement/stake.js'
import { boundReceipt } from '../core/settlement/bounds.js'
import { verifyReceipt } from '../core/settlement/receipt.js'
import { TOKEN_DECIMALS } from '../core/compute/pricing.js'
import { bytesEqual } from '../core/identity/index.js'
import { nodeSuite } from '../crypto/suite.js'
import { nodeSha256 } from '../crypto/hash.js'
import type { SignedVoucher } from '../core/settlement/voucher.js'
import { taskPriceUnits } from '../core/settlement/credit.js'
import type { PayInput } from './payer.js'
import type { Manifest } from '../core/scheduler/index.js'
import type { JobRunnerInit, JobSummary, RunnerPayment } from './runner-types.js'

const enc = new TextEncoder()
/** The longest a payout's new total waits for its voucher when it is well inside the provider's credit. */
export const VOUCHER_EVERY_MS = 1000
/**
 * Settled copies wait at most this long to be recorded: while the runner's pump runs they are
 * recorded in its next step's transaction (no commit of their own), and this is when a step is
 * asked for if none came; without the pump (catch-up, the job's end) one transaction per interval.
 */
export const PAY_BATCH_MS = 100

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
    // (through the payer when the job pays: a signature found good here is not verified again when the copy is paid)
    const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: receipt.receipt, signature: receipt.signature, batch: receipt.batch ?? [] }), ids.provider, TOKEN_DECIMALS, this.payment?.payer.verifyNow ?? nodeSuite.verify, nodeSha256)
    return v.ok && bytesEqual(v.receipt.jobId, ids.jobId) && bytesEqual(v.receipt.taskId, ids.taskId) ? Number(this.payableOf(key, provider, v.receipt)) / 10 ** TOKEN_DECIMALS : predicted
  }

  /** Read at each use: payment may be set after the runner is made (setPayment). */
  get payment (): RunnerPayment | undefined { return this.init.payment }

  sent (key: number, at: number): void { this.sentAt.set(key, at) }
  returnedCopy (key: number, endedAt: number, receipt?: Uint8Array): void { if (this.payment !== undefined) this.returned.set(key, { endedAt, receipt }) }
  /** A copy settled unbilled (failed, wrong, surplus, lost, revoked): nothing of it will be paid from here. */
  forget (key: number): void { this.returned.delete(key); this.sentAt.delete(key) }

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
      receiptAmount: amount, usage: { gpuSeconds: r.gpuSeconds, cpuMs: r.cpuMs, pricingVersion: r.pricingVersion }, offer, gpus: this.m.resources.gpu?.count ?? 0, cores: this.m.resources.cores,
      measuredMs: this.now() - sent, timeoutMs: this.m.task.timeoutMs, maxPricePerHour: this.m.budget.maxPricePerHour
    }).payable
  }

  /**
   * Pays one billed copy: its receipt's signature is checked off the main thread first (the
   * payer's precheck), then it is recorded with the other copies queued meanwhile: in the runner's
   * next step transaction while its pump runs (attach), else in one transaction per PAY_BATCH_MS;
   * and the provider's new cumulative voucher is signed and sent when due (voucherDue), not per
   * copy. Resolves when the copy's payment is recorded.
   */
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
    const input: PayInput = { provider, key: `${index}:${attempt}`, receipt: got.receipt, taskId: enc.encode(`${this.jobId}:${index}:${attempt}`), measuredMs: got.endedAt - sent }
    // payNow and final wait for copies still in their check, as for those queued
    const checked = pay.payer.precheck(input)
    this.checking.add(checked)
    try { await checked } finally { this.checking.delete(checked) }
    this.queued.push(input)
    if (this.recording === undefined) {
      this.recording = new Promise<void>(resolve => { this.recorded_ = resolve })
      // each commit is a synchronous fsync that stalls the whole submitter: a step that commits
      // anyway takes the batch; a step (or, with no pump, a transaction of its own) is asked for
      // only if none came within PAY_BATCH_MS of the last batch
      const wait = Math.max(0, this.recordedAt + PAY_BATCH_MS - performance.now())
      this.batchTimer = setTimeout(() => {
        this.batchTimer = undefined
        this.batchAsked = true
        if (this.pump?.() !== true) this.recordQueued()()
      }, wait)
    }
    await this.recording
  }

  private readonly queued: PayInput[] = []
  /** Copies whose receipt signature is being checked (precheck) before they are queued. */
  private readonly checking = new Set<Promise<void>>()
  /** Until the queued copies are recorded (undefined: none queued). */
  private recording: Promise<void> | undefined
  private recorded_: (() => void) | undefined
  private batchTimer: NodeJS.Timeout | undefined
  /** The batch's PAY_BATCH_MS is up (its timer fired): the next step records it. */
  private batchAsked = false
  private recordedAt = -Infinity
  /** The runner's pump while it runs: asks for a step (true) whose transaction records the queue (recordQueued). */
  private pump: (() => boolean) | undefined
  /** Per payout: its next voucher's timer and the providers paid through it since the last one. */
  private readonly due = new Map<string, { timer?: NodeJS.Timeout, providers: Set<string> }>()
  private readonly signing = new Set<Promise<void>>()

  /** The runner's pump starts (a function asking for a step) or stops (undefined: the queue is recorded on its own). */
  attach (pump: (() => boolean) | undefined): void {
    this.pump = pump
    if (pump === undefined && this.recording !== undefined) {
      if (this.batchTimer !== undefined) clearTimeout(this.batchTimer)
      this.batchTimer = setTimeout(() => { this.batchTimer = undefined; this.recordQueued()() }, 0)
    }
  }

  /** Whether settled copies wait to be recorded. */
  get hasQueued (): boolean { return this.queued.length > 0 }

  /**
   * Whether the runner's step records the queue now (recordQueued in its transaction): PAY_BATCH_MS
   * after the last batch, as without the pump. Smaller batches would cost more than the commits
   * they share: each batch also writes every payout's total and reads its unsigned part.
   */
  get batchDue (): boolean { return this.queued.length > 0 && (this.batchAsked || performance.now() >= this.recordedAt + PAY_BATCH_MS) }

  /**
   * Until every copy handed to payCopy so far is recorded (or failed: onError). `now`: their batch
   * is recorded at once (the job's end: nothing else will commit, and the job's end waits on it),
   * not PAY_BATCH_MS after the last one (the copies settled in the job's last step were handed in
   * after its transaction: their batch waited ~100 ms for its timer).
   */
  private async recorded (now = false): Promise<void> {
    // the checks in flight now (not those of copies handed in meanwhile: under steady load there
    // would always be one, review s9 L1), then the batch they joined
    const mine = [...this.checking]
    if (mine.length > 0) await Promise.allSettled(mine)
    // a copy's push and the batch it joins happen in the same turn as its check's end
    while (this.recording !== undefined) {
      if (now) this.recordNow()
      await this.recording
    }
  }

  /** The queued batch is recorded now: in the pump's next step while it runs, else in a transaction of its own. */
  private recordNow (): void {
    if (this.recording === undefined) return
    if (this.batchTimer !== undefined) { clearTimeout(this.batchTimer); this.batchTimer = undefined }
    this.batchAsked = true
    if (this.pump?.() !== true) this.recordQueued()()
  }

  /**
   * Records the queued copies (one payMany: a savepoint of the caller's transaction when it runs
   * in one, the runner's step, else a transaction of its own). Returns what must follow only
   * once that transaction is committed: the batch's vouchers become due and payCopy resolves.
   */
  recordQueued (): () => void {
    const pay = this.payment
    const batch = this.queued.splice(0)
    const done = this.recorded_
    this.recording = undefined; this.recorded_ = undefined; this.batchAsked = false
    if (this.batchTimer !== undefined) { clearTimeout(this.batchTimer); this.batchTimer = undefined }
    this.recordedAt = performance.now()
    if (pay === undefined || batch.length === 0) return () => { done?.() }
    let outs: ReturnType<typeof pay.payer.payMany>
    try {
      outs = pay.payer.payMany(batch)
    } catch (err) {
      return () => { pay.onError?.(err as Error, batch[0].provider); done?.() }
    }
    return () => {
      // per payout once (its unsigned total is one read), with the providers paid through it in this batch
      const paid = new Map<string, Set<string>>()
      outs.forEach((o, i) => {
        if (!o.recorded || o.payout === undefined) return
        let providers = paid.get(o.payout)
        if (providers === undefined) { providers = new Set(); paid.set(o.payout, providers) }
        providers.add(batch[i].provider)
      })
      for (const [payout, providers] of paid) this.voucherDue(payout, providers)
      done?.()
    }
  }

  /**
   * A payout's total grew: its voucher is signed and sent at once when the unsigned part reaches
   * half of one task's price at its timeout (the provider's default credit is one such task:
   * payment-gate.ts refuses PAYER_BEHIND past it), else within a sixteenth of the task timeout
   * (VOUCHER_EVERY_MS at most: a provider's few slots deliver well under one task's price in that
   * time), so tiny tasks share one signature, one commit and one stream per interval, not one per copy.
   */
  private voucherDue (payout: string, providers: Iterable<string>): void {
    const pay = this.payment
    if (pay === undefined) return
    let d = this.due.get(payout)
    if (d === undefined) { d = { providers: new Set() }; this.due.set(payout, d) }
    const unsigned = pay.payer.unsignedOf(payout)
    let now = false
    for (const provider of providers) {
      d.providers.add(provider)
      const prices = this.offerPrices.get(provider)
      const credit = prices === undefined ? 0n : taskPriceUnits(prices, this.m.resources.gpu?.count ?? 0, this.m.resources.cores, this.m.task.timeoutMs)
      if (unsigned * 2n >= credit) now = true
    }
    if (now) { this.sendDue(payout); return }
    d.timer ??= setTimeout(() => { this.sendDue(payout) }, Math.max(20, Math.min(VOUCHER_EVERY_MS, this.m.task.timeoutMs / 16)))
  }

  /**
   * The provider refused a copy PAYER_BEHIND (its credit is smaller than our estimate, or many
   * slots finished at once): copies settled but not yet recorded are recorded, and every voucher
   * due to it is signed and sent now. Resolves when they went out (or failed: onError).
   */
  async payNow (provider: string): Promise<void> {
    if (this.payment === undefined) return
    await this.recorded()
    for (const [payout, d] of [...this.due]) if (d.providers.has(provider)) this.sendDue(payout)
    await Promise.allSettled([...this.signing])
  }

  private sendDue (payout: string): void {
    const d = this.due.get(payout)
    const pay = this.payment
    if (d === undefined || pay === undefined) return
    this.due.delete(payout)
    if (d.timer !== undefined) clearTimeout(d.timer)
    const p = (async () => {
      try {
        const v = await pay.payer.signLatest(payout)
        if (v !== undefined) await Promise.all([...d.providers].map(async provider => { await this.sendVoucher(provider, v) }))
      } catch (err) {
        pay.onError?.(err as Error, [...d.providers][0] ?? payout)
      }
    })()
    this.signing.add(p)
    void p.finally(() => this.signing.delete(p))
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
    await Promise.all(store.billedReceipts(this.jobId).map(async r => { await this.payCopy(r.index, r.attempt, r.provider, keyOf(r.index, r.attempt)) }))
  }

  /**
   * The job ended: every copy handed in is recorded (the totals paid and refused are final and
   * durable), and the job's end is reported. Its final vouchers are signed and sent after that,
   * held by the payer (the node's close on chain, its release of the payer and its stop wait for
   * them): the user waiting on the job needs its results and totals, not the providers' copies of
   * their vouchers; a provider that misses its own gets it from `dbc job settle`, and a node that
   * stops before sending signs from the store when it starts and sends them then (jobs-subsystem
   * afterNetworkStart; docs/architecture.md).
   */
  async final (summary: JobSummary): Promise<JobSummary> {
    const pay = this.payment
    if (pay === undefined) return summary
    // copies settled in the last turn are recorded (at once); vouchers not yet due are left to the final ones
    await this.recorded(true)
    for (const d of this.due.values()) if (d.timer !== undefined) clearTimeout(d.timer)
    this.due.clear()
    await pay.payer.idle()
    const signing = this.signing
    pay.payer.hold((async () => {
      // after the job's end is reported (the caller's turn: its status written, its end event
      // sent): a payout's receipts root and signature are milliseconds of this thread
      await new Promise(resolve => setImmediate(resolve))
      // the vouchers being sent now go first: a final one is never overtaken by an older total
      while (signing.size > 0) await Promise.allSettled([...signing])
      const finals = await pay.payer.signAll()
      await Promise.all(finals.flatMap(f => f.providers.map(async p => { await this.sendVoucher(p, f.voucher) })))
    })().catch(err => { pay.onError?.(err as Error) }))
    // the payer's totals (kept with every batch; the store's rows summed, as `dbc job status` reads them)
    return { ...summary, payment: { paid: formatCoins(pay.payer.committedUnits), refused: formatCoins(pay.payer.refusedUnits), unit: 'DBC' } }
  }
}
