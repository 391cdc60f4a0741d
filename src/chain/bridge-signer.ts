// What this node signs with its chain key, all EIP-712 under this chain's and contract's domain:
// vouchers (payer; recorded before they leave), lease authorisations (payer) and the payout
// binding (provider; signed once per peer and domain, then reused).
import { bytesToHex, hexToBytes } from 'viem'
import { voucherTypedData, type SignedVoucher, type Voucher } from '../core/settlement/voucher.js'
import { leaseAuthTypedData } from '../core/settlement/lease-auth.js'
import { payoutBindingTypedData } from '../core/settlement/payout-binding.js'
import { chainJobKey, type ChainJobIdInput } from './job-id.js'
import type { ChainLink } from './bridge-link.js'
import { checkedVoucher, type VoucherBook } from './vouchers.js'

export class BridgeSigner {
  private readonly link: ChainLink
  private readonly book: VoucherBook
  private readonly now: () => number
  /** Payout bindings signed, by chain, contract and peer (one per node in practice). */
  private readonly bindings = new Map<string, Uint8Array>()

  constructor (link: ChainLink, book: VoucherBook, now: () => number) {
    this.link = link
    this.book = book
    this.now = now
  }

  /**
   * Signs `v` with this node's key (EIP-712, this chain and contract) and records it as issued
   * before returning, so what leaves the node is always written down (a lower total than the
   * last one signed is signed but not recorded: totals on record never go down).
   */
  async signVoucher (v: Voucher): Promise<SignedVoucher> {
    const voucher = checkedVoucher(v)
    const domain = await this.link.domain()
    const account = this.link.connection().account
    const signature = await account.signTypedData(voucherTypedData(voucher, domain))
    const sv = { voucher, signature }
    this.book.recordIssued(sv, { payer: account.address, domain }, this.now())
    return sv
  }

  /**
   * Authorises `holder` (a libp2p peer id) to lease against job `jobId`'s escrow: providers admit a
   * lease only under this payer signature (core/settlement/lease-auth.ts). 65 bytes r‖s‖v.
   */
  async signLeaseAuth (jobId: ChainJobIdInput, holder: Uint8Array): Promise<Uint8Array> {
    const domain = await this.link.domain()
    return hexToBytes(await this.link.connection().account.signTypedData(leaseAuthTypedData(chainJobKey(jobId), holder, domain)))
  }

  /**
   * Proves this node's account is its payout address, for `peer` (this node's libp2p peer id
   * bytes) on this chain and contract: the offer carries it (core/settlement/payout-binding.ts).
   * Signed once per peer and domain, then reused. 65 bytes r‖s‖v.
   */
  async signPayoutBinding (peer: Uint8Array): Promise<Uint8Array> {
    const domain = await this.link.domain()
    const key = `${domain.chainId}:${domain.verifyingContract.toLowerCase()}:${bytesToHex(peer)}`
    const known = this.bindings.get(key)
    if (known !== undefined) return known
    const bytes = hexToBytes(await this.link.connection().account.signTypedData(payoutBindingTypedData(peer, domain)))
    this.bindings.set(key, bytes)
    return bytes
  }
}
