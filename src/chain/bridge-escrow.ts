// Reads of escrows on chain, for both sides: one job's escrow (kept `escrowCacheMs`), its payer
// (kept for good: the contract never changes it once set) and what it paid a provider. Both
// caches are bounded, since vouchers may name made-up jobs.
import type { VoucherDomain } from '../core/settlement/voucher.js'
import type { Address, Hex } from './config.js'
import { refundableAt } from './earnings.js'
import { chainJobKey, type ChainJobIdInput } from './job-id.js'
import type { ChainLink } from './bridge-link.js'
import type { EscrowView } from './types.js'
import type { VoucherBook } from './vouchers.js'

export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'
const MAX_CACHED_JOBS = 10_000

export class EscrowReads {
  private readonly link: ChainLink
  private readonly book: VoucherBook
  private readonly cacheMs: number
  private readonly now: () => number
  private readonly escrowCache = new Map<string, { at: number, view: EscrowView }>()
  /** Payer per chain job, as read from the chain (immutable there once set). */
  private readonly payers = new Map<string, Address>()

  constructor (link: ChainLink, book: VoucherBook, opts: { escrowCacheMs?: number, now: () => number }) {
    this.link = link
    this.book = book
    this.cacheMs = opts.escrowCacheMs ?? 2000
    this.now = opts.now
  }

  /** After a tx of this node's changed the escrow: the next read goes to the chain. */
  forget (escrowId: Hex): void {
    this.escrowCache.delete(escrowId)
  }

  /** The job's escrow on chain, reused for `escrowCacheMs` unless `fresh`. */
  async escrow (jobId: ChainJobIdInput, opts: { fresh?: boolean } = {}): Promise<EscrowView> {
    const key = chainJobKey(jobId)
    const hit = this.escrowCache.get(key)
    if (opts.fresh !== true && hit !== undefined && this.now() - hit.at < this.cacheMs) return hit.view
    const [payer, escrow, paid, deadline, closedAt, disputeWindow, refunded] = await this.link.read('jobs', [key])
    const view: EscrowView = {
      chainJobId: key,
      payer,
      escrow,
      paid,
      unspent: refunded ? 0n : escrow - paid,
      deadline: Number(deadline),
      closedAt: Number(closedAt),
      disputeWindow: Number(disputeWindow),
      refunded,
      refundableAt: payer.toLowerCase() === ZERO_ADDRESS ? undefined : refundableAt(Number(deadline), Number(closedAt), Number(disputeWindow))
    }
    // Bounded: vouchers naming made-up jobs must not grow the caches without end.
    if (this.escrowCache.size >= MAX_CACHED_JOBS) this.escrowCache.delete(this.escrowCache.keys().next().value as string)
    this.escrowCache.set(key, { at: this.now(), view })
    if (payer.toLowerCase() !== ZERO_ADDRESS) {
      if (this.payers.size >= MAX_CACHED_JOBS) this.payers.delete(this.payers.keys().next().value as string)
      this.payers.set(key, payer.toLowerCase() as Address)
    }
    return view
  }

  /** What the contract has paid `provider` (default this account) for the job so far. */
  async redeemed (jobId: ChainJobIdInput, provider?: Address): Promise<bigint> {
    return await this.link.read('redeemed', [chainJobKey(jobId), provider ?? this.link.connection().account.address])
  }

  /** The job's payer on chain (lower case), undefined when no one deposited; known payers unless `fresh`. */
  async payerOf (jobId: Hex, domain: VoucherDomain, fresh: boolean): Promise<Address | undefined> {
    // A job's payer never changes once set, so one read is enough (vouchers are checked even while the chain is down).
    const known = fresh ? undefined : this.payers.get(jobId) ?? this.book.received({ chainJobId: jobId }).find(v => v.domain.verifyingContract.toLowerCase() === domain.verifyingContract.toLowerCase() && v.domain.chainId === domain.chainId)?.payer
    let payer = known ?? (await this.escrow(jobId, { fresh })).payer.toLowerCase() as Address
    // A cached "no one deposited" may predate the deposit: read again before refusing.
    if (payer === ZERO_ADDRESS && !fresh) payer = (await this.escrow(jobId, { fresh: true })).payer.toLowerCase() as Address
    return payer === ZERO_ADDRESS ? undefined : payer
  }
}
