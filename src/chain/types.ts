// Result shapes of the Bridge API (what the CLI and the control API print).
import type { Payout } from '../core/settlement/index.js'
import type { Address, Hex } from './config.js'
import type { OutboxState } from './outbox.js'

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
  /** Payouts credited to this account in the contract, not withdrawn yet. */
  withdrawable?: bigint
  networkGpus?: bigint
  outbox: Record<OutboxState, number>
  /** Verified receipts not cut into a batch yet. */
  pendingReceipts: number
  lastError?: { code: string, message: string, hint?: string }
}

export interface DepositResult { txHash: Hex, chainJobId: Hex, amount: bigint, escrow: bigint, blockNumber: bigint }
export interface JobEscrow { chainJobId: Hex, owner: Address, deadline: number, ended: boolean, escrow: bigint }
export interface StakeResult { txHash: Hex, provider: Address, gpus: number, amount: bigint, networkGpus: bigint }

export interface SubmitResult {
  /** New receipts stored for settlement. */
  accepted: number
  /** Valid receipts already stored before (same receipt id). */
  duplicates: number
  rejected: Array<{ index: number, reason: string }>
}

export interface SettleResult {
  batchId: Hex
  state: OutboxState
  receiptCount: number
  total: bigint
  /** Aggregated payout per provider address, as submitted. */
  payouts: Payout[]
  /** After confirmation: what the contract credited, and withheld from unstaked providers. */
  paid?: Array<{ provider: Address, amount: bigint }>
  withheld?: Array<{ provider: Address, amount: bigint }>
  txHash?: Hex
  blockNumber?: number
  gasUsed?: bigint
  lastError?: string
}

export interface PayoutsView {
  provider: Address
  paid: Array<{ batchId: Hex, amount: bigint, txHash: Hex, blockNumber: bigint }>
  withheld: Array<{ batchId: Hex, amount: bigint, txHash: Hex, blockNumber: bigint }>
  totalPaid: bigint
  withdrawable: bigint
}
