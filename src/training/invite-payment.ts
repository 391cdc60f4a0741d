// The member's side of who pays a training job. An invitation is accepted only with payment
// terms naming an escrow on this node's chain that the payer authorised the coordinator to use
// and that covers this member's credit plus one round (the payment gate's rule for grid leases:
// src/jobs/payment-gate.ts admitInvitation). Every round after is admitted like a grid task
// (admitRound): the payer's vouchers may lag the rounds delivered by at most the credit (one
// round's price by default), else the round is refused PAYER_BEHIND; the escrow's unspent funds
// are read again as work accrues. A round is priced by the member alone (core/settlement/
// training.ts): its own prices, a round time it bounds itself; nothing the coordinator sends
// lowers it. A node without a chain checks nothing, as for leases.
import { peerIdFromString } from '@libp2p/peer-id'
import type { dbc } from '../wire/gen/wire.js'
import type { HourlyPrices } from '../core/compute/pricing.js'
import type { PaymentDecision } from '../core/settlement/credit.js'
import { memberRoundPrice, priceAboveCap } from '../core/settlement/training.js'
import { DEFAULT_TRAINING_MAX_PRICE_PER_HOUR, type TrainingSpec } from './spec.js'

/** What the member needs of the provider's payment gate. */
export interface InvitationGate {
  admitInvitation: (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, coordinator: Uint8Array, roundPrice: bigint, roundMs: number) => Promise<PaymentDecision>
  admitRound?: (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, roundPrice: bigint, roundMs: number) => Promise<PaymentDecision>
  roundDelivered?: (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, units: bigint) => bigint | undefined
  /** This node's PayoutBinding for `peer` (its id bytes), the one its offers carry; undefined while not signed yet. */
  payoutBinding?: (peer: Uint8Array) => Uint8Array | undefined
}

/** The member's pricing policy (its provider policy). */
export interface MemberPricing {
  prices: HourlyPrices
  /** Floor of a round's time, ms (config provider.training.minRoundS). */
  minRoundMs: number
}

export interface PaymentRefusal { code: string, reason: string, charge: boolean }

/** One round at this member's prices, bounded by the member (see core/settlement/training.ts). */
export function roundPriceUnits (spec: TrainingSpec, pricing: MemberPricing, seen: { longestMs?: number, mostBilled?: bigint } = {}): { price: bigint, roundMs: number } {
  return memberRoundPrice({ prices: pricing.prices, gpus: spec.gpu?.count ?? 0, minRoundMs: pricing.minRoundMs, ...seen })
}

interface MemberJob { terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, spec: TrainingSpec, longestMs: number, mostBilled: bigint, at: number }

/** Jobs remembered at most (the oldest forgotten first; a forgotten job's rounds are refused). */
const MAX_JOBS = 256

/** The member's payment checks for the training jobs it works in; one per node. */
export class MemberPayments {
  private readonly jobs = new Map<string, MemberJob>()

  constructor (private readonly gate: () => InvitationGate | undefined, private readonly pricing: () => MemberPricing, private readonly now: () => number = Date.now) {}

  /** The refusal of an invitation whose rounds are not backed by money, or undefined to go on (and the job is remembered). */
  async admitInvitation (inv: { jobId: string, payment?: dbc.task.v1.IPaymentTerms | null }, spec: TrainingSpec, coordinator: string): Promise<PaymentRefusal | undefined> {
    const gate = this.gate()
    if (gate === undefined) return undefined
    const pricing = this.pricing()
    // paid less than it bills, an honest payer would look "behind" after one round: refused now, not charged
    const above = priceAboveCap(pricing.prices, spec.gpu?.count ?? 0, spec.maxPricePerHour ?? DEFAULT_TRAINING_MAX_PRICE_PER_HOUR)
    if (above !== undefined) return { code: 'PRICE_ABOVE_CAP', reason: above, charge: false }
    let holder: Uint8Array
    try { holder = peerIdFromString(coordinator).toMultihash().bytes } catch { return { code: 'LEASE_NOT_AUTHORISED', reason: 'the coordinator has no usable peer id', charge: false } }
    const { price, roundMs } = roundPriceUnits(spec, pricing)
    // training job ids are text: the payer's job id bytes are their UTF-8 (training-payments.ts)
    const jobIdBytes = new TextEncoder().encode(inv.jobId)
    const d = await gate.admitInvitation(inv.payment, jobIdBytes, holder, price, roundMs)
    if (!d.ok) return { code: d.code, reason: d.reason, charge: d.action === 'reject' }
    // a resumed job's new invitation keeps what was measured of its rounds
    const prev = this.jobs.get(inv.jobId)
    this.jobs.delete(inv.jobId)
    if (this.jobs.size >= MAX_JOBS) this.jobs.delete(this.jobs.keys().next().value as string)
    this.jobs.set(inv.jobId, { terms: inv.payment, jobIdBytes, spec, longestMs: prev?.longestMs ?? 0, mostBilled: prev?.mostBilled ?? 0n, at: this.now() })
    return undefined
  }

  /** Before each round: the refusal (PAYER_BEHIND, ESCROW_TOO_SMALL, ...) or undefined to run it. */
  async admitRound (jobId: string): Promise<PaymentRefusal | undefined> {
    const gate = this.gate()
    if (gate === undefined) return undefined
    const j = this.jobs.get(jobId)
    if (j === undefined) return { code: 'NO_ESCROW', reason: `this member holds no payment terms for job ${jobId.slice(0, 16)} (accept an invitation first)`, charge: false }
    if (gate.admitRound === undefined) return undefined
    const { price, roundMs } = roundPriceUnits(j.spec, this.pricing(), j)
    const d = await gate.admitRound(j.terms, j.jobIdBytes, price, roundMs)
    return d.ok ? undefined : { code: d.code, reason: d.reason, charge: d.action === 'reject' }
  }

  /** A round this member ran and billed (`units`: its receipt's amount, wei). */
  delivered (jobId: string, computeMs: number, units: bigint): void {
    const j = this.jobs.get(jobId)
    if (j === undefined) return
    if (Number.isFinite(computeMs) && computeMs > j.longestMs) j.longestMs = computeMs
    if (units > j.mostBilled) j.mostBilled = units
    this.gate()?.roundDelivered?.(j.terms, j.jobIdBytes, units)
  }

  /** The round price (wei, as text) and time this member holds a job's rounds to now; undefined for a job it does not work in. */
  view (jobId: string): { roundPrice: string, roundMs: number } | undefined {
    const j = this.jobs.get(jobId)
    if (j === undefined) return undefined
    const { price, roundMs } = roundPriceUnits(j.spec, this.pricing(), j)
    return { roundPrice: price.toString(), roundMs }
  }

  /** The job ended here (its worker stopped). */
  forget (jobId: string): void { this.jobs.delete(jobId) }
}
