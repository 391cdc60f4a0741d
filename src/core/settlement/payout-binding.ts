// A provider's proof that it holds its payout address: PayoutBinding{peer = keccak256(libp2p peer
// id bytes)} signed (EIP-712, the Settlement domain: this chain id and contract) by the payout
// address's own key, carried in the signed offer (Offer.payout_binding). Without it the payout
// address is only a claim, and a stranger could name a victim's address first in a job (its
// work would merge into, and its forfeit would hit, the victim's total). With it, two peers
// share an address only when the key holder signed for both. Pure, like voucher.ts.
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { domainSeparatorBytes, digestSigner, VOUCHER_DOMAIN_NAME, VOUCHER_DOMAIN_VERSION, type VoucherDomain } from './voucher.js'

type Hex = `0x${string}`

export const PAYOUT_BINDING_TYPES = {
  PayoutBinding: [
    { name: 'peer', type: 'bytes32' }
  ]
} as const

const PAYOUT_BINDING_TYPEHASH = keccak256(new TextEncoder().encode('PayoutBinding(bytes32 peer)'))
const toHex = (b: Uint8Array): Hex => `0x${Array.from(b, x => x.toString(16).padStart(2, '0')).join('')}`

/** The typed data the payout address's key signs (viem `signTypedData`) for peer `peer` (its id bytes). */
export function payoutBindingTypedData (peer: Uint8Array, d: VoucherDomain) {
  return {
    domain: { name: VOUCHER_DOMAIN_NAME, version: VOUCHER_DOMAIN_VERSION, chainId: d.chainId, verifyingContract: d.verifyingContract },
    types: PAYOUT_BINDING_TYPES,
    primaryType: 'PayoutBinding' as const,
    message: { peer: toHex(keccak256(peer)) }
  }
}

/** The EIP-712 digest of PayoutBinding{keccak256(peer)}. */
export function payoutBindingDigest (peer: Uint8Array, d: VoucherDomain): Uint8Array {
  const structHash = keccak256(new Uint8Array([...PAYOUT_BINDING_TYPEHASH, ...keccak256(peer)]))
  return keccak256(new Uint8Array([0x19, 0x01, ...domainSeparatorBytes(d), ...structHash]))
}

export type PayoutBindingCheck = { ok: true, payout: Hex } | { ok: false, code: 'PAYOUT_NOT_BOUND', reason: string }

/**
 * Whether `payout` signed a binding to `peer` on domain `d` (65 bytes r‖s‖v, low s). Never throws:
 * a missing, malformed or foreign binding is a refusal with its reason.
 */
export function checkPayoutBinding (peer: Uint8Array, payout: string, binding: Uint8Array | null | undefined, d: VoucherDomain): PayoutBindingCheck {
  // a binding found good before for these very inputs (each lease round and each payee of a job
  // checks its provider's again: a secp256k1 recovery, ~1 ms); refusals are not held
  const id = binding?.length === 65 && peer.length > 0 && peer.length <= 128 ? `${toHex(peer)}|${payout}|${toHex(binding)}|${d.chainId}|${d.verifyingContract}` : undefined
  const held = id === undefined ? undefined : goodBindings.get(id)
  if (held !== undefined) return { ok: true, payout: held }
  const c = checkBinding(peer, payout, binding, d)
  if (c.ok && id !== undefined) {
    if (goodBindings.size >= GOOD_BINDINGS_MAX) goodBindings.clear()
    goodBindings.set(id, c.payout)
  }
  return c
}

/** Bindings checked good (checkPayoutBinding), by all their inputs: at most this many (then forgotten). */
const GOOD_BINDINGS_MAX = 1024
const goodBindings = new Map<string, Hex>()

function checkBinding (peer: Uint8Array, payout: string, binding: Uint8Array | null | undefined, d: VoucherDomain): PayoutBindingCheck {
  const refuse = (why: string): PayoutBindingCheck => ({ ok: false, code: 'PAYOUT_NOT_BOUND', reason: `payout address ${payout.slice(0, 42)} is not bound to this provider: ${why}` })
  if (!/^0x[0-9a-fA-F]{40}$/.test(payout)) return refuse('it is not a 20-byte 0x address')
  if (peer.length === 0) return refuse('the offer names no provider')
  if (binding == null || binding.length === 0) return refuse('the offer carries no payout binding (Offer.payout_binding)')
  if (binding.length !== 65) return refuse(`the binding is ${binding.length} bytes, not 65`)
  let signer: Hex | undefined
  try {
    signer = digestSigner(toHex(binding), payoutBindingDigest(peer, d))
  } catch {
    signer = undefined
  }
  if (signer === undefined) return refuse('the binding signature is malformed')
  if (signer !== payout.toLowerCase()) return refuse(`the binding is signed by ${signer} (for another peer, chain or contract)`)
  return { ok: true, payout: signer }
}

/** The EIP-712 domain a job's payment terms name (its chain id and Settlement contract); undefined when malformed. */
export function domainOfTerms (terms: { chainId?: number | null, contract?: Uint8Array | null } | null | undefined): VoucherDomain | undefined {
  if (terms == null || terms.contract == null || terms.contract.length !== 20) return undefined
  const chainId = Number(terms.chainId ?? 0)
  if (!Number.isSafeInteger(chainId) || chainId <= 0) return undefined
  return { chainId, verifyingContract: toHex(terms.contract) }
}
