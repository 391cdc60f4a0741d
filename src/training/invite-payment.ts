// The member's check of who pays a training job (review H2): an invitation is accepted only with
// payment terms naming an escrow on this node's chain that the payer authorised the coordinator
// to use and that covers at least this member's credit (the payment gate's rule for grid leases:
// src/jobs/payment-gate.ts admitInvitation). A node without a chain checks nothing, as for leases.
import { peerIdFromString } from '@libp2p/peer-id'
import type { dbc } from '../wire/gen/wire.js'
import type { HourlyPrices } from '../core/compute/pricing.js'
import { taskPriceUnits, type PaymentDecision } from '../core/settlement/credit.js'
import type { TrainingSpec } from './spec.js'

/** What the member needs of the provider's payment gate. */
export interface InvitationGate {
  admitInvitation: (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobIdBytes: Uint8Array, coordinator: Uint8Array, roundPrice: bigint, roundMs: number) => Promise<PaymentDecision>
}

/** A round's longest time when the spec sets no deadline (as the submitter's payer assumes: training-payments.ts). */
const DEFAULT_ROUND_MS = 600_000

/** One round at this member's prices: a GPU job holds its GPUs, a CPU job one core, for the round's deadline. */
export function roundPriceUnits (spec: TrainingSpec, prices: HourlyPrices): { price: bigint, roundMs: number } {
  const gpus = spec.gpu?.count ?? 0
  const roundMs = spec.deadline.maxMs ?? DEFAULT_ROUND_MS
  return { price: taskPriceUnits(prices, gpus, gpus > 0 ? 0 : 1, roundMs), roundMs }
}

/** The refusal of an invitation whose rounds are not backed by money, or undefined to go on. */
export async function invitationPaymentRefusal (gate: InvitationGate | undefined, inv: { jobId: string, payment?: dbc.task.v1.IPaymentTerms | null }, spec: TrainingSpec, coordinator: string, prices: HourlyPrices): Promise<{ code: string, reason: string, charge: boolean } | undefined> {
  if (gate === undefined) return undefined
  let holder: Uint8Array
  try { holder = peerIdFromString(coordinator).toMultihash().bytes } catch { return { code: 'LEASE_NOT_AUTHORISED', reason: 'the coordinator has no usable peer id', charge: false } }
  const { price, roundMs } = roundPriceUnits(spec, prices)
  // training job ids are text: the payer's job id bytes are their UTF-8 (training-payments.ts)
  const d = await gate.admitInvitation(inv.payment, new TextEncoder().encode(inv.jobId), holder, price, roundMs)
  return d.ok ? undefined : { code: d.code, reason: d.reason, charge: d.action === 'reject' }
}
