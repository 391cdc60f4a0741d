// The provider's payment gate: a lease opens only on an escrow of its own chain that the named
// payer funded, and each task is admitted only while that escrow covers the unpaid work plus the
// task and the payer's vouchers lag the delivered work by no more than the credit. Per (job,
// payer) it keeps `delivered` (its receipts, each bounded by its own offer's price) and `signed`
// (the latest verified voucher), written to the node's store when given (provider-ledger-store.ts).
// The decisions are core/settlement/credit.ts; this reads the chain through a port (the chain
// Bridge implements it; tests pass a double) and caches reads.
//
// What the submitter must know: the escrow must hold the job's cost plus one task's price at its
// timeout (the most one more task can be billed), and a voucher must follow the results before
// `creditTasks` task prices of unsigned work pile up here.
import type { dbc } from '../wire/gen/wire.js'
import type { DbcError } from '../errors.js'
import {
  checkPaymentTerms, decideAdmission, deliveredUnits, judgeVoucher, parseVoucher, taskPriceUnits, uint256Bytes, coins,
  type EscrowRead, type PaymentChain, type PaymentDecision
} from '../core/settlement/credit.js'
import { voucherSigner, type SignedVoucher, type VoucherDomain } from '../core/settlement/voucher.js'
import { leaseAuthSigner } from '../core/settlement/lease-auth.js'
import type { Hex32 } from '../core/settlement/hex.js'

import { releaseSlot, takeSlot } from './lease-slots.js'
import { BundleExtras } from './payment-gate-bundles.js'
import { PaymentDeclinedError, PaymentRejectedError, leaseTaskPrice, gridJobLabel, trainingJobLabel, type PaymentPort, type PaymentGateInit, type LeasePayment, type LedgerPersistence, type LedgerEntry, type CachedRead, type PaymentJobStatus, type BundleAhead } from './payment-gate-types.js'
export { PaymentDeclinedError, PaymentRejectedError, LEASE_SLOT_QUEUE, type PaymentPort, type PaymentGateInit, type PersistedLedger, type LedgerPersistence, type LeasePayment, type PaymentJobStatus, type BundleAhead } from './payment-gate-types.js'

/** How long a finished task's small delivered amount may wait to be written (saveDelivered). */
export const LEDGER_SAVE_MS = 1000
const ESCROW_CODES = new Set(['NO_ESCROW', 'ESCROW_TOO_SMALL', 'ESCROW_CLOSED', 'ESCROW_REFUNDED', 'ESCROW_PAYER_MISMATCH', 'ESCROW_WINDOW_SHORT'])

export class PaymentGate {
  private readonly ledger = new Map<string, LedgerEntry>()
  private readonly reads = new Map<string, CachedRead>()
  private readonly voucherChains = new Map<string, Promise<unknown>>()
  /** Per job: what its bundles' admitted, not finished tasks may bill past each one's largest price (payment-gate-bundles.ts). */
  private readonly extras = new BundleExtras()
  private readonly creditMilli: bigint
  private readonly ttlMs: number
  private readonly minRefreshMs: number
  private readonly maxJobs: number
  private readonly minDisputeWindowS: number
  private readonly deadlineMarginS: number
  private readonly now: () => number
  private readonly recover: (sv: SignedVoucher, d: VoucherDomain) => Promise<string | undefined>

  constructor (private readonly port: PaymentPort, init: PaymentGateInit = {}) {
    const credit = init.creditTasks ?? 1
    if (!Number.isFinite(credit) || credit < 0) throw new RangeError('creditTasks must be a non-negative number')
    this.creditMilli = BigInt(Math.round(credit * 1000))
    this.ttlMs = init.escrowTtlMs ?? 5000
    this.minRefreshMs = init.minRefreshMs ?? 1000
    this.maxJobs = init.maxJobs ?? 4096
    this.minDisputeWindowS = init.minDisputeWindowS ?? 3600
    this.deadlineMarginS = init.deadlineMarginS ?? 60
    this.now = init.now ?? Date.now
    this.recover = init.recover ?? voucherSigner
    this.persist = init.ledger
    // a restarted provider remembers who owes it (else every payer gets a fresh credit)
    for (const r of (this.persist?.load(this.maxJobs) ?? []).reverse()) {
      this.ledger.set(r.chainJobId, { payer: r.payer, delivered: r.delivered, signed: r.signed, redeemed: 0n, inflight: 0, tasks: r.tasks, refusals: 0, maxBehind: r.maxBehind, ...(r.voucher != null ? { voucher: r.voucher } : {}), ...(r.jobId !== undefined ? { jobId: r.jobId } : {}) })
    }
  }

