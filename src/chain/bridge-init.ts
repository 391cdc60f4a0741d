// What a Bridge is built from (the node's store, data dir, chain, key, contract, loop timing,
// redeem policy) and the defaults of a first deposit.
import type { Store } from '../store/db.js'
import type { RedeemPolicy } from '../core/settlement/redeem-policy.js'
import type { Address, ChainConfig, Hex } from './config.js'

/** Defaults of a first deposit: the deadline one day after the chain's clock, an hour to dispute. */
export const DEFAULT_DEADLINE_S = 86_400
export const DEFAULT_DISPUTE_WINDOW_S = 3_600

export interface BridgeInit {
  /** The node's store: vouchers and the redeem outbox live here. */
  store: Store
  /** The node's data dir: the embedded chain (chain/embedded.sqlite) and key (chain/key). */
  dataDir?: string
  /** Default: the embedded EVM. */
  chain?: ChainConfig
  /** The EVM key; else `keyFile`; else DATADIR/chain/key (created on first use). */
  privateKey?: Hex
  keyFile?: string
  /** The Settlement contract; else the one this store recorded for the chain; else deployed. */
  contract?: Address
  /** Deploy the contract when none is known (default true). */
  deploy?: boolean
  /** Blocks a redeem needs on top of it before it counts (default 1 embedded, 2 RPC). */
  confirmations?: number
  /** Period of the redeem loop (ms, default 2000; 0 = no loop, call redeemNow). */
  tickMs?: number
  /** How long an escrow read is reused (ms, default 2000; `{ fresh: true }` bypasses it). */
  escrowCacheMs?: number
  /** Per RPC request (ms, default 10 000) and per wait for a one-shot tx (default 60 000). */
  requestTimeoutMs?: number
  txTimeoutMs?: number
  now?: () => number
  /**
   * How the contract is found when `contract` is not given: 'create2' = the deterministic
   * address every node of a shared chain computes (deployed there if absent, see deploy.ts);
   * 'deploy' (default) = the one this store recorded for the chain, else a fresh deploy.
   */
  addressing?: 'create2' | 'deploy'
  /** `--network local` only: top the key up from a public dev key when it runs low (faucet.ts). */
  faucet?: { belowWei: bigint, amountWei: bigint }
  /**
   * When the loop redeems (core/settlement/redeem-policy.ts): a voucher worth `minGasMultiple`
   * redeems' gas, or the job final or its refund near. Absent: every voucher with value, each tick.
   */
  redeemPolicy?: RedeemPolicy
  /** Fault injection for tests: runs once a redeem tx is written down, before its broadcast. */
  beforeBroadcast?: (redeemId: number, txHash: Hex) => void
  /** Fault injection for tests: runs right after a redeem tx was broadcast. */
  afterBroadcast?: (redeemId: number, txHash: Hex) => void
}
