// Training rounds paid through the same flow as grid tasks: escrow locked before the group is
// invited, each round's receipt bounded by the payer (measured round time, the spec's budget)
// and paid with a new cumulative voucher sent to that peer on /dbc/task, and at the end the
// final vouchers, `close` and the refund after the dispute window (JobPayments).
// Training peers sign no offer: a member's payout address and its PayoutBinding travel in its
// signed round receipts, checked like a grid offer's (JobPayer.addPayee). A round is priced at
// the receipt's own prices, capped by the spec's maxPricePerHour (the member chose those prices) for the time the submitter measured for
// the round (at most the round deadline), never past the spec's budget. A member whose own price
// is above that cap refuses the job (PRICE_ABOVE_CAP, src/training/invite-payment.ts); it counts
// its rounds at its own receipts and refuses rounds PAYER_BEHIND once these vouchers lag by its credit.
import { peerIdFromString } from '@libp2p/peer-id'
import { dbc } from '../wire/gen/wire.js'
import { decimalToUnits } from '../core/compute/pricing.js'
import { chainJobId } from '../core/settlement/batch.js'
import { voucherToWire } from '../core/settlement/voucher-wire.js'
import type { SignedVoucher, VoucherDomain } from '../core/settlement/voucher.js'
import { DEFAULT_TRAINING_MAX_PRICE_PER_HOUR, type TrainingSpec } from '../training/spec.js'
import type { RoundMeterRecord } from '../training/session.js'
import { paymentView, type JobPayer } from '../jobs/payer.js'
import { formatCoins } from '../core/settlement/stake.js'
import type { JobPayments } from './job-payments.js'

/** Escrow of a training job whose spec states no budget, per group member (DBC). */
export const TRAINING_ESCROW_PER_PEER = 1

export interface TrainingPaymentsInit {
  payments: () => JobPayments | undefined
  /** Delivers a voucher to a peer (the jobs subsystem's task transport). */
  sendVoucher: (peer: string, voucher: dbc.task.v1.IVoucher) => Promise<void>
  log?: { warn: (o: object, m: string) => void }
}

/** The task shape a round is bounded with; the member's own prices are capped by the spec's maxPricePerHour. */
function shapeOf (spec: TrainingSpec, deadlineMs: number): { gpus: number, cores: number, timeoutMs: number, maxPricePerHour: number } {
  return { gpus: spec.gpu?.count ?? 0, cores: (spec.gpu?.count ?? 0) > 0 ? 0 : 1, timeoutMs: deadlineMs, maxPricePerHour: spec.maxPricePerHour ?? DEFAULT_TRAINING_MAX_PRICE_PER_HOUR }
}

/** A member's receipts kept while it carries no payout binding yet (per job: at most this many peers, each this many rounds). */
const PENDING_PEERS = 256
const PENDING_ROUNDS = 64

/**
 * `domain`: the escrow's chain and contract, where a member's payout binding must be signed.
 * `pending`: receipts refused only for a missing binding (the member may still be signing it),
 * paid once a later receipt of the same peer binds it (the member counted them delivered).
 */
interface Job { payer: JobPayer, lastRoundEnd: number, deadlineMs: number, domain: VoucherDomain, pending: Map<string, Array<{ rec: RoundMeterRecord, measuredMs: number }>> }

/** The submitter side of a training job's payment; one per node. */
export class TrainingPayments {
  private readonly jobs = new Map<string, Job>()

  constructor (private readonly init: TrainingPaymentsInit) {}

  /** Before the invitations: payment terms, payer and escrow (spec.budget, else a per-peer default). */
  async start (jobId: string, spec: TrainingSpec, opts: { allowTopUp?: boolean, groupSize: number }): Promise<void> {
    const payments = this.init.payments()
    if (payments === undefined || !payments.enabled) return
    const bridge = payments.bridge()
    if (bridge === undefined) return
    const domain = await bridge.domain()
    const jobIdBytes = new TextEncoder().encode(jobId)
    const budget = spec.budget !== undefined ? decimalToUnits(spec.budget) : undefined
    payments.putEscrow({ jobId, chainJobId: chainJobId(jobIdBytes, bridge.account), chainId: domain.chainId, contract: domain.verifyingContract, payer: bridge.account, budget, deposited: 0n, allowTopUp: opts.allowTopUp === true, kind: 'training' })
    const deadlineMs = spec.deadline.maxMs ?? 600_000
    const payer = payments.payerFor(jobId, jobIdBytes, bridge, shapeOf(spec, deadlineMs))
    this.jobs.set(jobId, { payer, lastRoundEnd: Date.now(), deadlineMs, domain, pending: new Map() })
    try {
      await payments.ensureEscrow(jobId, budget === undefined ? TRAINING_ESCROW_PER_PEER * Math.max(1, opts.groupSize) / 2 : 0)
    } catch (err) {
      // the job is not submitted (no escrow, no invitation): nothing of it is kept
      this.jobs.delete(jobId)
      await payments.release(jobId)
      throw err
    }
  }

  /** A job resumed after a restart: the payer (and what it signed) comes back from the store. */
  resume (jobId: string, spec: TrainingSpec): void {
    if (this.jobs.has(jobId)) return
    const payments = this.init.payments()
    const bridge = payments?.bridge()
    const e = payments?.store.escrow(jobId)
    if (payments === undefined || bridge === undefined || e === undefined) return
    const deadlineMs = spec.deadline.maxMs ?? 600_000
    const payer = payments.payerFor(jobId, new TextEncoder().encode(jobId), bridge, shapeOf(spec, deadlineMs))
    this.jobs.set(jobId, { payer, lastRoundEnd: Date.now(), deadlineMs, domain: { chainId: e.chainId, verifyingContract: e.contract }, pending: new Map() })
  }

