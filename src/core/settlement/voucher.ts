// Payer-signed cumulative vouchers (EIP-712): the only thing the Settlement contract pays
// against. The payer (job owner's EVM key) signs, per job and provider, the running total it
// owes; the provider alone redeems it on chain, which pays `cumulative - alreadyRedeemed` from
// the job's escrow. A newer voucher supersedes an older one, so replaying, reordering or
// resubmitting pays nothing twice. Pure: typed data, hashing and checks; signing is the chain's.
// The EIP-712 encoding is written out for this one struct (keccak + secp256k1 from @noble) so
// src/core stays free of I/O libraries; the contract test checks it against the contract's own.
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { secp256k1 } from '@noble/curves/secp256k1.js'

type Hex = `0x${string}`
type Address = `0x${string}`

/** EIP-712 domain name and version of contracts/Settlement.sol (v4: the voucher's escrow field is named escrowId). */
export const VOUCHER_DOMAIN_NAME = 'DBC Settlement'
export const VOUCHER_DOMAIN_VERSION = '4'

export const VOUCHER_TYPES = {
  Voucher: [
    { name: 'escrowId', type: 'bytes32' },
    { name: 'provider', type: 'address' },
    { name: 'cumulative', type: 'uint256' },
    { name: 'receiptsRoot', type: 'bytes32' },
    { name: 'receiptCount', type: 'uint32' }
  ]
} as const

export interface Voucher {
  /** The escrow id: keccak256(abi.encode(payer, keccak256(job id bytes))) (chainJobId in batch.ts). */
  escrowId: Hex
  /** The provider's payout address: the only account that may redeem it. */
  provider: Address
  /** Total owed to this provider from this escrow so far, in wei (never decreases). */
  cumulative: bigint
  /** Merkle root (core/settlement/merkle.ts) of the receipts this total covers; evidence only. */
  receiptsRoot: Hex
  receiptCount: number
}

export interface SignedVoucher { voucher: Voucher, signature: Hex }

export interface VoucherDomain { chainId: number, verifyingContract: Address }

export function voucherTypedData (v: Voucher, d: VoucherDomain) {
  return {
    domain: { name: VOUCHER_DOMAIN_NAME, version: VOUCHER_DOMAIN_VERSION, chainId: d.chainId, verifyingContract: d.verifyingContract },
    types: VOUCHER_TYPES,
    primaryType: 'Voucher' as const,
    message: { escrowId: v.escrowId, provider: v.provider, cumulative: v.cumulative, receiptsRoot: v.receiptsRoot, receiptCount: v.receiptCount }
  }
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
const DOMAIN_TYPEHASH = keccak256(utf8('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'))
const VOUCHER_TYPEHASH = keccak256(utf8('Voucher(bytes32 escrowId,address provider,uint256 cumulative,bytes32 receiptsRoot,uint32 receiptCount)'))

function hexBytes (h: string, len: number, what: string): Uint8Array {
  if (!/^0x[0-9a-fA-F]*$/.test(h) || h.length !== 2 + 2 * len) throw new Error(`${what}: expected ${len} bytes of 0x-hex`)
  const out = new Uint8Array(len)
  for (let i = 0; i < len; i++) out[i] = parseInt(h.slice(2 + 2 * i, 4 + 2 * i), 16)
  return out
}
/** A 32-byte big-endian word: an unsigned integer, or a shorter byte string left-padded (addresses). */
function word (v: bigint | number | Uint8Array): Uint8Array {
  const out = new Uint8Array(32)
  if (v instanceof Uint8Array) { out.set(v, 32 - v.length); return out }
  let x = BigInt(v)
  if (x < 0n || x >= 1n << 256n) throw new Error('uint256 out of range')
  for (let i = 31; i >= 0 && x > 0n; i--) { out[i] = Number(x & 0xffn); x >>= 8n }
  return out
}
function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) { out.set(p, at); at += p.length }
  return out
}
const toHex = (b: Uint8Array): Hex => `0x${Array.from(b, x => x.toString(16).padStart(2, '0')).join('')}`

/** The EIP-712 domain separator vouchers (and lease authorisations, lease-auth.ts) are signed under. */
export function domainSeparatorBytes (d: VoucherDomain): Uint8Array {
  return keccak256(concat(DOMAIN_TYPEHASH, keccak256(utf8(VOUCHER_DOMAIN_NAME)), keccak256(utf8(VOUCHER_DOMAIN_VERSION)), word(d.chainId), word(hexBytes(d.verifyingContract, 20, 'verifyingContract'))))
}

function digestBytes (v: Voucher, d: VoucherDomain): Uint8Array {
  const domainSeparator = domainSeparatorBytes(d)
  const structHash = keccak256(concat(VOUCHER_TYPEHASH, hexBytes(v.escrowId, 32, 'escrowId'), word(hexBytes(v.provider, 20, 'provider')), word(v.cumulative), hexBytes(v.receiptsRoot, 32, 'receiptsRoot'), word(v.receiptCount)))
  return keccak256(concat(new Uint8Array([0x19, 0x01]), domainSeparator, structHash))
}

/** The EIP-712 digest the payer signs and the contract recovers. */
export function voucherDigest (v: Voucher, d: VoucherDomain): Hex {
  return toHex(digestBytes(v, d))
}

const HALF_N = secp256k1.Point.CURVE().n >> 1n

/**
 * The address that signed `sv` (lower-case), or undefined when the signature is malformed:
 * 65 bytes r‖s‖v, v 27 or 28, low s (the contract's own rules, so a voucher this accepts pays).
 */
export async function voucherSigner (sv: SignedVoucher, d: VoucherDomain): Promise<Address | undefined> {
  try {
    return digestSigner(sv.signature, digestBytes(sv.voucher, d))
  } catch {
    return undefined
  }
}

/** The address whose 65-byte signature (r‖s‖v, v 27/28, low s) signed `digest`; undefined when malformed. */
export function digestSigner (signature: Hex, digest: Uint8Array): Address | undefined {
  try {
    const sig = hexBytes(signature, 65, 'signature')
    const v = sig[64]
    if (v !== 27 && v !== 28) return undefined
    const s = BigInt(toHex(sig.subarray(32, 64)))
    if (s === 0n || s > HALF_N) return undefined
    const recovered = concat(new Uint8Array([v - 27]), sig.subarray(0, 64))
    const pub = secp256k1.recoverPublicKey(recovered, digest, { prehash: false })
    const uncompressed = secp256k1.Point.fromBytes(pub).toBytes(false)
    return toHex(keccak256(uncompressed.subarray(1)).subarray(12))
  } catch {
    return undefined
  }
}

/** Whether `next` may replace `prev` for the same escrow and provider (totals never go down). */
export function supersedes (next: Voucher, prev: Voucher | undefined): boolean {
  if (prev === undefined) return true
  return next.escrowId.toLowerCase() === prev.escrowId.toLowerCase() &&
    next.provider.toLowerCase() === prev.provider.toLowerCase() &&
    next.cumulative > prev.cumulative
}