  private readonly persist?: LedgerPersistence

  /** Entries whose delivered work grew since they were written (written within LEDGER_SAVE_MS). */
  private readonly unsaved = new Map<string, LedgerEntry>()
  private saveTimer: NodeJS.Timeout | undefined

  /**
   * A finished task's delivered work, written at once when the payer is behind by more than half
   * the credit (what a restart must remember: who owes), else with the other small ones within
   * LEDGER_SAVE_MS: each write is a synchronous commit (~6 ms with fsync), once per tiny task it
   * was most of a provider's store time. A crash forgets less than half a credit of debt.
   */
  private saveDelivered (key: string, e: LedgerEntry, credit: bigint): void {
    if (e.delivered - e.signed > credit / 2n) { this.save(key, e); return }
    this.unsaved.set(key, e)
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined
      for (const [k, entry] of [...this.unsaved]) this.save(k, entry)
    }, LEDGER_SAVE_MS)
    this.saveTimer.unref?.()
  }

  /** Writes a job's entry down (delivered work or a kept voucher changed); a failed write is not the payer's concern. */
  private save (key: string, e: LedgerEntry): void {
    this.unsaved.delete(key)
    try {
      this.persist?.save(key, { payer: e.payer, delivered: e.delivered, signed: e.signed, tasks: e.tasks, maxBehind: e.maxBehind, ...(e.voucher != null ? { voucher: e.voucher } : {}), ...(e.jobId !== undefined ? { jobId: e.jobId } : {}) })
    } catch {}
  }

  /** The port's domain and address; PaymentDeclinedError (not charged) while the chain is not ready. */
  private ready (): { domain: VoucherDomain, address: string } {
    try {
      return { domain: this.port.domain(), address: this.port.address }
    } catch (err) {
      throw new PaymentDeclinedError('CHAIN_UNAVAILABLE', `this provider's chain is not ready: ${(err as Error).message}`)
    }
  }

  private chain (): PaymentChain {
    const d = this.ready().domain
    return { chainId: d.chainId, contract: d.verifyingContract.toLowerCase() as Hex32 }
  }

  /** A lease request on another chain (or with no escrow named) gets a signed refusal with this text; undefined: offer. */
  offerRefusal (req: dbc.task.v1.ILeaseRequest): string | undefined {
    let self: PaymentChain
    try { self = this.chain() } catch { return undefined } // the lease is refused with the reason then
    const t = checkPaymentTerms(req.payment, req.jobId ?? new Uint8Array(), self)
    return t.ok ? undefined : `${t.code}: ${t.reason}`
  }

  /** What this provider's offers carry to prove its payout address (undefined while the chain is not ready). */
  payoutBinding (peer: Uint8Array): Uint8Array | undefined {
    try { return this.port.payoutBinding?.(peer) } catch { return undefined }
  }

  /** Checks a lease's terms and escrow; throws PaymentDeclinedError / PaymentRejectedError when refused. */
  async admitLease (lease: dbc.task.v1.ILease, offer: { prices?: { priceGpuHour: number, priceCpuHour: number }, slot?: { gpus: number, cores: number }, slots?: number }, taskMs = 0): Promise<LeasePayment> {
    const t = checkPaymentTerms(lease.payment, lease.jobId ?? new Uint8Array(), this.chain())
    if (!t.ok) throw refusalError(t)
    // the named payer must have authorised this holder: else anyone who learnt the job's id and payer
    // could lease against that escrow, and its unsigned work would block the real payer (review H1)
    const auth = lease.payment?.holderAuth ?? new Uint8Array()
    const signer = auth.length === 0 ? undefined : leaseAuthSigner(t.terms.chainJobId, lease.holder ?? new Uint8Array(), auth, this.ready().domain)
    if (signer !== t.terms.payer) throw new PaymentRejectedError('LEASE_NOT_AUTHORISED', `the lease's holder is not authorised by payer ${t.terms.payer} for job ${t.terms.chainJobId.slice(0, 10)}… (PaymentTerms.holder_auth: the payer's LeaseAuth signature)`)
    const lp: LeasePayment = { terms: t.terms, prices: offer.prices ?? { priceGpuHour: 0, priceCpuHour: 0 }, gpus: offer.slot?.gpus ?? 0, cores: offer.slot?.cores ?? 1, slots: Math.max(1, offer.slots ?? 1), inflight: 0 }
    // the credit is one task's price (at the longest task this provider runs), as for a task:
    // a credit of 0 here would refuse re-leasing over any unsigned work, however small
    const d = await this.decide(lp, 0n, taskPriceUnits(lp.prices, lp.gpus, lp.cores, taskMs))
    if (!d.ok) throw refusalError(d)
    // written down at once (one write per lease): a voucher is kept only for a job with a row here
    // (acceptOne), and a crash before its first task's delivery is written must not lose the row
    const known = this.ledger.has(lp.terms.chainJobId)
    const e = this.entry(lp.terms, true, gridJobLabel(lease.jobId ?? new Uint8Array()))
    if (!known && e !== undefined) this.save(lp.terms.chainJobId, e)
    return lp
  }

  /**
   * A training invitation's payment terms, member side (review H2): they name this chain and the
   * job's escrow, the payer authorised the coordinator (holder_auth over its peer id bytes, as a
   * lease holder), and the escrow covers at least this member's credit (`creditTasks` rounds at
   * `roundPrice`) with its deadline past one round. Never throws: a refusal carries its code.
   */
  async admitInvitation (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, coordinator: Uint8Array, roundPrice: bigint, roundMs: number): Promise<PaymentDecision> {
    let self: PaymentChain
    try { self = this.chain() } catch (err) { return { ok: false, code: 'CHAIN_UNAVAILABLE', reason: (err as Error).message, action: 'ignore' } }
    const t = checkPaymentTerms(terms, jobIdBytes, self)
    if (!t.ok) return t
    const auth = terms?.holderAuth ?? new Uint8Array()
    const signer = auth.length === 0 ? undefined : leaseAuthSigner(t.terms.chainJobId, coordinator, auth, this.ready().domain)
    if (signer !== t.terms.payer) return { ok: false, code: 'LEASE_NOT_AUTHORISED', reason: `the coordinator is not authorised by payer ${t.terms.payer} for job ${t.terms.chainJobId.slice(0, 10)}… (PaymentTerms.holder_auth: the payer's LeaseAuth signature)`, action: 'reject' }
    const lp: LeasePayment = { terms: t.terms, prices: { priceGpuHour: 0, priceCpuHour: 0 }, gpus: 0, cores: 0, slots: 1, inflight: 0 }
    const credit = roundPrice * this.creditMilli / 1000n
    try {
      return await this.decide(lp, credit, roundPrice, Math.ceil(Math.max(0, roundMs) / 1000) + this.deadlineMarginS)
    } catch (err) {
      return { ok: false, code: 'CHAIN_UNAVAILABLE', reason: (err as Error).message, action: 'ignore' }
    }
  }

  /**
   * The next round of a training job this member accepted (terms already checked at the
   * invitation): the credit rule and the escrow read (cached; again when it would refuse), as for
   * a grid task, with the member's own round price (core/settlement/training.ts). A refusal is
   * counted on the job's ledger row (`dbc node status`). Never throws.
   */
  async admitRound (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, roundPrice: bigint, roundMs: number): Promise<PaymentDecision> {
    let d: PaymentDecision
    try {
      const t = checkPaymentTerms(terms, jobIdBytes, this.chain())
      if (!t.ok) return t
      const lp: LeasePayment = { terms: t.terms, prices: { priceGpuHour: 0, priceCpuHour: 0 }, gpus: 0, cores: 0, slots: 1, inflight: 0 }
      d = await this.decide(lp, roundPrice, roundPrice, Math.ceil(Math.max(0, roundMs) / 1000) + this.deadlineMarginS)
      const known = this.ledger.has(t.terms.chainJobId)
      const e = this.entry(t.terms, d.ok, trainingJobLabel(jobIdBytes))
      if (!known && e !== undefined) this.save(t.terms.chainJobId, e) // as a lease's (admitLease)
      if (!d.ok && e !== undefined) { e.refusals++; e.lastRefusal = `${d.code}: ${d.reason}` }
    } catch (err) {
      d = { ok: false, code: 'CHAIN_UNAVAILABLE', reason: (err as Error).message, action: 'ignore' }
    }
    return d
  }

  /** A training round this member ran: its own receipt's amount counts as delivered for the job (returns the unsigned total). */
  roundDelivered (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, units: bigint): bigint | undefined {
    let t: ReturnType<typeof checkPaymentTerms>
    try { t = checkPaymentTerms(terms, jobIdBytes, this.chain()) } catch { return undefined }
    if (!t.ok) return undefined
    const e = this.entry(t.terms, true, trainingJobLabel(jobIdBytes))!
    e.delivered += units > 0n ? units : 0n
    e.tasks++
    const behind = e.delivered - e.signed
    if (behind > e.maxBehind) e.maxBehind = behind
    this.save(t.terms.chainJobId, e)
    return behind
  }

  /**
   * Admits one task (of `timeoutMs` at most) under a lease `admitLease` returned: no more tasks at
   * once than its offer's slots (else a submitter that never pays could queue a provider full
   * before any work is delivered), the escrow read (cached; again when it would refuse) and the
   * credit rule; counts the task in flight until `finished`. So the unsigned work of a payer that
   * stops signing is at most the credit plus `slots` tasks at their price. `ahead`: the bundle's
   * tasks admitted and not finished yet (admitted together: what they and this one may bill past
   * their largest price counts as delivered, so the rule holds however they end; finished() with the
   * same `ahead` takes each out). Every task's rule also counts the job's other bundles' (BundleAhead).
   * `again`: a refusal the caller will ask again (a bundle's task refused after others were admitted
   * together) is not counted on the job's row.
   */
  async admitTask (lp: LeasePayment, timeoutMs: number, opts: { reserved?: boolean, bundle?: boolean, ahead?: BundleAhead, again?: boolean } = {}): Promise<PaymentDecision> {
    // `reserved`: slotFree took the slot for this task already (given back here on a refusal);
    // `bundle`: a bundle holds it for its tasks (bundleDone gives it back once, after the last)
    const held = opts.reserved === true || opts.bundle === true
    const keep = opts.bundle === true
    const price = leaseTaskPrice(lp, timeoutMs)
    let d: PaymentDecision
    try {
      d = !held && lp.inflight >= lp.slots
        ? { ok: false, code: 'LEASE_SLOTS_BUSY', reason: `the lease's ${lp.slots} slot(s) are all running a task (send the next when one returns)`, action: 'ignore' }
        : await this.decide(lp, price, price, Math.ceil(timeoutMs / 1000) + this.deadlineMarginS, opts.ahead)
    } catch (err) {
      if (held && !keep) releaseSlot(lp) // the chain could not be read: the reserved slot goes back
      throw err
    }
    // the await above let other tasks in: the slot count is checked again before it is taken
    if (!held && d.ok && lp.inflight >= lp.slots) d = { ok: false, code: 'LEASE_SLOTS_BUSY', reason: `the lease's ${lp.slots} slot(s) are all running a task (send the next when one returns)`, action: 'ignore' }
    const e = this.entry(lp.terms, d.ok)
    if (!d.ok) {
      if (held && !keep) releaseSlot(lp)
      // `again`: the caller asks again later (a bundle's task refused with others admitted): counted then
      if (e !== undefined && opts.again !== true) { e.refusals++; e.lastRefusal = `${d.code}: ${d.reason}` }
      return d
    }
    e!.inflight++
    if (!held) lp.inflight++
    if (opts.ahead !== undefined) this.extras.tally(lp.terms.chainJobId, opts.ahead, price)
    return d
  }

  /**
   * A bundle (TaskBundle) that took its slot with slotFree, and admitted and finished its tasks one
   * after another with `bundle: true`, ended: its slot goes to the next waiter. Call it once.
   */
  bundleDone (lp: LeasePayment): void { releaseSlot(lp) }

  /**
   * Takes a free slot of the lease for the caller (then `admitTask(..., { reserved: true })`, or a
   * bundle's `bundle: true`), waiting for one in turn; false, with none, when LEASE_SLOT_QUEUE tasks
   * wait already or the signal fired (the caller refuses LEASE_SLOTS_BUSY): lease-slots.ts. */
  async slotFree (lp: LeasePayment, signal?: AbortSignal): Promise<boolean> { return await takeSlot(lp, signal) }

  /**
   * A task admitted by admitTask ended: its receipt counts as delivered, bounded by the offer, only
   * when the task's result was ok (pass undefined otherwise). Failed, timed-out and cancelled work is
   * the provider's risk, as the submitter pays only accepted copies (runner.ts: billed = `agreed`).
   * A copy cancelled before it ended sends no result and comes here without a receipt
   * (compute-provider.ts). An ok copy the submitter still does not pay (its result crossed the
   * cancel on the wire, an outvoted or unverified one) stays unsigned here: on honest jobs such
   * races are rare and each costs its measured run time, well inside the credit of one task at
   * its full timeout.
   */
  finished (lp: LeasePayment, timeoutMs: number, receipt: dbc.receipt.v1.IUsageReceipt | undefined, opts: { bundle?: boolean, ahead?: BundleAhead } = {}): bigint {
    const e = this.entry(lp.terms, true)!
    e.inflight = Math.max(0, e.inflight - 1)
    if (opts.ahead !== undefined) this.extras.tally(lp.terms.chainJobId, opts.ahead, -leaseTaskPrice(lp, timeoutMs))
    // the next task read ahead on this lease takes it (a bundle's task: the bundle keeps it for its next)
    if (opts.bundle !== true) releaseSlot(lp)
    if (receipt == null) return 0n
    const units = deliveredUnits({ amount: receipt.amount ?? '0', wallMs: receipt.wallMs ?? 0, cpuMs: receipt.cpuMs ?? 0, gpuSeconds: receipt.gpuSeconds ?? 0, pricingVersion: receipt.pricingVersion ?? 0 }, lp.prices, lp.gpus, lp.cores, timeoutMs)
    e.delivered += units
    e.tasks++
    const behind = e.delivered - e.signed
    if (behind > e.maxBehind) e.maxBehind = behind
    this.saveDelivered(lp.terms.chainJobId, e, leaseTaskPrice(lp, timeoutMs) * this.creditMilli / 1000n)
    return units
  }

  private async decide (lp: LeasePayment, nextTask: bigint, taskPrice = nextTask, nextTaskS?: number, ahead?: BundleAhead): Promise<PaymentDecision> {
    const key = lp.terms.chainJobId
    const credit = taskPrice * this.creditMilli / 1000n
    // the ledger is read after each await: tasks end and vouchers land meanwhile
    const d = this.decideWith(lp, await this.read(key, false), credit, nextTask, nextTaskS, ahead)
    if (d.ok || !ESCROW_CODES.has(d.code)) return d
    // refused on the escrow: the cached read may be stale (a top-up, a redemption): read it again
    const e = this.ledger.get(key)
    if (e !== undefined && d.code === 'ESCROW_TOO_SMALL' && this.port.redeemed !== undefined) {
      try { e.redeemed = await this.port.redeemed(key) } catch {}
    }
    return this.decideWith(lp, await this.read(key, true), credit, nextTask, nextTaskS, ahead)
  }

  /** The credit rule on the job's ledger as it is now (a method, not a closure per task). */
  private decideWith (lp: LeasePayment, escrow: EscrowRead | undefined, credit: bigint, nextTask: bigint, nextTaskS: number | undefined, ahead?: BundleAhead): PaymentDecision {
    const key = lp.terms.chainJobId
    const e = this.ledger.get(key)
    // admitted, not finished, counted as delivered: what the job's bundles may bill past their largest
    // price, this task's own bundle with it (read after the await: others admit meanwhile)
    const counted = this.extras.counted(key, ahead, nextTask)
    const ledger = { delivered: (e?.delivered ?? 0n) + counted, signed: e?.signed ?? 0n, redeemed: e?.redeemed ?? 0n }
    return decideAdmission({ terms: lp.terms, escrow, ledger, credit, nextTask, nowSec: Math.floor(this.now() / 1000), minDisputeWindowS: this.minDisputeWindowS, ...(nextTaskS !== undefined ? { nextTaskS } : {}) })
  }

  /** The escrow, from the cache when young enough; `fresh` reads the chain (at most once per minRefreshMs). */
  private async read (key: Hex32, fresh: boolean): Promise<EscrowRead | undefined> {
    const now = this.now()
    const c = this.reads.get(key)
    // "no escrow" is trusted only briefly: the deposit may be on its way
    if (c !== undefined && now - c.at < (fresh || c.read === undefined ? this.minRefreshMs : this.ttlMs)) return c.read
    let read: EscrowRead | undefined
    try {
      read = await this.port.escrow(key, { fresh })
    } catch (err) {
      throw new PaymentDeclinedError('CHAIN_UNAVAILABLE', `cannot read the escrow of job ${key.slice(0, 10)}… on chain ${this.chainIdText()}: ${(err as Error).message}`)
    }
    this.reads.delete(key)
    this.reads.set(key, { read, at: this.now() })
    if (this.reads.size > this.maxJobs) this.reads.delete(this.reads.keys().next().value as string)
    return read
  }

  private chainIdText (): string {
    try { return String(this.port.domain().chainId) } catch { return '?' }
  }

  /** The job's ledger entry; created when `create` (after a check passed), the idle oldest evicted past maxJobs. */
  /** The job's ledger row (created when `create`); `jobId`: its id as the lease or invitation named it (kept once known). */
  private entry (terms: { chainJobId: string, payer: string }, create: boolean, jobId?: string): LedgerEntry | undefined {
    let e = this.ledger.get(terms.chainJobId)
    if (e !== undefined && e.jobId === undefined && jobId !== undefined) { e.jobId = jobId; this.save(terms.chainJobId, e) }
    if (e !== undefined || !create) return e
    e = { payer: terms.payer, delivered: 0n, signed: 0n, redeemed: 0n, inflight: 0, tasks: 0, refusals: 0, maxBehind: 0n, ...(jobId !== undefined ? { jobId } : {}) }
    this.ledger.set(terms.chainJobId, e)
    if (this.ledger.size > this.maxJobs) {
      // an entry the payer still owes for is never evicted: else throwaway leases would wipe a debt (review M1)
      for (const [k, old] of this.ledger) if (old.inflight === 0 && old.delivered <= old.signed && k !== terms.chainJobId) { this.ledger.delete(k); this.unsaved.delete(k); try { this.persist?.remove(k) } catch {}; break }
    }
    return e
  }

  /**
   * A voucher from `TaskMessage.voucher`: checked for shape, for this provider, against the job's
   * on-chain payer, and kept when it raises the signed total. Returns the voucher now held for the
   * job (the reply). Throws PaymentRejectedError (charged) for one no honest payer sends, and
   * PaymentDeclinedError (not charged) when the chain cannot be read or the voucher not kept.
   */
  async acceptVoucher (v: dbc.task.v1.IVoucher): Promise<dbc.task.v1.IVoucher> {
    const parsed = parseVoucher(v)
    if (!parsed.ok) throw new PaymentRejectedError('VOUCHER_MALFORMED', parsed.reason)
    const key = parsed.voucher.escrowId
    // one voucher per job at a time: the check against the held total and the update stay together
    const prev = this.voucherChains.get(key) ?? Promise.resolve()
    const run = prev.catch(() => {}).then(async () => await this.acceptOne(v, parsed.voucher))
    this.voucherChains.set(key, run)
    try {
      return await run
    } finally {
      if (this.voucherChains.get(key) === run) this.voucherChains.delete(key)
    }
  }

  private async acceptOne (v: dbc.task.v1.IVoucher, pv: Extract<ReturnType<typeof parseVoucher>, { ok: true }>['voucher']): Promise<dbc.task.v1.IVoucher> {
    const e = this.ledger.get(pv.escrowId)
    const { domain: d, address: self } = this.ready()
    const early = judgeVoucher({ voucher: pv, self, chainId: d.chainId, signer: undefined, escrow: { payer: '', unspent: 0n, refunded: false, closedAt: 0 }, held: e?.voucher != null ? e.signed : undefined })
    if (early.kind === 'stale') return e!.voucher!
    if (early.kind === 'refuse' && early.code === 'VOUCHER_WRONG_PROVIDER') throw new PaymentRejectedError(early.code, early.reason)
    // a job this provider never worked under (no lease or round admitted it: no ledger row): not
    // kept. Else any payer could make it store, and its redeem loop read twice every tick, one
    // voucher per 1-wei escrow it deposits (review s14 cheat F1). Checked before the escrow read and
    // the signature recovery, so such a voucher costs a map lookup (review L7). Not charged: a row
    // evicted past maxJobs (nothing owed on it) is the only way an honest payer's voucher lands here.
    if (e === undefined) throw new PaymentDeclinedError('VOUCHER_UNKNOWN_JOB', `no lease or training round of job ${pv.escrowId.slice(0, 10)}… ran on this provider: its voucher is not kept`)
    let escrow = await this.read(pv.escrowId, false)
    if (escrow === undefined) escrow = await this.read(pv.escrowId, true)
    const sv: SignedVoucher = { voucher: { escrowId: pv.escrowId, provider: pv.provider, cumulative: pv.cumulative, receiptsRoot: pv.receiptsRoot, receiptCount: pv.receiptCount }, signature: pv.signature }
    const signer = await this.recover(sv, d)
    const j = judgeVoucher({ voucher: pv, self, chainId: d.chainId, signer, escrow, held: e?.voucher != null ? e.signed : undefined })
    if (j.kind === 'stale') return e!.voucher!
    if (j.kind === 'refuse') throw new PaymentRejectedError(j.code, j.reason)
    // the row may have been evicted (maxJobs) while the chain was read: the same refusal as above
    if (!this.ledger.has(pv.escrowId)) throw new PaymentDeclinedError('VOUCHER_UNKNOWN_JOB', `no lease or training round of job ${pv.escrowId.slice(0, 10)}… ran on this provider: its voucher is not kept`)
    try {
      // the signer recovered above (the payer's, judged so) and the domain it was recovered under:
      // the book checks it without a second recovery when its own chain settings are the same
      await this.port.acceptVoucher(sv, signer !== undefined ? { signer: { address: signer, domain: d } } : {})
    } catch (err) {
      throw new PaymentDeclinedError('VOUCHER_NOT_KEPT', `the voucher for job ${pv.escrowId.slice(0, 10)}… could not be kept: ${(err as Error).message}`)
    }
    const entry = this.entry({ chainJobId: pv.escrowId, payer: escrow!.payer.toLowerCase() }, true)!
    if (pv.cumulative > entry.signed || entry.voucher == null) {
      entry.signed = pv.cumulative
      entry.voucher = { ...v, cumulative: uint256Bytes(pv.cumulative) }
      this.save(pv.escrowId, entry)
    }
    return entry.voucher
  }

  /** What this provider is owed and was signed, per job (the most recent first, at most `limit`). */
  status (limit = 50): PaymentJobStatus[] {
    const rows: PaymentJobStatus[] = []
    for (const [k, e] of [...this.ledger].reverse().slice(0, limit)) {
      const behind = e.delivered - e.signed
      rows.push({ chainJobId: k, ...(e.jobId !== undefined ? { jobId: e.jobId } : {}), payer: e.payer, delivered: coins(e.delivered), signed: coins(e.signed), behind: coins(behind > 0n ? behind : 0n), maxBehind: coins(e.maxBehind), inflight: e.inflight, tasks: e.tasks, refusals: e.refusals, ...(e.lastRefusal !== undefined ? { lastRefusal: e.lastRefusal } : {}) })
    }
    return rows
  }

  /** The job a chain job id is (its id as the submitter names it) and the tasks run for it, when a lease or invitation named it. */
  jobOf (chainJobId: string): { jobId?: string, tasks: number } | undefined {
    const e = this.ledger.get(chainJobId.toLowerCase())
    return e === undefined ? undefined : { ...(e.jobId !== undefined ? { jobId: e.jobId } : {}), tasks: e.tasks }
  }

  /** The ledger of one job (tests, status): wei. */
  ledgerOf (chainJobId: string): { delivered: bigint, signed: bigint, inflight: number, maxBehind: bigint } | undefined {
    const e = this.ledger.get(chainJobId.toLowerCase())
    return e === undefined ? undefined : { delivered: e.delivered, signed: e.signed, inflight: e.inflight, maxBehind: e.maxBehind }
  }
}

function refusalError (d: Extract<PaymentDecision, { ok: false }>): DbcError {
  return d.action === 'reject' ? new PaymentRejectedError(d.code, d.reason) : new PaymentDeclinedError(d.code, d.reason)
}
