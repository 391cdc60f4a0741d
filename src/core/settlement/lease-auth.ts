// The payer's authorisation of a lease holder (EIP-712, same domain as vouchers): without it any
// peer that learnt a job's id and payer could lease against that escrow, get work the payer never
// signs for, and leave the real payer PAYER_BEHIND at the provider (review H1). The submitter
// signs LeaseAuth{escrowId, holder = keccak256(holder peer id bytes)} once per job; the provider
// admits a lease only when it recovers to the escrow's on-chain payer. Pure, like voucher.ts.
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { domainSeparatorBytes, digestSigner, VOUCHER_DOMAIN_NAME, VOUCHER_DOMAIN_VERSION, type VoucherDomain } from './voucher.js'

type Hex = `0x${string}`

export const LEASE_AUTH_TYPES = {
  LeaseAuth: [
    { name: 'escrowId', type: 'bytes32' },
    { name: 'holder', type: 'bytes32' }
  ]
} as const

const LEASE_AUTH_TYPEHASH = keccak256(new TextEncoder().encode('LeaseAuth(bytes32 escrowId,bytes32 holder)'))
const toHex = (b: Uint8Array): Hex => `0x${Array.from(b, x => x.toString(16).padStart(2, '0')).join('')}`
const fromHex = (h: string): Uint8Array => {
  if (!/^0x[0-9a-fA-F]{64}$/.test(h)) throw new Error('expected 32 bytes of 0x-hex')
  return Uint8Array.from(h.slice(2).match(/../g)!, x => parseInt(x, 16))
}

/** keccak256 of the holder's libp2p peer id bytes: what LeaseAuth names. */
export function holderHash (holder: Uint8Array): Hex { return toHex(keccak256(holder)) }

/** The typed data a payer signs (viem `signTypedData`) to let `holder` lease against escrow `escrowId`. */
export function leaseAuthTypedData (escrowId: Hex, holder: Uint8Array, d: VoucherDomain) {
  return {
    domain: { name: VOUCHER_DOMAIN_NAME, version: VOUCHER_DOMAIN_VERSION, chainId: d.chainId, verifyingContract: d.verifyingContract },
    types: LEASE_AUTH_TYPES,
    primaryType: 'LeaseAuth' as const,
    message: { escrowId, holder: holderHash(holder) }
  }
}

/** The EIP-712 digest of LeaseAuth{escrowId, keccak256(holder)}. */
export function leaseAuthDigest (escrowId: Hex, holder: Uint8Array, d: VoucherDomain): Uint8Array {
  const structHash = keccak256(new Uint8Array([...LEASE_AUTH_TYPEHASH, ...fromHex(escrowId), ...keccak256(holder)]))
  return keccak256(new Uint8Array([0x19, 0x01, ...domainSeparatorBytes(d), ...structHash]))
}

/** Who authorised `holder` for escrow `escrowId` (lower-case address); undefined when the signature is malformed. */
export function leaseAuthSigner (escrowId: Hex, holder: Uint8Array, signature: Uint8Array, d: VoucherDomain): `0x${string}` | undefined {
  // a signer recovered before from these very inputs (a provider checks the holder's authorisation
  // on every lease of a job: a secp256k1 recovery, ~1 ms); what recovered none is not held
  const id = signature.length === 65 && holder.length <= 128 ? `${escrowId}|${toHex(holder)}|${toHex(signature)}|${d.chainId}|${d.verifyingContract}` : undefined
  const held = id === undefined ? undefined : recovered.get(id)
  if (held !== undefined) return held
  const signer = recoverSigner(escrowId, holder, signature, d)
  if (signer !== undefined && id !== undefined) {
    if (recovered.size >= RECOVERED_MAX) recovered.clear()
    recovered.set(id, signer)
  }
  return signer
}

/** Signers leaseAuthSigner recovered, by all its inputs: at most this many (then forgotten). */
const RECOVERED_MAX = 1024
const recovered = new Map<string, `0x${string}`>()

function recoverSigner (escrowId: Hex, holder: Uint8Array, signature: Uint8Array, d: VoucherDomain): `0x${string}` | undefined {
  try {
    if (signature.length !== 65) return undefined
    return digestSigner(toHex(signature), leaseAuthDigest(escrowId, holder, d))
  } catch {
    return undefined
  }
}
