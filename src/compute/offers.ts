// Answers lease requests with signed, expiring offers (or signed refusals), from the provider
// policy and the slots free right now. The decision is core/compute/offer-policy.ts.
import { randomBytes } from 'node:crypto'
import type { dbc } from '../wire/gen/wire.js'
import { decideOffer, demandOf, type ExecutorName, type ProviderPolicy } from '../core/compute/offer-policy.js'
import { signOffer, type OfferSigningKey } from '../core/compute/offer.js'
import type { SlotDemand, SlotLedger } from '../core/compute/slot-ledger.js'
import type { PerformanceScores } from './benchmark.js'
import { bundleMaxFor } from '../core/scheduler/ports.js'

export interface OfferDeps {
  signingKey: OfferSigningKey
  policy: ProviderPolicy
  availableExecutors: ExecutorName[]
  ledger: SlotLedger
  scores: PerformanceScores
  /** The EVM address vouchers must name (the chain bridge's account), carried in the signed offer. */
  payoutAddress?: string
  /** Whether the GPUs a demand asks for are probed ones (nvidia-smi), not only declared: said in the offer. */
  gpusProbed?: (demand: SlotDemand) => boolean
}

export interface OfferOptions {
  /** The requester's region (geo cell or name), when the caller knows it. */
  requesterRegion?: string
  now?: number
  /** Refuse with this reason whatever the policy says (the payment gate: another chain, no escrow named). */
  refusal?: string
  /** The payout key's signature over this peer on the requester's chain (the payment gate's; core/settlement/payout-binding.ts). */
  payoutBinding?: Uint8Array
}

export function answerLeaseRequest (req: dbc.task.v1.ILeaseRequest, deps: OfferDeps, opts: OfferOptions = {}): dbc.task.v1.Offer {
  const now = opts.now ?? Date.now()
  const demand = demandOf(req.resources)
  const perfScore = demand.gpus > 0 ? (deps.scores.gpus[demand.gpuModel ?? ''] ?? Math.max(0, ...Object.values(deps.scores.gpus))) : deps.scores.cpu
  const decision = decideOffer(req, {
    policy: deps.policy,
    availableExecutors: deps.availableExecutors,
    capacityFor: d => deps.ledger.concurrentCapacity(d),
    freeSlotsFor: d => deps.ledger.freeSlotsFor(d),
    requesterRegion: opts.requesterRegion,
    perfScore,
    now
  })
  const ids = { offerId: new Uint8Array(randomBytes(16)), jobId: req.jobId ?? new Uint8Array(0), payoutAddress: deps.payoutAddress, payoutBinding: opts.payoutBinding }
  if (opts.refusal !== undefined) return signOffer(deps.signingKey, ids, { refusal: opts.refusal }, now)
  if (decision.kind !== 'offer') return signOffer(deps.signingKey, ids, { refusal: decision.reason }, now)
  const gpusProbed = demand.gpus > 0 && deps.gpusProbed?.(demand) === true
  // tiny tasks run as TaskBundles of up to this many in one slot (signed with the rest; 0: none, the
  // field stays absent). Only for a requester that asks (LeaseRequest.bundles): an older one re-encodes
  // the offer it decoded to check its signature, and would drop the field it does not know (OFFER_FORGED)
  const bundleMax = req.bundles === true ? bundleMaxFor(req.expectedTaskMs) : 0
  return signOffer(deps.signingKey, ids, { terms: { ...decision.terms, ...(gpusProbed ? { gpusProbed } : {}), ...(bundleMax > 1 ? { bundleMax } : {}) } }, now)
}
