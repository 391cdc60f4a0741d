// The chain bridge the daemon owns: escrow (deposit, close, refund) and voucher signing for the
// payer; voucher checks, the voucher book and the redeem loop for the provider; stake; reads of
// escrow, redemptions and earnings. `start()` connects (a chain that is down is reported in
// status, not thrown) and runs the redeem loop every `tickMs`; `stop()` ends it.
// The parts: bridge-link.ts (connection, contract, reads and calls), bridge-escrow.ts (escrow
// reads and their caches), bridge-signer.ts (what the key signs), redeem-loop.ts (the loop).
import { parseEventLogs } from 'viem'
import type { SignedVoucher, Voucher, VoucherDomain } from '../core/settlement/voucher.js'
import { settlementAbi } from './artifacts/settlement.js'
import type { ChainConnection } from './client.js'
import type { Address, Hex } from './config.js'
import { toChainError } from './errors.js'
import { Outbox, type RedeemEntry, type RedeemState } from './outbox.js'
import { voucherKey, type RedeemTick } from './redeemer.js'
import { VoucherBook, type StoredVoucher } from './vouchers.js'
import { acceptVoucherOnChain, verifyVoucherOnChain, type RecoveredSigner, type VerifyResult, type VoucherCheckDeps } from './voucher-check.js'
import { chainJobKey, escrowIdOf, type ChainJobIdInput } from './job-id.js'
import { earningsRows, earningsTotals, jobPaymentView } from './earnings.js'
import { DEFAULT_DEADLINE_S, DEFAULT_DISPUTE_WINDOW_S, type BridgeInit } from './bridge-init.js'
import { ChainLink } from './bridge-link.js'
import { EscrowReads } from './bridge-escrow.js'
import { BridgeSigner } from './bridge-signer.js'
import { RedeemLoop } from './redeem-loop.js'
import type { AcceptResult, BridgeStatus, DepositResult, EarningsView, EscrowView, JobPaymentView, StakeResult } from './types.js'

export class Bridge {
  private readonly outbox: Outbox
  readonly vouchers: VoucherBook
  private readonly link: ChainLink
  private readonly escrows: EscrowReads
  private readonly signer: BridgeSigner
  private readonly loop: RedeemLoop
  private readonly now: () => number

  constructor (init: BridgeInit) {
    this.outbox = new Outbox(init.store)
    this.vouchers = new VoucherBook(init.store)
    this.now = init.now ?? Date.now
    this.link = new ChainLink(init, this.outbox)
    this.escrows = new EscrowReads(this.link, this.vouchers, { escrowCacheMs: init.escrowCacheMs, now: this.now })
    this.signer = new BridgeSigner(this.link, this.vouchers, this.now)
    this.loop = new RedeemLoop({ init, link: this.link, outbox: this.outbox, book: this.vouchers, escrows: this.escrows, now: this.now })
  }

  async start (): Promise<void> {
    if (this.link.isOpen) return
    await this.link.open()
    try {
      await this.link.ready()
    } catch (err) {
      this.link.lastError = toChainError(err, { action: 'starting the bridge', url: this.link.url })
    }
    this.loop.schedule()
  }

  async stop (): Promise<void> {
    await this.loop.stop()
    this.link.close()
  }

  get account (): Address { return this.link.connection().account.address }
  get contract (): Address | undefined { return this.link.contract }
  get connectionInfo (): ChainConnection { return this.link.connection() }

  /** Checks the chain id, funds the key (local faucet) and finds (or deploys) the contract. Idempotent. */
  async ready (): Promise<Address> { return await this.link.ready() }

  /** The EIP-712 domain vouchers of this chain and contract are signed under. */
  async domain (): Promise<VoucherDomain> { return await this.link.domain() }

  // ------------------------------------------------------------------ status and wallet

