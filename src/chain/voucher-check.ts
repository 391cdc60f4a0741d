// Checking a voucher a provider receives, against the chain and the voucher book. Nothing the
// sender says is trusted: the signer is recovered under this chain's EIP-712 domain and must be
// the job's payer as the contract records it; the voucher must name this node and raise the
// stored total. The answer tells a hostile voucher (charge the sender) from a late one.
import { voucherSigner, type SignedVoucher, type Voucher, type VoucherDomain } from '../core/settlement/voucher.js'
import type { Address, Hex } from './config.js'
import type { AcceptResult } from './types.js'
import { checkedVoucher, type VoucherBook } from './vouchers.js'

export interface VoucherCheckDeps {
  /** This node's payout address. */
  account: Address
  book: VoucherBook
  now: () => number
  domain: () => Promise<VoucherDomain>
  /** The job's payer on chain (lower case), undefined when no one deposited; cached unless `fresh`. */
  payerOf: (jobId: Hex, domain: VoucherDomain, fresh: boolean) => Promise<Address | undefined>
}

/** An address a caller in this process already recovered from a voucher, and the EIP-712 domain it recovered it under. */
export interface RecoveredSigner { address: string, domain: VoucherDomain }

const sameDomain = (a: VoucherDomain, b: VoucherDomain): boolean => a.chainId === b.chainId && a.verifyingContract.toLowerCase() === b.verifyingContract.toLowerCase()

export type VerifyResult = { ok: true, payer: Address } | { ok: false, code: 'BAD_SIGNATURE' | 'WRONG_PAYER' | 'NO_ESCROW', reason: string }

/**
 * `signer`: the address a caller in this process already recovered from `sv` (the provider's
 * payment gate), used instead of recovering it again (~1 ms each) only when it was recovered under
 * this chain's domain as `d` sees it now: a gate whose cached chain settings are another chain's
 * or another contract's gets its voucher's signer recovered again here.
 */
export async function verifyVoucherOnChain (d: VoucherCheckDeps, sv: SignedVoucher, opts: { fresh?: boolean, signer?: RecoveredSigner } = {}): Promise<VerifyResult> {
  let voucher: Voucher
  try {
    voucher = checkedVoucher(sv.voucher)
  } catch (err) {
    return { ok: false, code: 'BAD_SIGNATURE', reason: (err as Error).message }
  }
  const domain = await d.domain()
  const signer = opts.signer !== undefined && sameDomain(opts.signer.domain, domain) ? opts.signer.address.toLowerCase() : await voucherSigner({ voucher, signature: sv.signature }, domain)
  if (signer === undefined) return { ok: false, code: 'BAD_SIGNATURE', reason: 'the voucher signature is malformed' }
  const payer = await d.payerOf(voucher.escrowId, domain, opts.fresh === true)
  if (payer === undefined) return { ok: false, code: 'NO_ESCROW', reason: `no escrow for job ${voucher.escrowId} on chain ${domain.chainId}` }
  if (signer !== payer) return { ok: false, code: 'WRONG_PAYER', reason: `voucher signed by ${signer}, but the job's payer on chain is ${payer}` }
  return { ok: true, payer }
}

export async function acceptVoucherOnChain (d: VoucherCheckDeps, sv: SignedVoucher, opts: { signer?: RecoveredSigner } = {}): Promise<AcceptResult> {
  let voucher: Voucher
  try {
    voucher = checkedVoucher(sv.voucher)
  } catch (err) {
    return { ok: false, code: 'BAD_SIGNATURE', reason: (err as Error).message }
  }
  if (voucher.provider !== d.account.toLowerCase()) return { ok: false, code: 'WRONG_PROVIDER', reason: `the voucher pays ${voucher.provider}, not this node (${d.account})` }
  const previous = d.book.latest(voucher.escrowId, voucher.provider)
  const domain = await d.domain()
  const sameContract = previous !== undefined && sameDomain(previous.domain, domain)
  if (sameContract && voucher.cumulative <= previous.voucher.cumulative) {
    // A replay or a late delivery: answered from the store, so a flood of stale copies costs no chain reads.
    return { ok: false, code: 'STALE', reason: `the stored voucher for job ${voucher.escrowId} already holds ${previous.voucher.cumulative} wei (this one: ${voucher.cumulative})` }
  }
  const check = await verifyVoucherOnChain(d, { voucher, signature: sv.signature }, opts.signer !== undefined ? { signer: opts.signer } : {})
  if (!check.ok) return check
  const r = d.book.accept({ voucher, signature: sv.signature }, { payer: check.payer, domain }, d.now())
  if (!r.stored) return { ok: false, code: 'STALE', reason: `a voucher for job ${voucher.escrowId} at least as high arrived meanwhile` }
  return { ok: true, payer: check.payer, stored: true, previous: sameContract ? previous?.voucher.cumulative : undefined, voucher: { voucher, signature: sv.signature } }
}
