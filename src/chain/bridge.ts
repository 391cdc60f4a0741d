// The chain bridge the daemon owns: escrow deposits, provider stake, and settlement of usage
// receipts through the durable outbox. `start()` connects (a chain that is down is reported in
// status, not thrown) and runs the batching/outbox loop every `tickMs`; `stop()` ends it.
import { join } from 'node:path'
import { parseEventLogs } from 'viem'
import type { Store } from '../store/db.js'
import { ChainError } from '../errors.js'
import { nodeSuite } from '../crypto/suite.js'
import { checkSignedReceipt, decideBatches, DEFAULT_BATCHING, chainJobId, type BatchingPolicy, type BatchReceipt, type SignedReceiptInput } from '../core/settlement/index.js'
import { settlementAbi, settlementBytecode } from './artifacts/settlement.js'
import { connectChain, verifyChain, type ChainConnection } from './client.js'
import { DEFAULT_CHAIN, type Address, type ChainConfig, type Hex } from './config.js'
import { toChainError } from './errors.js'
import { loadOrCreateKey, readKeyFile } from './keys.js'
import { hex, Outbox, type OutboxEntry } from './outbox.js'
import { SendQueue } from './sender.js'
import { advanceBatch } from './settler.js'
import type { BridgeStatus, DepositResult, JobEscrow, PayoutsView, SettleResult, StakeResult, SubmitResult } from './types.js'

export interface BridgeInit {
  /** The node's store: the outbox and pending receipts live here. */
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
  /** Blocks a settlement needs on top of it before it counts (default 1 embedded, 2 RPC). */
  confirmations?: number
  batching?: BatchingPolicy
  /** Period of the batching/outbox loop (ms, default 2000; 0 = no loop, call settleNow). */
  tickMs?: number
  /** Per RPC request (ms, default 10 000) and per wait for a one-shot tx (default 60 000). */
  requestTimeoutMs?: number
  txTimeoutMs?: number
  now?: () => number
  /**
   * Embedded chain only: before settling, stake 1 GPU (paid by this node's genesis-funded key)
   * for every payee that is not staked. Provider nodes can not reach this node's in-process
   * chain to stake themselves, so in the sandbox the job owner does it for them. Default false.
   */
  sandboxStake?: boolean
  /** Fault injection for tests: runs once a settlement tx is written down, before its broadcast. */
  beforeBroadcast?: (batchId: Hex, txHash: Hex) => void
  /** Fault injection for tests: runs right after a settlement tx was broadcast. */
  afterBroadcast?: (batchId: Hex, txHash: Hex) => void
}

/** A job id as the bridge takes it: bytes, or a string ('0x…' = hex bytes, else UTF-8). */
export type JobIdInput = Uint8Array | string

export function jobIdBytes (jobId: JobIdInput): Uint8Array {
  if (jobId instanceof Uint8Array) return jobId
  if (/^0x([0-9a-fA-F]{2})*$/.test(jobId)) return new Uint8Array(Buffer.from(jobId.slice(2), 'hex'))
  return new TextEncoder().encode(jobId)
}

export class Bridge {
  private readonly init: BridgeInit
  private readonly outbox: Outbox
  private conn?: ChainConnection
  private queue?: SendQueue
  private contractAddress?: Address
  private timer?: ReturnType<typeof setTimeout>
  private pumping?: Promise<void>
  private lastError?: ChainError
  private readonly now: () => number
  private readonly batching: BatchingPolicy

  constructor (init: BridgeInit) {
    this.init = init
    this.outbox = new Outbox(init.store)
    this.now = init.now ?? Date.now
    this.batching = init.batching ?? DEFAULT_BATCHING
  }