  async status (): Promise<BridgeStatus> {
    const conn = this.link.connection()
    const lastError = this.link.lastError
    const base: BridgeStatus = {
      kind: conn.kind,
      chainId: conn.chainId,
      url: conn.url,
      account: conn.account.address,
      contract: this.link.contract,
      redeems: this.outbox.counts(),
      vouchers: { received: this.vouchers.received({ provider: conn.account.address }).length, issued: this.vouchers.issued().length },
      lastError: lastError === undefined ? undefined : { code: lastError.code, message: lastError.message, hint: lastError.hint },
      reachable: false
    }
    try {
      const contract = await this.link.ready()
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
  async balance (address?: Address): Promise<bigint> { return await this.link.balance(address) }

  /** What `provider` (default this account) has staked. */
  async stakeOf (provider?: Address): Promise<{ gpus: number, amount: bigint }> {
    const [amount, gpus] = await this.link.read('providers', [provider ?? this.account])
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
    const deadline = opts.deadline ?? await this.link.chainTime() + DEFAULT_DEADLINE_S
    const receipt = await this.link.call('deposit', [hash, BigInt(deadline), opts.disputeWindow ?? DEFAULT_DISPUTE_WINDOW_S], amount, `depositing escrow for job ${hash.slice(0, 10)}`)
    this.escrows.forget(key)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'JobDeposited' })[0]
    return { txHash: receipt.transactionHash, chainJobId: key, amount, escrow: ev?.args.escrow ?? 0n, blockNumber: receipt.blockNumber }
  }

  /** No more work for the escrow (its id): the refund clock starts (idempotent). */
  async close (jobId: ChainJobIdInput): Promise<{ txHash: Hex }> {
    const key = chainJobKey(jobId)
    const receipt = await this.link.call('close', [key], 0n, `closing job ${key.slice(0, 10)}`)
    this.escrows.forget(key)
    return { txHash: receipt.transactionHash }
  }

