// Vouchers in the node's store. Provider side: the latest verified voucher per (chain job,
// provider), what the redeem loop turns into money. Payer side: the latest voucher this node
// signed per (chain job, provider), written before it leaves the node, so a payer that crashed
// resends (never lowers) what it promised and `dbc job settle` can show it. Both keep a
// voucher only when it supersedes the stored one (cumulative totals never go down).
import type { Store } from '../store/db.js'
import { ChainError } from '../errors.js'
import { supersedes, type SignedVoucher, type Voucher, type VoucherDomain } from '../core/settlement/voucher.js'
import type { Address, Hex } from './config.js'
import { CHAIN_MIGRATIONS } from './outbox.js'

export interface StoredVoucher extends SignedVoucher {
  /** The job's payer on chain when the voucher was checked (provider side) / this node (payer side). */
  payer: Address
  domain: VoucherDomain
  /** When it was received (provider side) or signed (payer side). */
  at: number
  /** Provider side: why the last redeem of it failed, if it did. */
  lastError?: string
}

interface VoucherRow {
  chain_job_id: Hex, provider: Address, payer: Address, cumulative: string, receipts_root: Hex, receipt_count: number,
  signature: Hex, chain_id: number, contract: Address, at: number, last_error?: string | null
}

type Side = 'received' | 'issued'
const TABLE: Record<Side, string> = { received: 'chain_vouchers', issued: 'chain_vouchers_issued' }
const AT: Record<Side, string> = { received: 'received_at', issued: 'signed_at' }

export class VoucherBook {
  constructor (private readonly store: Store) {
    store.migrate('chain', CHAIN_MIGRATIONS)
  }

  /** Provider side: the stored voucher of (job, provider), if any. */
  latest (chainJobId: Hex, provider: Address): StoredVoucher | undefined { return this.get('received', chainJobId, provider) }
  /** Payer side: the latest voucher this node signed for (job, provider). */
  latestIssued (chainJobId: Hex, provider: Address): StoredVoucher | undefined { return this.get('issued', chainJobId, provider) }

  /**
   * Keeps `sv` if it supersedes the stored voucher of its job and provider (one transaction, so
   * two racing deliveries can not lower the total). Returns whether it was stored.
   */
  accept (sv: SignedVoucher, meta: { payer: Address, domain: VoucherDomain }, now: number): { stored: boolean, previous?: StoredVoucher } {
    return this.put('received', sv, meta, now)
  }

  /** Payer side: records a voucher this node signed (kept only if it supersedes the last one). */
  recordIssued (sv: SignedVoucher, meta: { payer: Address, domain: VoucherDomain }, now: number): { stored: boolean, previous?: StoredVoucher } {
    return this.put('issued', sv, meta, now)
  }

  /** Provider side: every stored voucher (of one provider address, if given), oldest first. */
  received (opts: { provider?: Address, chainJobId?: Hex } = {}): StoredVoucher[] { return this.list('received', opts) }
  /** Payer side: the latest signed voucher per provider (of one job, if given). */
  issued (opts: { provider?: Address, chainJobId?: Hex } = {}): StoredVoucher[] { return this.list('issued', opts) }

  markError (chainJobId: Hex, provider: Address, error: string | undefined): void {
    this.store.db.prepare('UPDATE chain_vouchers SET last_error = ? WHERE chain_job_id = ? AND provider = ?').run(error ?? null, chainJobId.toLowerCase(), provider.toLowerCase())
  }

  private get (side: Side, chainJobId: Hex, provider: Address): StoredVoucher | undefined {
    const row = this.store.db.prepare(`SELECT *, ${AT[side]} AS at FROM ${TABLE[side]} WHERE chain_job_id = ? AND provider = ?`).get(chainJobId.toLowerCase(), provider.toLowerCase()) as VoucherRow | undefined
    return row === undefined ? undefined : fromRow(row)
  }

