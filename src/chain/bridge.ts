// The chain bridge the daemon owns: escrow (deposit, close, refund) and voucher signing for the
// payer; voucher checks, the voucher book and the redeem loop for the provider; stake; reads of
// escrow, redemptions and earnings. `start()` connects (a chain that is down is reported in
// status, not thrown) and runs the redeem loop every `tickMs`; `stop()` ends it.
import { join } from 'node:path'
import { encodeFunctionData, parseEventLogs } from 'viem'
import type { Store } from '../store/db.js'
import { ChainError } from '../errors.js'
import { voucherTypedData, type SignedVoucher, type Voucher, type VoucherDomain } from '../core/settlement/voucher.js'
import { settlementAbi } from './artifacts/settlement.js'
import { connectChain, verifyChain, type ChainConnection } from './client.js'
import { DEFAULT_CHAIN, type Address, type ChainConfig, type Hex } from './config.js'
import { toChainError } from './errors.js'
import { deployPlain, ensureCreate2Settlement, hasCode } from './deploy.js'
import { topUpFromFaucet } from './faucet.js'
import { loadOrCreateKey, readKeyFile } from './keys.js'
import { Outbox, type RedeemEntry, type RedeemState } from './outbox.js'
import { SendQueue } from './sender.js'
import { redeemTick, voucherKey, type RedeemTick } from './redeemer.js'
import { leaseAuthTypedData } from '../core/settlement/lease-auth.js'
import { payoutBindingTypedData } from '../core/settlement/payout-binding.js'
import { checkedVoucher, VoucherBook, type StoredVoucher } from './vouchers.js'
import { acceptVoucherOnChain, verifyVoucherOnChain, type VerifyResult, type VoucherCheckDeps } from './voucher-check.js'
import { chainJobKey, escrowIdOf, type ChainJobIdInput } from './job-id.js'
import { earningsRows, earningsTotals, jobPaymentView, refundableAt } from './earnings.js'
import type { RedeemPolicy } from '../core/settlement/redeem-policy.js'
import type { AcceptResult, BridgeStatus, DepositResult, EarningsView, EscrowView, JobPaymentView, StakeResult } from './types.js'

/** Defaults of a first deposit: the deadline one day after the chain's clock, an hour to dispute. */
export const DEFAULT_DEADLINE_S = 86_400
export const DEFAULT_DISPUTE_WINDOW_S = 3_600
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'
const MAX_CACHED_JOBS = 10_000

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

export { jobIdBytes, chainJobIdOf, jobHashOf, escrowIdOf, chainJobKey, type JobIdInput, type ChainJobIdInput } from './job-id.js'

export class Bridge {
  private readonly init: BridgeInit
  private readonly outbox: Outbox
  readonly vouchers: VoucherBook
  private conn?: ChainConnection
  private queue?: SendQueue
  private contractAddress?: Address
  private timer?: ReturnType<typeof setTimeout>
  private pumping?: Promise<RedeemTick | undefined>
  private lastError?: ChainError
  private lastTick?: RedeemTick
  private readonly now: () => number
  private readonly escrowCache = new Map<string, { at: number, view: EscrowView }>()
  private readonly settled = new Map<string, bigint>()
  /** Vouchers the redeem policy holds back, and why (for `dbc earnings`). */
  private readonly holds = new Map<string, { state: 'waiting' | 'not-worth', reason: string }>()
  private gasCache?: { gasAt: number, gas: bigint, priceAt: number, price: bigint }
  /** Payer per chain job, as read from the chain (immutable there once set). */
  private readonly payers = new Map<string, Address>()
  /** Payout bindings signed, by chain, contract and peer (one per node in practice). */
  private readonly bindings = new Map<string, Uint8Array>()