  /** Takes the unspent escrow back; reverts (DisputeWindowOpen) before min(deadline, close) + window. */
  async refund (jobId: ChainJobIdInput): Promise<{ txHash: Hex, amount: bigint }> {
    const key = chainJobKey(jobId)
    const receipt = await this.link.call('refund', [key], 0n, `refunding escrow of job ${key.slice(0, 10)}`)
    this.escrows.forget(key)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'EscrowRefunded' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  /** The job's escrow on chain, reused for `escrowCacheMs` unless `fresh`. */
  async escrow (jobId: ChainJobIdInput, opts: { fresh?: boolean } = {}): Promise<EscrowView> {
    return await this.escrows.escrow(jobId, opts)
  }

  /** What the contract has paid `provider` (default this account) for the job so far. */
  async redeemed (jobId: ChainJobIdInput, provider?: Address): Promise<bigint> {
    return await this.escrows.redeemed(jobId, provider)
  }

  // ------------------------------------------------------------------ vouchers (bridge-signer.ts)

  /** Signs `v` (EIP-712) and records it as issued before returning it. */
  async signVoucher (v: Voucher): Promise<SignedVoucher> { return await this.signer.signVoucher(v) }

  /** The payer's authorisation for `holder` to lease against job `jobId`'s escrow (65 bytes r‖s‖v). */
  async signLeaseAuth (jobId: ChainJobIdInput, holder: Uint8Array): Promise<Uint8Array> { return await this.signer.signLeaseAuth(jobId, holder) }

  /** Proves this node's account is its payout address, for `peer` (65 bytes r‖s‖v; signed once). */
  async signPayoutBinding (peer: Uint8Array): Promise<Uint8Array> { return await this.signer.signPayoutBinding(peer) }

  /** Checks `sv` against this chain: its signer must be the job's payer on chain. */
  async verifyVoucher (sv: SignedVoucher, opts: { fresh?: boolean } = {}): Promise<VerifyResult> {
    return await verifyVoucherOnChain(this.checkDeps(), sv, opts)
  }

  /**
   * Provider side: checks `sv` (signed by the job's payer on chain, naming this node as the
   * provider) and keeps it if it supersedes the stored one; the redeem loop pays it out.
   * A chain that can not be read throws ChainError (nobody's fault, try again).
   */
  async acceptVoucher (sv: SignedVoucher, opts: { signer?: RecoveredSigner } = {}): Promise<AcceptResult> {
    return await acceptVoucherOnChain(this.checkDeps(), sv, opts)
  }

  private checkDeps (): VoucherCheckDeps {
    return {
      account: this.account,
      book: this.vouchers,
      now: this.now,
      domain: async () => await this.link.domain(),
      payerOf: async (jobId, domain, fresh) => await this.escrows.payerOf(jobId, domain, fresh)
    }
  }

  // ------------------------------------------------------------------ earnings and views

  /** Provider side: per job the latest voucher, what the chain redeemed, what is pending. */
  async earnings (): Promise<EarningsView> {
    const conn = this.link.connection()
    const domain = await this.link.domain()
    const mine = this.vouchers.received({ provider: conn.account.address }).filter(v => v.domain.verifyingContract.toLowerCase() === domain.verifyingContract.toLowerCase() && v.domain.chainId === domain.chainId)
    const reads = { redeemed: async (j: Hex, p: Address) => await this.redeemed(j, p), escrow: async (j: Hex) => await this.escrow(j) }
    const [rows, balance, stake] = await Promise.all([earningsRows(mine, conn.account.address, reads), this.balance(), this.stakeOf()])
    // What the redeem policy held back on its last pass, and why (gas would eat it, or it waits to grow).
    const jobs = rows.map(r => {
      const h = r.pending > 0n && r.note === undefined ? this.loop.holds.get(voucherKey(r.chainJobId, conn.account.address)) : undefined
      return h === undefined ? r : { ...r, hold: h.state, note: h.reason }
    })
    return { account: conn.account.address, chainId: conn.chainId, contract: domain.verifyingContract, jobs, totals: earningsTotals(jobs), inFlight: this.outbox.counts().sent, balance, stake }
  }

  /** Payer side (`dbc job settle`): escrow, what this node signed per provider, what each redeemed. */
  async jobPayments (jobId: ChainJobIdInput): Promise<JobPaymentView> {
    const key = chainJobKey(jobId)
    const esc = await this.escrow(key, { fresh: true })
    const issued = this.vouchers.issued({ chainJobId: key })
    return await jobPaymentView(esc, issued, this.account, { redeemed: async (j, p) => await this.redeemed(j, p) }, await this.link.chainTime())
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
    const [networkGpus, amount] = await Promise.all([this.link.read('totalGpus', []), this.link.read('stakeRequired', [gpus])])
    return { networkGpus, amount }
  }

  /** Stakes `gpus` GPUs for `provider` (default: this account), paying the quoted stake. */
  async stake (gpus: number, opts: { provider?: Address } = {}): Promise<StakeResult> {
    const provider = opts.provider ?? this.account
    const { amount } = await this.stakeQuote(gpus)
    const receipt = await this.link.call('stake', [provider, gpus], amount, `staking ${gpus} GPU(s)`)
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'ProviderStaked' })[0]
    return { txHash: receipt.transactionHash, provider, gpus, amount: ev?.args.amount ?? amount, networkGpus: ev?.args.totalGpus ?? 0n }
  }

  /** Withdraws all of this account's stake (no redeeming until it stakes again). */
  async unstake (): Promise<{ txHash: Hex, amount: bigint }> {
    const receipt = await this.link.call('unstake', [], 0n, 'unstaking')
    const ev = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'ProviderUnstaked' })[0]
    return { txHash: receipt.transactionHash, amount: ev?.args.amount ?? 0n }
  }

  // ------------------------------------------------------------------ the redeem loop (redeem-loop.ts)

  /**
   * Runs the redeem loop until nothing redeemable is left and no redeem tx is in flight, or for
   * `waitMs` (default: the tx timeout). Throws the loop's ChainError when a tick fails.
   */
  async redeemNow (opts: { signal?: AbortSignal, waitMs?: number, force?: boolean } = {}): Promise<RedeemTick> {
    return await this.loop.redeemNow(opts)
  }

  /** One pass of the redeem loop (serialized: concurrent callers wait for the running pass). */
  async pump (signal?: AbortSignal, force = false): Promise<RedeemTick | undefined> {
    return await this.loop.pump(signal, force)
  }

  /** What the last pass of the loop saw (undefined before the first). */
  get lastRedeemTick (): RedeemTick | undefined { return this.loop.lastRedeemTick }

  /** For the node's metrics: transactions on the send queue, redeem rows in the outbox by state. */
  depths (): { sendQueue: number, redeems: Record<RedeemState, number> } { return this.loop.depths() }
}
