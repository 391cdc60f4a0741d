// Signed offers (dbc.task.v1.Offer): the signature covers the encoding of every field but the
// signature (11), so the payout address vouchers must name (12) and its key's binding (14) too.
import { dbc } from '../../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes, ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes, verifyByPeerId } from '../identity/index.js'
import type { OfferTerms } from './offer-policy.js'
import type { Ed25519Signer } from '../settlement/receipt.js'

/** The provider's secret key, or its peer id with a signer that holds the key. */
export type OfferSigningKey = Uint8Array | { provider: Uint8Array, sign: Ed25519Signer }

type Offer = dbc.task.v1.Offer

function signedPart (o: dbc.task.v1.IOffer): Uint8Array {
  return dbc.task.v1.Offer.encode(dbc.task.v1.Offer.create({ ...o, signature: new Uint8Array(0) })).finish()
}

export interface OfferIds {
  offerId: Uint8Array
  jobId: Uint8Array
  /** The provider's EVM payout address (0x…): the submitter's vouchers must name it. */
  payoutAddress?: string
  /** The payout key's EIP-712 signature over this peer (core/settlement/payout-binding.ts); offers only. */
  payoutBinding?: Uint8Array
}

/** An offer with terms, or a refusal (refusal text set, no terms), signed by the provider. */
export function signOffer (key: OfferSigningKey, ids: OfferIds, answer: { terms: OfferTerms } | { refusal: string }, now: number, refusalTtlMs = 5_000): Offer {
  const provider = key instanceof Uint8Array ? peerIdBytesFromEd25519Key(ed25519PublicKey(key)) : key.provider
  // the payout address goes in refusals too: who would be paid (a refusal for another chain names it)
  const payout = ids.payoutAddress !== undefined && ids.payoutAddress !== '' ? { payoutAddress: ids.payoutAddress } : {}
  const body: dbc.task.v1.IOffer = 'terms' in answer
    ? { offerId: ids.offerId, provider, jobId: ids.jobId, ...answer.terms, ...payout, ...(ids.payoutBinding !== undefined && ids.payoutBinding.length > 0 ? { payoutBinding: ids.payoutBinding } : {}) }
    : { offerId: ids.offerId, provider, jobId: ids.jobId, refusal: answer.refusal, expiresAt: now + refusalTtlMs, ...payout }
  const offer = dbc.task.v1.Offer.create(body)
  offer.signature = key instanceof Uint8Array ? signBytes(key, signedPart(offer)) : key.sign(signedPart(offer))
  return offer
}

/** `OFFER_FORGED`: not signed by the provider it names, or not by the peer that answered; `OFFER_EXPIRED`: too late. */
export type OfferCheck = { ok: true } | { ok: false, code: 'OFFER_FORGED' | 'OFFER_EXPIRED', reason: string }

/**
 * Checks the provider's signature and the expiry; a refusal verifies too (check `refusal`).
 * `expectedProvider`: the peer that answered (an offer is that peer's own, never one it replays).
 * `verify`: an Ed25519 verifier (default the pure-JS one; the daemon passes node:crypto's).
 */
export function verifyOffer (offer: dbc.task.v1.IOffer, now: number, expectedProvider?: Uint8Array, verify?: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean): OfferCheck {
  const provider = offer.provider ?? new Uint8Array(0)
  if (expectedProvider !== undefined && (provider.length !== expectedProvider.length || provider.some((b, i) => b !== expectedProvider[i]))) return { ok: false, code: 'OFFER_FORGED', reason: 'offer is from another provider' }
  const signature = offer.signature ?? new Uint8Array(0)
  const key = ed25519KeyFromPeerIdBytes(provider)
  const good = verify === undefined ? verifyByPeerId(provider, signedPart(offer), signature) : key !== undefined && signature.length === 64 && verify(key, signedPart(offer), signature)
  if (!good) return { ok: false, code: 'OFFER_FORGED', reason: 'offer signature does not verify against the provider key' }
  if ((offer.expiresAt ?? 0) <= now) return { ok: false, code: 'OFFER_EXPIRED', reason: 'offer has expired' }
  return { ok: true }
}
