// The bridge's hold on the chain: the connection and its send queue, the Settlement contract
// (found or deployed once, then kept), the chain's clock, and the contract's reads and calls,
// each failure turned into a ChainError. The last error seen is kept for `status()`.
import { join } from 'node:path'
import type { TransactionReceipt } from 'viem'
import { ChainError } from '../errors.js'
import type { VoucherDomain } from '../core/settlement/voucher.js'
import { settlementAbi } from './artifacts/settlement.js'
import { connectChain, verifyChain, type ChainConnection } from './client.js'
import { DEFAULT_CHAIN, type Address } from './config.js'
import { toChainError } from './errors.js'
import { deployPlain, ensureCreate2Settlement, hasCode } from './deploy.js'
import { topUpFromFaucet } from './faucet.js'
import { loadOrCreateKey, readKeyFile } from './keys.js'
import type { Outbox } from './outbox.js'
import { SendQueue } from './sender.js'
import type { BridgeInit } from './bridge-init.js'

export type ReadFunction = 'jobs' | 'totalGpus' | 'stakeRequired' | 'redeemed' | 'providers' | 'isStaked' | 'unspent' | 'refundableAt'
export type CallFunction = 'deposit' | 'close' | 'refund' | 'stake' | 'unstake'

export type ReadResult<F extends string> =
  F extends 'jobs' ? readonly [Address, bigint, bigint, bigint, bigint, number, boolean]
    : F extends 'providers' ? readonly [bigint, number]
      : F extends 'isStaked' ? boolean
        : bigint

export class ChainLink {
  private readonly init: BridgeInit
  /** Where the contract found for a chain is recorded (`deploy` addressing). */
  private readonly outbox: Outbox
  private conn?: ChainConnection
  private queue?: SendQueue
  private contractAddress?: Address
  private preparing?: Promise<Address>
  /** The last failure of start or of the redeem loop (undefined after a good pass). */
  lastError?: ChainError

  constructor (init: BridgeInit, outbox: Outbox) {
    this.init = init
    this.outbox = outbox
  }

  get isOpen (): boolean { return this.conn !== undefined }
  get contract (): Address | undefined { return this.contractAddress }
  get url (): string | undefined { return this.conn?.url }
  get sendQueueDepth (): number { return this.queue?.depth ?? 0 }

  /** Connects (no I/O on the RPC path: a chain that is down shows later, in `ready()`). */
  async open (): Promise<void> {
    const cfg = this.init.chain ?? DEFAULT_CHAIN
    const privateKey = this.init.privateKey ?? (this.init.keyFile !== undefined ? readKeyFile(this.init.keyFile) : loadOrCreateKey(join(this.init.dataDir ?? '.', 'chain', 'key')))
    this.conn = await connectChain(cfg, { privateKey, dataDir: this.init.dataDir, timeoutMs: this.init.requestTimeoutMs })
    this.queue = new SendQueue(this.conn)
  }

  close (): void {
    this.conn?.close()
    this.conn = undefined
  }

  connection (): ChainConnection {
    if (this.conn === undefined) throw new ChainError('BRIDGE_STOPPED', 'the chain bridge is not started', { hint: 'call bridge.start() first' })
    return this.conn
  }

  sendQueue (): SendQueue {
    this.connection()
    return this.queue as SendQueue
  }

  /** Checks the chain id, funds the key (local faucet) and finds (or deploys) the contract. Idempotent. */
  async ready (): Promise<Address> {
    this.connection()
    if (this.contractAddress !== undefined) return this.contractAddress
    // One preparation at a time: status, the loop and a stake may all ask at once.
    this.preparing ??= this.prepare().finally(() => { this.preparing = undefined })
    return await this.preparing
  }

  private async prepare (): Promise<Address> {
    const conn = this.connection()
    await verifyChain(conn)
    if (this.init.faucet !== undefined) await topUpFromFaucet(conn, this.init.faucet)
    if (this.init.contract !== undefined) {
      if (!await hasCode(conn, this.init.contract)) throw new ChainError('CONTRACT_MISSING', `no Settlement contract at ${this.init.contract} on chain ${conn.chainId}`, { hint: 'fix chain.contract, or leave it out to use the network\'s deterministic address' })
      this.contractAddress = this.init.contract
      return this.contractAddress
    }
    if (this.init.addressing === 'create2') {
      this.contractAddress = await ensureCreate2Settlement(conn, this.sendQueue(), this.waitOpts(), { deploy: this.init.deploy })
      return this.contractAddress
    }
    const key = `contract:${conn.chainId}:${conn.url ?? 'embedded'}`
    const recorded = this.outbox.getMeta(key) as Address | undefined
    if (recorded !== undefined && await hasCode(conn, recorded)) {
      this.contractAddress = recorded
      return recorded
    }
    if (this.init.deploy === false) throw new ChainError('CONTRACT_MISSING', `no Settlement contract known for chain ${conn.chainId}`, { hint: 'set chain.contract to the deployed address' })
    const address = await deployPlain(this.sendQueue(), this.waitOpts())
    this.contractAddress = address
    this.outbox.setMeta(key, address)
    return address
  }

  /** The EIP-712 domain vouchers of this chain and contract are signed under. */
  async domain (): Promise<VoucherDomain> {
    return { chainId: this.connection().chainId, verifyingContract: await this.ready() }
  }

  confirmations (): number {
    return this.init.confirmations ?? (this.connection().kind === 'embedded' ? 1 : 2)
  }

  waitOpts (): { confirmations: number, timeoutMs: number } {
    return { confirmations: this.confirmations(), timeoutMs: this.init.txTimeoutMs ?? 60_000 }
  }

  /** The chain's clock (latest block's timestamp, unix seconds): deadlines are judged by it. */
  async chainTime (): Promise<number> {
    const conn = this.connection()
    try {
      return Number((await conn.publicClient.getBlock({ blockTag: 'latest' })).timestamp)
    } catch (err) {
      throw toChainError(err, { action: 'reading the chain clock', url: conn.url })
    }
  }

  /** Native balance of `address` (default this account), wei. */
  async balance (address?: Address): Promise<bigint> {
    const conn = this.connection()
    try {
      return await conn.publicClient.getBalance({ address: address ?? conn.account.address })
    } catch (err) {
      throw toChainError(err, { action: 'reading a balance', url: conn.url })
    }
  }

  async read<const F extends ReadFunction> (functionName: F, args: readonly unknown[]): Promise<ReadResult<F>> {
    const conn = this.connection()
    const address = await this.ready()
    try {
      return await conn.publicClient.readContract({ address, abi: settlementAbi, functionName, args } as never) as ReadResult<F>
    } catch (err) {
      throw toChainError(err, { action: `reading ${functionName}`, url: conn.url })
    }
  }

  /** Sends one contract call through the send queue and waits for its receipt (`waitOpts`). */
  async call (functionName: CallFunction, args: readonly unknown[], value: bigint, action: string): Promise<TransactionReceipt> {
    const address = await this.ready()
    const queue = this.sendQueue()
    return await queue.sendAndWait(async () => await queue.signCall({ address, abi: settlementAbi, functionName, args: args as never, value, action }), action, this.waitOpts())
  }
}
