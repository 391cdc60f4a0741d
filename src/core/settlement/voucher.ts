// Payer-signed cumulative vouchers (EIP-712): the only thing the Settlement contract pays
// against. The payer (job owner's EVM key) signs, per job and provider, the running total it
// owes; the provider alone redeems it on chain, which pays `cumulative - alreadyRedeemed` from
// the job's escrow. A newer voucher supersedes an older one, so replaying, reordering or
// resubmitting pays nothing twice. Pure: typed data, hashing and checks; signing is the chain's.
import { hashTypedData, recoverTypedDataAddress, type Hex, type Address } from 'viem'

/** EIP-712 domain name and version of contracts/Settlement.sol (v2: vouchers). */
export const VOUCHER_DOMAIN_NAME = 'DBC Settlement'
export const VOUCHER_DOMAIN_VERSION = '2'

export const VOUCHER_TYPES = {
  Voucher: [
    { name: 'jobId', type: 'bytes32' },
    { name: 'provider', type: 'address' },
    { name: 'cumulative', type: 'uint256' },
    { name: 'receiptsRoot', type: 'bytes32' },
    { name: 'receiptCount', type: 'uint32' }
  ]
} as const

export interface Voucher {
  /** On-chain job key: keccak256(job id bytes) (chainJobId). */
  jobId: Hex
  /** The provider's payout address: the only account that may redeem it. */
  provider: Address
  /** Total owed to this provider for this job so far, in wei (never decreases). */
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
    message: { jobId: v.jobId, provider: v.provider, cumulative: v.cumulative, receiptsRoot: v.receiptsRoot, receiptCount: v.receiptCount }
  }
}

/** The EIP-712 digest the payer signs and the contract recovers. */
export function voucherDigest (v: Voucher, d: VoucherDomain): Hex {
  return hashTypedData(voucherTypedData(v, d))
}

/** The address that signed `sv` (lower-case), or undefined when the signature is malformed. */
export async function voucherSigner (sv: SignedVoucher, d: VoucherDomain): Promise<Address | undefined> {
  try {
    return (await recoverTypedDataAddress({ ...voucherTypedData(sv.voucher, d), signature: sv.signature })).toLowerCase() as Address
  } catch {
    return undefined
  }
}

/** Whether `next` may replace `prev` for the same job and provider (totals never go down). */
export function supersedes (next: Voucher, prev: Voucher | undefined): boolean {
  if (prev === undefined) return true
  return next.jobId.toLowerCase() === prev.jobId.toLowerCase() &&
    next.provider.toLowerCase() === prev.provider.toLowerCase() &&
    next.cumulative > prev.cumulative
}