  private list (side: Side, opts: { provider?: Address, chainJobId?: Hex }): StoredVoucher[] {
    const where: string[] = []
    const args: string[] = []
    if (opts.provider !== undefined) { where.push('provider = ?'); args.push(opts.provider.toLowerCase()) }
    if (opts.chainJobId !== undefined) { where.push('chain_job_id = ?'); args.push(opts.chainJobId.toLowerCase()) }
    const sql = `SELECT *, ${AT[side]} AS at FROM ${TABLE[side]}${where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`} ORDER BY ${AT[side]}, chain_job_id, provider`
    return (this.store.db.prepare(sql).all(...args) as unknown as VoucherRow[]).map(fromRow)
  }

  private put (side: Side, sv: SignedVoucher, meta: { payer: Address, domain: VoucherDomain }, now: number): { stored: boolean, previous?: StoredVoucher } {
    const v = normalized(sv.voucher)
    return this.store.transaction(() => {
      const previous = this.get(side, v.escrowId, v.provider)
      const sameDomain = previous === undefined || (previous.domain.chainId === meta.domain.chainId && previous.domain.verifyingContract.toLowerCase() === meta.domain.verifyingContract.toLowerCase())
      // A voucher for another contract starts over: totals are per contract.
      if (sameDomain && !supersedes(v, previous?.voucher)) return { stored: false, previous }
      const extra = side === 'received' ? ', last_error' : ''
      this.store.db.prepare(`INSERT OR REPLACE INTO ${TABLE[side]} (chain_job_id, provider, payer, cumulative, receipts_root, receipt_count, signature, chain_id, contract, ${AT[side]}${side === 'received' ? ', updated_at' : ''}${extra}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?${side === 'received' ? ', ?, NULL' : ''})`)
        .run(v.escrowId, v.provider, meta.payer.toLowerCase(), v.cumulative.toString(), v.receiptsRoot, v.receiptCount, sv.signature, meta.domain.chainId, meta.domain.verifyingContract.toLowerCase(), now, ...(side === 'received' ? [now] : []))
      return { stored: true, previous }
    })
  }
}

/** Lower-case hex everywhere, so keys compare as strings. */
export function normalized (v: Voucher): Voucher {
  return { escrowId: v.escrowId.toLowerCase() as Hex, provider: v.provider.toLowerCase() as Address, cumulative: v.cumulative, receiptsRoot: v.receiptsRoot.toLowerCase() as Hex, receiptCount: v.receiptCount }
}

function fromRow (r: VoucherRow): StoredVoucher {
  return {
    voucher: { escrowId: r.chain_job_id, provider: r.provider, cumulative: BigInt(r.cumulative), receiptsRoot: r.receipts_root, receiptCount: r.receipt_count },
    signature: r.signature,
    payer: r.payer,
    domain: { chainId: r.chain_id, verifyingContract: r.contract },
    at: r.at,
    lastError: r.last_error ?? undefined
  }
}

/** A voucher with well-formed fields, hex in lower case; ChainError BAD_VOUCHER otherwise. */
export function checkedVoucher (v: Voucher): Voucher {
  const bad = (what: string): never => { throw new ChainError('BAD_VOUCHER', `voucher ${what}`) }
  if (typeof v !== 'object' || v === null) bad('is missing')
  if (typeof v.escrowId !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(v.escrowId)) bad('escrow id is not 32 bytes')
  if (typeof v.provider !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(v.provider)) bad('provider is not an address')
  if (typeof v.receiptsRoot !== 'string' || !/^0x[0-9a-fA-F]{64}$/.test(v.receiptsRoot)) bad('receipts root is not 32 bytes')
  if (typeof v.cumulative !== 'bigint' || v.cumulative < 0n || v.cumulative >= 1n << 256n) bad('cumulative is not a uint256')
  if (!Number.isInteger(v.receiptCount) || v.receiptCount < 0 || v.receiptCount > 0xffffffff) bad('receipt count is not a uint32')
  return normalized(v)
}