  async start (): Promise<void> {
    if (this.conn !== undefined) return
    const cfg = this.init.chain ?? DEFAULT_CHAIN
    const privateKey = this.init.privateKey ?? (this.init.keyFile !== undefined ? readKeyFile(this.init.keyFile) : loadOrCreateKey(join(this.init.dataDir ?? '.', 'chain', 'key')))
    this.conn = await connectChain(cfg, { privateKey, dataDir: this.init.dataDir, timeoutMs: this.init.requestTimeoutMs })
    this.queue = new SendQueue(this.conn)
    try {
      await this.ready()
    } catch (err) {
      this.lastError = toChainError(err, { action: 'starting the bridge', url: this.conn.url })
    }
    this.schedule()
  }

  async stop (): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    await this.pumping
    this.conn?.close()
    this.conn = undefined
  }

  get account (): Address { return this.connection().account.address }
  get contract (): Address | undefined { return this.contractAddress }
  get connectionInfo (): ChainConnection { return this.connection() }

  /** Checks the chain id and finds (or deploys) the contract. Idempotent. */
  async ready (): Promise<Address> {
    const conn = this.connection()
    if (this.contractAddress !== undefined) return this.contractAddress
    await verifyChain(conn)
    const key = `contract:${conn.chainId}:${conn.url ?? 'embedded'}`
    const candidate = this.init.contract ?? this.outbox.getMeta(key) as Address | undefined
    if (candidate !== undefined) {
      const code = await conn.publicClient.getCode({ address: candidate }).catch(err => { throw toChainError(err, { action: 'reading the contract code', url: conn.url }) })
      if (code !== undefined && code !== '0x') {
        this.contractAddress = candidate
        return candidate
      }
      if (this.init.contract !== undefined) throw new ChainError('CONTRACT_MISSING', `no Settlement contract at ${candidate} on chain ${conn.chainId}`, { hint: 'fix chain.contract, or leave it out to deploy one' })
    }
    if (this.init.deploy === false) throw new ChainError('CONTRACT_MISSING', `no Settlement contract known for chain ${conn.chainId}`, { hint: 'set chain.contract to the deployed address' })
    const queue = this.sendQueue()
    const receipt = await queue.sendAndWait(async () => await queue.signRaw({ data: settlementBytecode, value: 0n, action: 'deploying the Settlement contract' }), 'deploying the Settlement contract', this.waitOpts())
    if (receipt.contractAddress == null) throw new ChainError('CONTRACT_MISSING', 'the deploy transaction created no contract')
    this.contractAddress = receipt.contractAddress
    this.outbox.setMeta(key, receipt.contractAddress)
    return receipt.contractAddress
  }

  // ------------------------------------------------------------------ status and wallet

  async status (): Promise<BridgeStatus> {
    const conn = this.connection()
    const base: BridgeStatus = {
      kind: conn.kind,
      chainId: conn.chainId,
      url: conn.url,
      account: conn.account.address,
      contract: this.contractAddress,
      outbox: this.outbox.counts(),
      pendingReceipts: this.outbox.pendingReceiptCount(),
      lastError: this.lastError === undefined ? undefined : { code: this.lastError.code, message: this.lastError.message, hint: this.lastError.hint },
      reachable: false
    }
    try {
      const contract = await this.ready()
      const [block, balance, provider, withdrawable, networkGpus] = await Promise.all([
        conn.publicClient.getBlockNumber({ cacheTime: 0 }),
        conn.publicClient.getBalance({ address: conn.account.address }),
        conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'providers', args: [conn.account.address] }),
        conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'balances', args: [conn.account.address] }),
        conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'totalGpus' })
      ])
      return { ...base, contract, reachable: true, block, balance, stake: { gpus: provider[1], amount: provider[0] }, withdrawable, networkGpus }
    } catch (err) {
      const e = toChainError(err, { action: 'reading chain status', url: conn.url })
      return { ...base, lastError: { code: e.code, message: e.message, hint: e.hint } }
    }
  }

  // ------------------------------------------------------------------ escrow

  async deposit (jobId: JobIdInput, amount: bigint, opts: { deadline?: number } = {}): Promise<DepositResult> {
    const key = chainJobId(jobIdBytes(jobId))
    const receipt = await this.call('deposit', [key, BigInt(opts.deadline ?? 0)], amount, `depositing escrow for job ${key.slice(0, 10)}`)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'JobDeposited' })[0]
    return { txHash: receipt.transactionHash, chainJobId: key, amount, escrow: ev?.args.escrow ?? 0n, blockNumber: receipt.blockNumber }
  }

  async endJob (jobId: JobIdInput): Promise<{ txHash: Hex }> {
    const receipt = await this.call('endJob', [chainJobId(jobIdBytes(jobId))], 0n, 'ending the job')
    return { txHash: receipt.transactionHash }
  }

  async refund (jobId: JobIdInput): Promise<{ txHash: Hex, amount: bigint }> {
    const receipt = await this.call('refund', [chainJobId(jobIdBytes(jobId))], 0n, 'refunding escrow')
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'EscrowRefunded' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  async job (jobId: JobIdInput): Promise<JobEscrow> {
    const key = chainJobId(jobIdBytes(jobId))
    const [owner, deadline, ended, escrow] = await this.read('jobs', [key])
    return { chainJobId: key, owner, deadline: Number(deadline), ended, escrow }
  }

  // ------------------------------------------------------------------ stake

  /** The stake `gpus` more GPUs cost now, by the network's current GPU count. */
  async stakeQuote (gpus: number): Promise<{ networkGpus: bigint, amount: bigint }> {
    const [networkGpus, amount] = await Promise.all([this.read('totalGpus', []), this.read('stakeRequired', [gpus])])
    return { networkGpus, amount }
  }

  /** Stakes `gpus` GPUs for `provider` (default: this account), paying the quoted stake. */
  async stake (gpus: number, opts: { provider?: Address } = {}): Promise<StakeResult> {
    const provider = opts.provider ?? this.account
    const { amount } = await this.stakeQuote(gpus)
    const receipt = await this.call('stake', [provider, gpus], amount, `staking ${gpus} GPU(s)`)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'ProviderStaked' })[0]
    return { txHash: receipt.transactionHash, provider, gpus, amount: ev?.args.amount ?? amount, networkGpus: ev?.args.totalGpus ?? 0n }
  }

  async unstake (): Promise<{ txHash: Hex, amount: bigint }> {
    const receipt = await this.call('unstake', [], 0n, 'unstaking')
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'ProviderUnstaked' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  /** Moves this account's credited payouts into its wallet. */
  async withdraw (): Promise<{ txHash: Hex, amount: bigint }> {
    const receipt = await this.call('withdraw', [], 0n, 'withdrawing payouts')
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'Withdrawn' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  // ------------------------------------------------------------------ settlement

  /** Verifies and stores receipts of a job; batches are cut by the policy (or settleNow). */
  submitReceipts (jobId: JobIdInput, signed: SignedReceiptInput[]): SubmitResult {
    const id = jobIdBytes(jobId)
    const ok: BatchReceipt[] = []
    const rejected: SubmitResult['rejected'] = []
    signed.forEach((s, index) => {
      const check = checkSignedReceipt(s, { jobId: id, verify: nodeSuite.verify })
      if (check.ok) ok.push(check.batchReceipt)
      else rejected.push({ index, reason: check.reason })
    })
    const added = this.outbox.addReceipts(hex(id), ok, this.now())
    if (added > 0 && this.timer !== undefined) this.kick()
    return { accepted: added, duplicates: ok.length - added, rejected }
  }

  /** Cuts batches of everything pending for the job (all jobs if none given) and settles them. */
  async settleNow (jobId?: JobIdInput, opts: { signal?: AbortSignal, waitMs?: number } = {}): Promise<SettleResult[]> {
    const idHex = jobId === undefined ? undefined : hex(jobIdBytes(jobId))
    for (const p of this.outbox.pendingByJob()) {
      if (idHex !== undefined && p.jobId !== idHex) continue
      let left = p.count
      while (left > 0) {
        const b = this.outbox.cutBatch(p.jobId, this.batching.maxReceipts, this.now())
        if (b === undefined) break
        left -= b.receiptCount
      }
    }
    // Sent batches wait for their confirmations, up to `waitMs` (default: the tx timeout).
    const deadline = this.now() + (opts.waitMs ?? this.init.txTimeoutMs ?? 60_000)
    const poll = this.connection().kind === 'embedded' ? 5 : 100
    for (;;) {
      await this.pump(opts.signal)
      const open = this.outbox.unsettled(idHex)
      if (open.length === 0) break
      // Throw only for failures of this job's batches (another job's trouble is not ours).
      if (this.lastError !== undefined && open.some(e => e.lastError !== undefined)) throw this.lastError
      if (this.now() >= deadline || open.some(e => e.state === 'built')) break
      await sleep(poll, opts.signal)
    }
    return this.outbox.all(idHex).map(settleResult)
  }

  outboxEntries (jobId?: JobIdInput): OutboxEntry[] {
    return this.outbox.all(jobId === undefined ? undefined : hex(jobIdBytes(jobId)))
  }

  /** Payouts credited on chain to `provider` (default this account) and its withdrawable sum. */
  async payouts (opts: { provider?: Address, fromBlock?: bigint } = {}): Promise<PayoutsView> {
    const conn = this.connection()
    const provider = opts.provider ?? conn.account.address
    const contract = await this.ready()
    try {
      const [paid, withheld, withdrawable] = await Promise.all([
        conn.publicClient.getContractEvents({ address: contract, abi: settlementAbi, eventName: 'ProviderPaid', args: { provider }, fromBlock: opts.fromBlock ?? 0n }),
        conn.publicClient.getContractEvents({ address: contract, abi: settlementAbi, eventName: 'PayoutWithheld', args: { provider }, fromBlock: opts.fromBlock ?? 0n }),
        conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'balances', args: [provider] })
      ])
      const rows = (list: typeof paid | typeof withheld): PayoutsView['paid'] => list.map(e => ({ batchId: e.args.batchId as Hex, amount: e.args.amount as bigint, txHash: e.transactionHash, blockNumber: e.blockNumber }))
      const p = rows(paid)
      return { provider, paid: p, withheld: rows(withheld), totalPaid: p.reduce((s, x) => s + x.amount, 0n), withdrawable }
    } catch (err) {
      throw toChainError(err, { action: 'reading payouts', url: conn.url })
    }
  }

  // ------------------------------------------------------------------ the loop

  /** One pass: cut due batches, then move every unsettled batch forward (oldest first). */
  async pump (signal?: AbortSignal): Promise<void> {
    while (this.pumping !== undefined) await this.pumping
    this.pumping = this.pumpOnce(signal).finally(() => { this.pumping = undefined })
    await this.pumping
  }

  private async pumpOnce (signal?: AbortSignal): Promise<void> {
    const now = this.now()
    // Cut until nothing is due (a job far over maxReceipts yields several batches at once).
    for (let round = 0; round < 1000; round++) {
      const due = decideBatches(this.outbox.pendingByJob(), now, this.batching).due
      if (due.length === 0) break
      for (const d of due) this.outbox.cutBatch(d.jobId as Hex, d.take, now)
    }
    const entries = this.outbox.unsettled()
    if (entries.length === 0) { this.lastError = undefined; return }
    try {
      const contract = await this.ready()
      if (this.init.sandboxStake === true && this.connection().kind === 'embedded') await this.stakePayeesInSandbox(entries)
      const deps = { conn: this.connection(), outbox: this.outbox, queue: this.sendQueue(), contract, confirmations: this.confirmations(), now: this.now, beforeBroadcast: this.init.beforeBroadcast, afterBroadcast: this.init.afterBroadcast }
      let failure: ChainError | undefined
      for (const e of entries) {
        if (signal?.aborted === true) break
        try {
          await advanceBatch(deps, e)
        } catch (err) {
          const ce = toChainError(err, { action: `settling batch ${e.batchId.slice(0, 10)}`, url: this.conn?.url })
          this.outbox.markError(e.batchId, `${ce.code}: ${ce.message}`, this.now())
          failure ??= ce
          // A chain that is down fails every batch the same way: stop early, retry next tick.
          if (ce.code === 'CHAIN_UNREACHABLE' || ce.code === 'CHAIN_ID_MISMATCH') break
        }
      }
      this.lastError = failure
    } catch (err) {
      const ce = toChainError(err, { action: 'settling batches', url: this.conn?.url })
      this.lastError = ce
      for (const e of entries) this.outbox.markError(e.batchId, `${ce.code}: ${ce.message}`, this.now())
    }
  }

  private readonly sandboxStaked = new Set<string>()
  private async stakePayeesInSandbox (entries: OutboxEntry[]): Promise<void> {
    for (const e of entries) {
      for (const p of e.payouts) {
        const key = p.provider.toLowerCase()
        if (this.sandboxStaked.has(key)) continue
        if (!await this.read('isStaked', [p.provider])) await this.stake(1, { provider: p.provider })
        this.sandboxStaked.add(key)
      }
    }
  }

  private schedule (): void {
    const tick = this.init.tickMs ?? 2000
    if (tick <= 0) return
    this.timer = setTimeout(() => {
      this.pump().catch(() => {}).finally(() => { if (this.timer !== undefined) this.schedule() })
    }, tick)
    this.timer.unref?.()
  }

  private kick (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.pump().catch(() => {}).finally(() => { if (this.timer !== undefined) this.schedule() })
    }, 0)
    this.timer.unref?.()
  }

  // ------------------------------------------------------------------ helpers

  private connection (): ChainConnection {
    if (this.conn === undefined) throw new ChainError('BRIDGE_STOPPED', 'the chain bridge is not started', { hint: 'call bridge.start() first' })
    return this.conn
  }

  private sendQueue (): SendQueue {
    this.connection()
    return this.queue as SendQueue
  }

  private confirmations (): number {
    return this.init.confirmations ?? (this.connection().kind === 'embedded' ? 1 : 2)
  }

  private waitOpts (): { confirmations: number, timeoutMs: number } {
    return { confirmations: this.confirmations(), timeoutMs: this.init.txTimeoutMs ?? 60_000 }
  }

  private async read<const F extends 'jobs' | 'totalGpus' | 'stakeRequired' | 'settledRoot' | 'balances' | 'providers' | 'isStaked' | 'stakeForGpu'> (functionName: F, args: readonly unknown[]): Promise<ReadResult<F>> {
    const conn = this.connection()
    const address = await this.ready()
    try {
      return await conn.publicClient.readContract({ address, abi: settlementAbi, functionName, args } as never) as ReadResult<F>
    } catch (err) {
      throw toChainError(err, { action: `reading ${functionName}`, url: conn.url })
    }
  }

  private async call (functionName: 'deposit' | 'endJob' | 'refund' | 'stake' | 'unstake' | 'withdraw', args: readonly unknown[], value: bigint, action: string): Promise<import('viem').TransactionReceipt> {
    const address = await this.ready()
    const queue = this.sendQueue()
    return await queue.sendAndWait(async () => await queue.signCall({ address, abi: settlementAbi, functionName, args: args as never, value, action }), action, this.waitOpts())
  }
}

type ReadResult<F extends string> =
  F extends 'jobs' ? readonly [Address, bigint, boolean, bigint]
    : F extends 'providers' ? readonly [bigint, number]
      : F extends 'settledRoot' ? Hex
        : F extends 'isStaked' ? boolean
          : bigint

function settleResult (e: OutboxEntry): SettleResult {
  return {
    batchId: e.batchId,
    state: e.state,
    receiptCount: e.receiptCount,
    total: e.total,
    payouts: e.payouts,
    paid: e.paid,
    withheld: e.withheld,
    txHash: e.txHash,
    blockNumber: e.blockNumber,
    gasUsed: e.gasUsed,
    lastError: e.lastError
  }
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise(resolve => setTimeout(resolve, ms))
}
