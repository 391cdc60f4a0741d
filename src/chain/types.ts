// Result shapes of the Bridge API (what the CLI and the control API print).
import type { SignedVoucher } from '../core/settlement/voucher.js'
import type { Address, Hex } from './config.js'
import type { RedeemState } from './outbox.js'

export interface BridgeStatus {
  kind: 'embedded' | 'rpc'
  chainId: number
  url?: string
  account: Address
  contract?: Address
  /** False when the chain could not be read just now (see lastError). */
  reachable: boolean
  block?: bigint
  /** Native balance of the bridge account, wei. */
  balance?: bigint
  stake?: { gpus: number, amount: bigint }
  networkGpus?: bigint
  /** Redeem transactions by state (provider side). */
  redeems: Record<RedeemState, number>
  /** Vouchers this node holds as a provider / signed as a payer. */
  vouchers: { received: number, issued: number }
  lastError?: { code: string, message: string, hint?: string }
}

/** A job's escrow as the contract holds it (`jobs(jobId)`), plus what follows from it. */
export interface EscrowView {
  chainJobId: Hex
  /** The zero address when no one deposited for the job. */
  payer: Address
  escrow: bigint
  paid: bigint
  /** escrow - paid, 0 once refunded: what vouchers can still draw on. */
  unspent: bigint
  /** Unix seconds (0 = none). */
  deadline: number
  /** Unix seconds the payer closed the job (0 = open). */
  closedAt: number
  /** Seconds after min(deadline, closedAt) during which the escrow stays for providers. */
  disputeWindow: number
  refunded: boolean
  /** Unix seconds from which the payer may refund (undefined while neither deadline nor close is set). */
  refundableAt?: number
}

export interface DepositResult { txHash: Hex, chainJobId: Hex, amount: bigint, escrow: bigint, blockNumber: bigint }
export interface StakeResult { txHash: Hex, provider: Address, gpus: number, amount: bigint, networkGpus: bigint }

/** What `acceptVoucher` decided. `code` tells a hostile voucher (charge the sender) from a late one. */
export type AcceptResult =
  | { ok: true, payer: Address, stored: boolean, previous?: bigint, voucher: SignedVoucher }
  | { ok: false, code: VoucherRefusal, reason: string }

/**
 * BAD_SIGNATURE, WRONG_PAYER (signed by someone other than the job's payer on chain),
 * WRONG_PROVIDER (for another payee): the sender's fault. NO_ESCROW: no one deposited for the job.
 * STALE: not above the stored voucher (a reordered or replayed delivery; harmless).
 */
export type VoucherRefusal = 'BAD_SIGNATURE' | 'WRONG_PAYER' | 'WRONG_PROVIDER' | 'NO_ESCROW' | 'STALE'

/** One job in `dbc earnings`: the latest voucher, what the chain paid, and what is still owed. */
export interface EarningsRow {
  chainJobId: Hex
  /** The job's id as its submitter (`dbc job list`) and this node's log name it, when a lease or invitation of this node named it. */
  jobId?: string
  /** Tasks (training: rounds) this node ran for the job and counted as delivered, from the provider's ledger. */
  tasks?: number
  payer: Address
  /** The latest voucher's cumulative total. */
  signed: bigint
  receiptCount: number
  /** redeemed(jobId, this provider) on chain. */
  redeemed: bigint
  /** signed - redeemed (0 if the chain holds more). */
  pending: bigint
  /** The job's unspent escrow, and whether it was refunded (then `pending` is lost). */
  unspent?: bigint
  refunded?: boolean
  /** Why pending value is not being redeemed (refunded, escrow used up, a revert), if it is not. */
  note?: string
  /** The redeem policy holds `pending` back: 'waiting' (below its gas multiple, more may come), 'not-worth' (no more than one redeem's gas). */
  hold?: 'waiting' | 'not-worth'
  receivedAt: number
}

export interface EarningsView {
  account: Address
  chainId: number
  contract?: Address
  jobs: EarningsRow[]
  totals: { signed: bigint, redeemed: bigint, pending: bigint }
  /** Redeem txs still in flight. */
  inFlight: number
  balance?: bigint
  stake?: { gpus: number, amount: bigint }
}

/** `dbc job settle JOB`: the submitter's view of a job's payments. */
export interface JobPaymentView extends EscrowView {
  /** This node's account (the job's payer when it deposited). */
  account: Address
  providers: Array<{ provider: Address, signed: bigint, receiptCount: number, redeemed: bigint, outstanding: bigint }>
  totals: { signed: bigint, redeemed: bigint }
  /** Whether a refund would succeed now (payer, not refunded, window over). */
  refundable: boolean
  /** What a refund would pay the payer now (escrow - paid). */
  refundAmount: bigint
}