  /**
   * The payment terms a job's invitations carry: its escrow, this node as payer, and this node's
   * LeaseAuth over the coordinator (itself): members check them on chain before accepting.
   */
  async terms (jobId: string, coordinator: string): Promise<dbc.task.v1.IPaymentTerms | undefined> {
    const payments = this.init.payments()
    const bridge = payments?.bridge()
    const e = payments?.store.escrow(jobId)
    if (payments === undefined || bridge === undefined || e === undefined) return undefined
    const holderAuth = await bridge.signLeaseAuth(e.chainJobId, peerIdFromString(coordinator).toMultihash().bytes)
    return { ...payments.terms(e), holderAuth }
  }

  /** A round's receipt from a member: bounded, recorded, and the member's new voucher sent. */
  metered (jobId: string, rec: RoundMeterRecord): void {
    const job = this.jobs.get(jobId)
    if (job === undefined) return
    const now = Date.now()
    const measuredMs = now - job.lastRoundEnd
    void this.pay(job, rec, measuredMs)
  }

  /** A round ended (the coordinator's progress): the next round's time counts from here. */
  roundEnded (jobId: string): void {
    const job = this.jobs.get(jobId)
    if (job !== undefined) job.lastRoundEnd = Date.now()
  }

  private async pay (job: Job, rec: RoundMeterRecord, measuredMs: number): Promise<void> {
    if (rec.receipt === undefined) return
    try {
      if (job.payer.payoutOf(rec.peer) === undefined) {
        // no signed offer: the payout address, its binding and the prices come from the peer's own signed
        // receipt; an address its key did not bind to this peer is refused (PAYOUT_NOT_BOUND), as for grid offers
        const r = dbc.receipt.v1.UsageReceipt.decode(dbc.receipt.v1.SignedReceipt.decode(rec.receipt).receipt)
        if (!job.payer.addPayee(rec.peer, { payout: r.payoutAddress, prices: { priceGpuHour: r.priceGpuHour, priceCpuHour: r.priceCpuHour }, providerBytes: peerIdFromString(rec.peer).toMultihash().bytes, binding: r.payoutBinding, domain: job.domain })) {
          if (r.payoutBinding == null || r.payoutBinding.length === 0) this.keep(job, rec, measuredMs)
          return
        }
      }
      const earlier = job.pending.get(rec.peer) ?? []
      job.pending.delete(rec.peer)
      // all at once: each payment is tracked by the payer at once, so finish()'s flush waits for them
      await Promise.all([...earlier, { rec, measuredMs }].map(async e => { await this.payRound(job, e.rec, e.measuredMs) }))
    } catch (err) {
      this.init.log?.warn({ jobId: job.payer.jobId, peer: rec.peer, err: (err as Error).message }, 'a training round was not paid yet')
    }
  }

  private async payRound (job: Job, rec: RoundMeterRecord, measuredMs: number): Promise<void> {
    if (rec.receipt === undefined) return
    const out = await job.payer.pay({ provider: rec.peer, key: `${rec.peer}/round/${rec.round}`, receipt: rec.receipt, taskId: new TextEncoder().encode(`${job.payer.jobId}/round/${rec.round}`), measuredMs })
    if (out.voucher !== undefined && out.recorded) await this.send(rec.peer, out.voucher)
  }

  /** A receipt with no binding yet: kept (bounded) until the peer's binding arrives. */
  private keep (job: Job, rec: RoundMeterRecord, measuredMs: number): void {
    const list = job.pending.get(rec.peer)
    if (list === undefined) {
      if (job.pending.size < PENDING_PEERS) job.pending.set(rec.peer, [{ rec, measuredMs }])
    } else if (list.length < PENDING_ROUNDS && !list.some(e => e.rec.round === rec.round)) list.push({ rec, measuredMs })
  }

  private async send (peer: string, v: SignedVoucher): Promise<void> {
    try {
      await this.init.sendVoucher(peer, voucherToWire(v))
    } catch (err) {
      this.init.log?.warn({ peer, err: (err as Error).message }, 'voucher not delivered (the next one carries the total)')
    }
  }

  /** The job ended: final vouchers to every member, then `close` (the refund follows the window). */
  async finish (jobId: string): Promise<void> {
    const job = this.jobs.get(jobId)
    if (job === undefined) return
    this.jobs.delete(jobId)
    const finals = await job.payer.flush()
    await Promise.all(finals.flatMap(f => f.providers.map(async p => { await this.send(p, f.voucher) })))
    await this.init.payments()?.finish(jobId).catch(err => { this.init.log?.warn({ jobId, err: (err as Error).message }, 'training job not closed on chain yet') })
  }

  /** Whether the job pays its rounds here now (started or resumed, not finished). */
  running (jobId: string): boolean { return this.jobs.has(jobId) }

  /** Paid and refused so far in DBC (for the training job's view and `dbc job list`). */
  paid (jobId: string): { paid: string, refused: string, unit: 'DBC' } | undefined {
    const p = this.init.payments()
    if (p === undefined || p.store.escrow(jobId) === undefined) return undefined
    const v = paymentView(p.store, jobId)
    return { paid: formatCoins(BigInt(v.committed)), refused: formatCoins(BigInt(v.refused)), unit: 'DBC' }
  }
}