  constructor (init: BridgeInit) {
    this.init = init
    this.outbox = new Outbox(init.store)
    this.vouchers = new VoucherBook(init.store)
    this.now = init.now ?? Date.now
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

  /** Checks the chain id, funds the key (local faucet) and finds (or deploys) the contract. Idempotent. */
  async ready (): Promise<Address> {
    this.connection()
    if (this.contractAddress !== undefined) return this.contractAddress
    // One preparation at a time: status, the loop and a stake may all ask at once.
    this.preparing ??= this.prepare().finally(() => { this.preparing = undefined })
    return await this.preparing
  }

  private preparing?: Promise<Address>
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

  // ------------------------------------------------------------------ status and wallet

  async status (): Promise<BridgeStatus> {
    const conn = this.connection()
    const base: BridgeStatus = {
      kind: conn.kind,
      chainId: conn.chainId,
      url: conn.url,
      account: conn.account.address,
      contract: this.contractAddress,
      redeems: this.outbox.counts(),
      vouchers: { received: this.vouchers.received({ provider: conn.account.address }).length, issued: this.vouchers.issued().length },
      lastError: this.lastError === undefined ? undefined : { code: this.lastError.code, message: this.lastError.message, hint: this.lastError.hint },
      reachable: false
    }
    try {
      const contract = await this.ready()
      const [block, balance, stake, networkGpus] = await Promise.all([
        conn.publicClient.getBlockNumber({ cacheTime: 0 }),
        this.balance(),
        this.stakeOf(),
        conn.publicClient.readContract({ address: contract, abi: settlementAbi, functionName: 'totalGpus' })
      ])
      return { ...base, contract, reachable: true, block, balance, stake, networkGpus }
    } catch (err) {
      const e = toChainError(err, { action: 'reading chain status', url: conn.url })
      return { ...base, lastError: { code: e.code, message: e.message, hint: e.hint } }
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

  /** What `provider` (default this account) has staked. */
  async stakeOf (provider?: Address): Promise<{ gpus: number, amount: bigint }> {
    const [amount, gpus] = await this.read('providers', [provider ?? this.account])
    return { gpus, amount }
  }

  // ------------------------------------------------------------------ escrow (payer)

  /**
   * Locks `amount` wei for the job whose hash is `jobHash` (jobHashOf(jobId)), in this account's
   * escrow for it (escrow id escrowIdOf(account, jobHash): returned as `chainJobId`). The first
   * deposit fixes the dispute window (seconds, 60 s to 30 days); `deadline` is unix seconds
   * (default: a day after the chain's clock). Later deposits top up and may extend the deadline.
   */
  async deposit (jobHash: ChainJobIdInput, amount: bigint, opts: { deadline?: number, disputeWindow?: number } = {}): Promise<DepositResult> {
    const hash = chainJobKey(jobHash)
    const key = escrowIdOf(this.account, hash)
    const deadline = opts.deadline ?? await this.chainTime() + DEFAULT_DEADLINE_S
    const receipt = await this.call('deposit', [hash, BigInt(deadline), opts.disputeWindow ?? DEFAULT_DISPUTE_WINDOW_S], amount, `depositing escrow for job ${hash.slice(0, 10)}`)
    this.escrowCache.delete(key)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'JobDeposited' })[0]
    return { txHash: receipt.transactionHash, chainJobId: key, amount, escrow: ev?.args.escrow ?? 0n, blockNumber: receipt.blockNumber }
  }

  /** No more work for the escrow (its id): the refund clock starts (idempotent). */
  async close (jobId: ChainJobIdInput): Promise<{ txHash: Hex }> {
    const key = chainJobKey(jobId)
    const receipt = await this.call('close', [key], 0n, `closing job ${key.slice(0, 10)}`)
    this.escrowCache.delete(key)
    return { txHash: receipt.transactionHash }
  }

  /** Takes the unspent escrow back; reverts (DisputeWindowOpen) before min(deadline, close) + window. */
  async refund (jobId: ChainJobIdInput): Promise<{ txHash: Hex, amount: bigint }> {
    const key = chainJobKey(jobId)
    const receipt = await this.call('refund', [key], 0n, `refunding escrow of job ${key.slice(0, 10)}`)
    this.escrowCache.delete(key)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'EscrowRefunded' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  /** The job's escrow on chain, reused for `escrowCacheMs` unless `fresh`. */
  async escrow (jobId: ChainJobIdInput, opts: { fresh?: boolean } = {}): Promise<EscrowView> {
    const key = chainJobKey(jobId)
    const hit = this.escrowCache.get(key)
    if (opts.fresh !== true && hit !== undefined && this.now() - hit.at < (this.init.escrowCacheMs ?? 2000)) return hit.view
    const [payer, escrow, paid, deadline, closedAt, disputeWindow, refunded] = await this.read('jobs', [key])
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
    return await this.read('redeemed', [chainJobKey(jobId), provider ?? this.account])
  }

  // ------------------------------------------------------------------ vouchers

  /**
   * Signs `v` with this node's key (EIP-712, this chain and contract) and records it as issued
   * before returning, so what leaves the node is always written down (a lower total than the
   * last one signed is signed but not recorded: totals on record never go down).
   */
  async signVoucher (v: Voucher): Promise<SignedVoucher> {
    const voucher = checkedVoucher(v)
    const domain = await this.domain()
    const signature = await this.connection().account.signTypedData(voucherTypedData(voucher, domain))
    const sv = { voucher, signature }
    this.vouchers.recordIssued(sv, { payer: this.account, domain }, this.now())
    return sv
  }

  /**
   * Authorises `holder` (a libp2p peer id) to lease against job `jobId`'s escrow: providers admit a
   * lease only under this payer signature (core/settlement/lease-auth.ts). 65 bytes r‖s‖v.
   */
  async signLeaseAuth (jobId: ChainJobIdInput, holder: Uint8Array): Promise<Uint8Array> {
    const domain = await this.domain()
    const sig = await this.connection().account.signTypedData(leaseAuthTypedData(chainJobKey(jobId), holder, domain))
    return Uint8Array.from(sig.slice(2).match(/../g)!, x => parseInt(x, 16))
  }

  /**
   * Proves this node's account is its payout address, for `peer` (this node's libp2p peer id
   * bytes) on this chain and contract: the offer carries it (core/settlement/payout-binding.ts).
   * Signed once per peer and domain, then reused. 65 bytes r‖s‖v.
   */
  async signPayoutBinding (peer: Uint8Array): Promise<Uint8Array> {
    const domain = await this.domain()
    const key = `${domain.chainId}:${domain.verifyingContract.toLowerCase()}:${Buffer.from(peer).toString('hex')}`
    const known = this.bindings.get(key)
    if (known !== undefined) return known
    const sig = await this.connection().account.signTypedData(payoutBindingTypedData(peer, domain))
    const bytes = Uint8Array.from(sig.slice(2).match(/../g)!, x => parseInt(x, 16))
    this.bindings.set(key, bytes)
    return bytes
  }

  /** Checks `sv` against this chain: its signer must be the job's payer on chain. */
  async verifyVoucher (sv: SignedVoucher, opts: { fresh?: boolean } = {}): Promise<VerifyResult> {
    return await verifyVoucherOnChain(this.checkDeps(), sv, opts)
  }

  /**
   * Provider side: checks `sv` (signed by the job's payer on chain, naming this node as the
   * provider) and keeps it if it supersedes the stored one; the redeem loop pays it out.
   * A chain that can not be read throws ChainError (nobody's fault, try again).
   */
  async acceptVoucher (sv: SignedVoucher): Promise<AcceptResult> {
    return await acceptVoucherOnChain(this.checkDeps(), sv)
  }

  private checkDeps (): VoucherCheckDeps {
    return {
      account: this.account,
      book: this.vouchers,
      now: this.now,
      domain: async () => await this.domain(),
      payerOf: async (jobId, domain, fresh) => {
        // A job's payer never changes once set, so one read is enough (vouchers are checked even while the chain is down).
        const known = fresh ? undefined : this.payers.get(jobId) ?? this.vouchers.received({ chainJobId: jobId }).find(v => v.domain.verifyingContract.toLowerCase() === domain.verifyingContract.toLowerCase() && v.domain.chainId === domain.chainId)?.payer
        let payer = known ?? (await this.escrow(jobId, { fresh })).payer.toLowerCase() as Address
        // A cached "no one deposited" may predate the deposit: read again before refusing.
        if (payer === ZERO_ADDRESS && !fresh) payer = (await this.escrow(jobId, { fresh: true })).payer.toLowerCase() as Address
        return payer === ZERO_ADDRESS ? undefined : payer
      }
    }
  }

  // ------------------------------------------------------------------ earnings and views

  /** Provider side: per job the latest voucher, what the chain redeemed, what is pending. */
  async earnings (): Promise<EarningsView> {
    const conn = this.connection()
    const domain = await this.domain()
    const mine = this.vouchers.received({ provider: conn.account.address }).filter(v => v.domain.verifyingContract.toLowerCase() === domain.verifyingContract.toLowerCase() && v.domain.chainId === domain.chainId)
    const reads = { redeemed: async (j: Hex, p: Address) => await this.redeemed(j, p), escrow: async (j: Hex) => await this.escrow(j) }
    const [rows, balance, stake] = await Promise.all([earningsRows(mine, conn.account.address, reads), this.balance(), this.stakeOf()])
    // What the redeem policy held back on its last pass, and why (gas would eat it, or it waits to grow).
    const jobs = rows.map(r => {
      const h = r.pending > 0n && r.note === undefined ? this.holds.get(voucherKey(r.chainJobId, conn.account.address)) : undefined
      return h === undefined ? r : { ...r, hold: h.state, note: h.reason }
    })
    return { account: conn.account.address, chainId: conn.chainId, contract: domain.verifyingContract, jobs, totals: earningsTotals(jobs), inFlight: this.outbox.counts().sent, balance, stake }
  }

  /** Payer side (`dbc job settle`): escrow, what this node signed per provider, what each redeemed. */
  async jobPayments (jobId: ChainJobIdInput): Promise<JobPaymentView> {
    const key = chainJobKey(jobId)
    const esc = await this.escrow(key, { fresh: true })
    const issued = this.vouchers.issued({ chainJobId: key })
    return await jobPaymentView(esc, issued, this.account, { redeemed: async (j, p) => await this.redeemed(j, p) }, await this.chainTime())
  }

  /** Provider side: the stored vouchers (all of this account's, or of one job). */
  receivedVouchers (jobId?: ChainJobIdInput): StoredVoucher[] {
    return this.vouchers.received({ provider: this.account, chainJobId: jobId === undefined ? undefined : chainJobKey(jobId) })
  }

  /** Recent redeem transactions, newest first (of one job, if given). */
  redeemHistory (jobId?: ChainJobIdInput, limit = 50): RedeemEntry[] {
    return this.outbox.recent(limit, jobId === undefined ? undefined : chainJobKey(jobId))
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

  /** Withdraws all of this account's stake (no redeeming until it stakes again). */
  async unstake (): Promise<{ txHash: Hex, amount: bigint }> {
    const receipt = await this.call('unstake', [], 0n, 'unstaking')
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'ProviderUnstaked' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  // ------------------------------------------------------------------ the redeem loop

  /**
   * Runs the redeem loop until nothing redeemable is left and no redeem tx is in flight, or for
   * `waitMs` (default: the tx timeout). Throws the loop's ChainError when a tick fails.
   */
  async redeemNow (opts: { signal?: AbortSignal, waitMs?: number, force?: boolean } = {}): Promise<RedeemTick> {
    const deadline = this.now() + (opts.waitMs ?? this.init.txTimeoutMs ?? 60_000)
    const poll = this.connection().kind === 'embedded' ? 5 : 100
    for (;;) {
      // Asked by the operator: what beats its gas goes now (the loop alone waits for more).
      const tick = await this.pump(opts.signal, opts.force ?? true)
      if (tick === undefined) throw this.lastError ?? new ChainError('CHAIN_ERROR', 'the redeem loop failed')
      if (tick.inFlight === undefined && tick.redeemable === 0) return tick
      if (this.now() >= deadline) return tick
      await sleep(poll, opts.signal)
    }
  }

  /** One pass of the redeem loop (serialized: concurrent callers wait for the running pass). */
  async pump (signal?: AbortSignal, force = false): Promise<RedeemTick | undefined> {
    while (this.pumping !== undefined) await this.pumping
    signal?.throwIfAborted()
    this.pumping = this.pumpOnce(force).finally(() => { this.pumping = undefined })
    return await this.pumping
  }

  /** What the last pass of the loop saw (undefined before the first). */
  get lastRedeemTick (): RedeemTick | undefined { return this.lastTick }

  /** For the node's metrics: transactions on the send queue, redeem rows in the outbox by state. */
  depths (): { sendQueue: number, redeems: Record<RedeemState, number> } {
    return { sendQueue: this.queue?.depth ?? 0, redeems: this.outbox.counts() }
  }

  private async pumpOnce (force: boolean): Promise<RedeemTick | undefined> {
    // Nothing to do for a node that holds no voucher and has no redeem in flight: no chain reads.
    if (this.outbox.counts().sent === 0 && this.vouchers.received({ provider: this.account }).length === 0) {
      this.lastError = undefined
      return { confirmed: [], redeemable: 0, blocked: [] }
    }
    try {
      const contract = await this.ready()
      const tick = await redeemTick({
        conn: this.connection(),
        outbox: this.outbox,
        book: this.vouchers,
        queue: this.sendQueue(),
        contract,
        domain: await this.domain(),
        account: this.account,
        confirmations: this.confirmations(),
        now: this.now,
        escrow: async (j) => await this.escrow(j, { fresh: true }),
        redeemed: async (j, p) => await this.redeemed(j, p),
        settled: this.settled,
        policy: this.init.redeemPolicy,
        force,
        gasCost: async (v) => await this.redeemGasCost(v),
        chainTime: async () => await this.chainTime(),
        holds: this.holds,
        beforeBroadcast: this.init.beforeBroadcast,
        afterBroadcast: this.init.afterBroadcast
      })
      this.lastError = undefined
      this.lastTick = tick
      return tick
    } catch (err) {
      this.lastError = toChainError(err, { action: 'redeeming vouchers', url: this.conn?.url })
      for (const e of this.outbox.inFlight()) this.outbox.markError(e.id, `${this.lastError.code}: ${this.lastError.message}`, this.now())
      return undefined
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

  // ------------------------------------------------------------------ helpers

  /** Wei one redeem of one voucher costs now: estimateGas (kept a minute) x gas price (kept 15 s). */
  private async redeemGasCost (v: StoredVoucher): Promise<bigint> {
    const conn = this.connection()
    const at = this.now()
    const c = this.gasCache ??= { gasAt: -Infinity, gas: 0n, priceAt: -Infinity, price: 0n }
    if (at - c.gasAt > 60_000) {
      try {
        c.gas = await conn.publicClient.estimateGas({ account: conn.account, to: await this.ready(), data: encodeFunctionData({ abi: settlementAbi, functionName: 'redeem', args: [[{ ...v.voucher }], [v.signature]] as never }) })
      } catch {
        c.gas = 100_000n // about a one-voucher redeem with its EIP-712 check; a revert shows when it is sent
      }
      c.gasAt = at
    }
    if (at - c.priceAt > 15_000) {
      try { c.price = await conn.publicClient.getGasPrice() } catch (err) { throw toChainError(err, { action: 'reading the gas price', url: conn.url }) }
      c.priceAt = at
    }
    return c.gas * c.price
  }

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

  /** The chain's clock (latest block's timestamp, unix seconds): deadlines are judged by it. */
  private async chainTime (): Promise<number> {
    const conn = this.connection()
    try {
      return Number((await conn.publicClient.getBlock({ blockTag: 'latest' })).timestamp)
    } catch (err) {
      throw toChainError(err, { action: 'reading the chain clock', url: conn.url })
    }
  }

  private async read<const F extends 'jobs' | 'totalGpus' | 'stakeRequired' | 'redeemed' | 'providers' | 'isStaked' | 'unspent' | 'refundableAt'> (functionName: F, args: readonly unknown[]): Promise<ReadResult<F>> {
    const conn = this.connection()
    const address = await this.ready()
    try {
      return await conn.publicClient.readContract({ address, abi: settlementAbi, functionName, args } as never) as ReadResult<F>
    } catch (err) {
      throw toChainError(err, { action: `reading ${functionName}`, url: conn.url })
    }
  }

  private async call (functionName: 'deposit' | 'close' | 'refund' | 'stake' | 'unstake', args: readonly unknown[], value: bigint, action: string): Promise<import('viem').TransactionReceipt> {
    const address = await this.ready()
    const queue = this.sendQueue()
    return await queue.sendAndWait(async () => await queue.signCall({ address, abi: settlementAbi, functionName, args: args as never, value, action }), action, this.waitOpts())
  }
}

type ReadResult<F extends string> =
  F extends 'jobs' ? readonly [Address, bigint, bigint, bigint, bigint, number, boolean]
    : F extends 'providers' ? readonly [bigint, number]
      : F extends 'isStaked' ? boolean
        : bigint

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise(resolve => setTimeout(resolve, ms))
}
