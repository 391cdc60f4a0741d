// The submitter's money for its jobs on the shared chain: escrow locked before the first lease
// (budget.total, or the predicted cost when the manifest states none), a payer per job that
// signs bounded cumulative vouchers, top-ups only when the job's submitter allowed them (never
// past a stated budget), and at the end: final vouchers (the runner), `close`, and the refund
// of the unsigned rest once the dispute window has passed (checked against the chain's clock).
import { decimalToUnits } from '../core/compute/pricing.js'
import { formatCoins } from '../core/settlement/stake.js'
import { chainJobId, jobHash } from '../core/settlement/batch.js'
import { deadlineAt, type Manifest } from '../core/scheduler/index.js'
import { DbcError } from '../errors.js'
import { JobPayer, paymentView, type PaymentView } from '../jobs/payer.js'
import { PaymentStore, type EscrowRow } from '../jobs/payment-store.js'
import type { RunnerPayment } from '../jobs/runner.js'
import type { Bridge } from '../chain/index.js'
import { StakeReads } from '../jobs/stake-reads.js'
import type { dbc } from '../wire/gen/wire.js'
import type { SignedVoucher } from '../core/settlement/voucher.js'

type Hex = `0x${string}`
const bytes = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/^0x/, ''), 'hex'))

/** Escrow of a job with no budget.total: the predicted cost times this (room for the default checks and re-runs). */
export const PREDICTED_ESCROW_FACTOR = 2
/** A job with no budget.total tops up when what it committed reaches this share of its escrow. */
const TOP_UP_AT = 0.75
/** How often closed jobs are checked for a due refund (ms). */
const REFUND_CHECK_MS = 15_000

export interface JobPaymentsInit {
  store: PaymentStore
  bridge: () => Bridge | undefined
  /**
   * Jobs lease only providers whose payout address staked enough for their offers (the node's
   * chain.requireStake; default true): a manifest's verification.allowUnstaked turns it off per job.
   */
  requireStake?: boolean
  /** Dispute window of new escrows (seconds, 60 s to 30 days; default: the bridge's, an hour). */
  disputeWindowS?: number
  log?: { info: (o: object, m: string) => void, warn: (o: object, m: string) => void }
}

/** A job with no budget.total whose submitter did not allow escrow top-ups ran out of escrow. */
export class EscrowSpentError extends DbcError {
  override name = 'EscrowSpentError'
  constructor (jobId: string, deposited: bigint) {
    super('ESCROW_SPENT', `job ${jobId} used its escrow (${formatCoins(deposited)} DBC, the predicted cost); topping it up needs confirmation`, { hint: 'resubmit with `--yes` (allowTopUp) to let the escrow grow, or state budget.total in the manifest' })
  }
}

export class JobPayments {
  private readonly payers = new Map<string, JobPayer>()
  private readonly deposits = new Map<string, Promise<void>>()
  private timer?: NodeJS.Timeout
  /** Provider stake read from the chain, shared by every job of this node (one read per owner and TTL). */
  private stakeReads?: { bridge: Bridge, reads: StakeReads }

  constructor (private readonly init: JobPaymentsInit) {}

  get store (): PaymentStore { return this.init.store }

  /** The chain bridge, when the node runs one. */
  bridge (): Bridge | undefined { return this.init.bridge() }

  /** Whether jobs of this node are paid (a chain bridge runs). */
  get enabled (): boolean { return this.init.bridge() !== undefined }

  /**
   * What a runner pays with for `jobId`; undefined when the node runs no chain. `gpus`,
   * `cores` and `timeoutMs` are the task shape the payer bounds receipts with.
   */
  async forJob (jobId: string, manifest: Manifest, opts: { allowTopUp?: boolean, submittedAt?: number } = {}): Promise<RunnerPayment | undefined> {
    const bridge = this.init.bridge()
    if (bridge === undefined) return undefined
    const domain = await bridge.domain()
    const jobIdBytes = bytes(jobId)
    const key = chainJobId(jobIdBytes, bridge.account)
    const budget = manifest.budget.total !== undefined ? decimalToUnits(manifest.budget.total) : undefined
    this.store.putEscrow({ jobId, chainJobId: key, chainId: domain.chainId, contract: domain.verifyingContract, payer: bridge.account, budget, deposited: 0n, allowTopUp: opts.allowTopUp === true, kind: 'grid' })
    const payer = this.payerFor(jobId, jobIdBytes, bridge, { gpus: manifest.resources.gpu?.count ?? 0, cores: manifest.resources.cores, timeoutMs: manifest.task.timeoutMs, maxPricePerHour: manifest.budget.maxPricePerHour })
    const deadline = deadlineAt(manifest, opts.submittedAt ?? Date.now())
    return {
      terms: this.terms(this.store.escrow(jobId)!),
      payer,
      ensureEscrow: async (predicted, reserve) => { await this.ensureEscrow(jobId, predicted, deadline, reserve) },
      exhausted: () => this.exhausted(jobId),
      leaseAuth: async (holder) => await bridge.signLeaseAuth(key, holder),
      ...(this.init.requireStake !== false && manifest.verification.allowUnstaked !== true ? { stakes: async (owners, signal) => await this.stakesOf(bridge).stakesOf(owners, signal) } : {}),
      onError: (err, provider) => { this.init.log?.warn({ jobId, provider, err: err.message }, 'payment problem (the next voucher carries the total)') }
    }
  }

  /** The stake reads of `bridge` (a new bridge after a restart of the chain subsystem starts a new cache). */
  stakesOf (bridge: Bridge): StakeReads {
    if (this.stakeReads?.bridge !== bridge) {
      const reads = new StakeReads({
        read: async (owner) => await bridge.stakeOf(owner as Hex),
        now: Date.now,
        onError: (err, owner) => { this.init.log?.warn({ owner, err: err.message }, 'the stake of a provider\'s payout address could not be read (its offers wait: STAKE_UNKNOWN)') }
      })
      this.stakeReads = { bridge, reads }
    }
    return this.stakeReads.reads
  }

  /**
   * The payer of a job (grid or training), created once while the job runs and dropped when it
   * ended (release): a daemon that runs for months holds payers of its running jobs only.
   */
  payerFor (jobId: string, jobIdBytes: Uint8Array, bridge: Bridge, shape: { gpus: number, cores: number, timeoutMs: number, maxPricePerHour?: number }): JobPayer {
    let payer = this.payers.get(jobId)
    if (payer === undefined) {
      payer = new JobPayer({
        jobId, jobIdBytes, payerAddress: bridge.account, store: this.store, ...shape,
        sign: async (v) => await bridge.signVoucher(v),
        budgetTotal: () => this.cap(jobId),
        onPaid: (committed) => { void this.maybeTopUp(jobId, committed) },
        onError: (err) => { this.init.log?.warn({ jobId, err: err.message }, 'a voucher could not be signed yet') },
        onPayeeRefused: (provider, reason) => { this.init.log?.warn({ jobId, provider, reason }, 'provider refused as a payee: it gets no vouchers in this job') }
      })
      this.payers.set(jobId, payer)
    }
    return payer
  }

  /** How many payers this node holds (its running jobs'). */
  get payersHeld (): number { return this.payers.size }

  /**
   * The job ended: its payer is dropped once the payments it has in flight are recorded. All it
   * knows is in the store (payees and forfeits, totals, receipt leaves, what was signed), and the
   * store is what everything after a job's end reads (close, the refund, `dbc job settle`'s
   * resend); payerFor builds it again from there when a job pays again (a restart's resume).
   */
  async release (jobId: string): Promise<void> {
    const payer = this.payers.get(jobId)
    if (payer === undefined) return
    await payer.idle()
    if (this.payers.get(jobId) === payer) this.payers.delete(jobId)
  }

  terms (e: EscrowRow): dbc.task.v1.IPaymentTerms {
    return { chainId: e.chainId, contract: bytes(e.contract), chainJobId: bytes(e.chainJobId), payer: bytes(e.payer) }
  }

  /** Registers a job kind (training) whose escrow is made by its own flow. */
  putEscrow (e: EscrowRow): void { this.store.putEscrow(e) }

  /**
   * What the payer may commit in all: budget.total (or more, after a confirmed top-up past it),
   * else what is deposited. The reserve deposited on top of a budget is never paid out.
   */
  private cap (jobId: string): bigint | undefined {
    const e = this.store.escrow(jobId)
    if (e === undefined) return undefined
    if (e.budget === undefined) return e.deposited
    const topped = e.deposited - (e.reserve ?? 0n)
    return e.allowTopUp && topped > e.budget ? topped : e.budget
  }

  /** A top-up the caller confirmed (or one within the budget): deposits `amount` more. */
  async topUp (jobId: string, amount: bigint, confirmed: boolean): Promise<void> {
    const e = this.store.escrow(jobId)
    if (e === undefined) throw new DbcError('NOT_FOUND', `job ${jobId} has no escrow on this node`)
    if (confirmed) this.store.putEscrow({ ...e, allowTopUp: true })
    await this.deposit(e, amount)
  }

  /** Why no new task may start (the escrow of a job with no budget is spent and top-ups are not allowed). */
  private exhausted (jobId: string): string | undefined {
    const e = this.store.escrow(jobId)
    if (e === undefined || e.budget !== undefined || e.allowTopUp || e.deposited === 0n) return undefined
    // the payer's running total (summing the store per task would cost O(tasks) each time)
    const committed = this.payers.get(jobId)?.committedUnits ?? this.store.committed(jobId)
    if (committed < e.deposited) return undefined
    return new EscrowSpentError(jobId, e.deposited).message
  }

  /**
   * Locks the job's escrow once: budget.total, else the predicted cost x PREDICTED_ESCROW_FACTOR,
   * plus `reserveTokens` (one task at its timeout per leased offer: what providers want covered
   * before each next task). With a budget the reserve is extra: the payer still pays at most
   * budget.total, and the reserve comes back at refund.
   */
  async ensureEscrow (jobId: string, predictedTokens: number, deadlineMs?: number, reserveTokens = 0): Promise<void> {
    const e = this.store.escrow(jobId)
    if (e === undefined) throw new DbcError('NO_ESCROW_RECORD', `job ${jobId} has no payment terms`)
    if (e.deposited > 0n) return
    const tokens = (x: number): bigint => Number.isFinite(x) && x > 0 ? decimalToUnits(x.toFixed(18)) : 0n
    const reserve = tokens(reserveTokens)
    const predicted = tokens(predictedTokens) * BigInt(PREDICTED_ESCROW_FACTOR) + reserve
    // at least one smallest unit: the first deposit makes this node the job's payer on chain
    const amount = e.budget !== undefined ? e.budget + reserve : (predicted > 0n ? predicted : 1n)
    if (e.budget !== undefined) this.store.setReserve(jobId, reserve)
    await this.deposit(e, amount, deadlineMs)
  }

  private async deposit (e: EscrowRow, amount: bigint, deadlineMs?: number): Promise<void> {
    const prev = this.deposits.get(e.jobId)
    if (prev !== undefined) { await prev; return }
    const p = (async () => {
      const bridge = this.init.bridge()
      if (bridge === undefined) throw new DbcError('NO_CHAIN', 'this node runs no chain bridge', { hint: 'start the node with --network (local, dbc-testnet, dbc-mainnet)' })
      const deadline = deadlineMs === undefined ? undefined : Math.ceil(deadlineMs / 1000) + 3600
      // no read of the escrow before (a round trip on the job's start path): the contract takes
      // the dispute window from the first deposit only and ignores it on a top-up
      const r = await bridge.deposit(jobHashOfRow(e), amount, { ...(deadline !== undefined ? { deadline } : {}), ...(this.init.disputeWindowS !== undefined ? { disputeWindow: this.init.disputeWindowS } : {}) })
      // the escrow the deposit's event reported; without one, as the chain holds it now (the deposit mined)
      this.store.setDeposited(e.jobId, r.escrow > 0n ? r.escrow : (await bridge.escrow(e.chainJobId, { fresh: true })).escrow)
      this.init.log?.info({ jobId: e.jobId, amount: `${formatCoins(amount)} DBC`, escrow: `${formatCoins(r.escrow)} DBC`, tx: r.txHash }, 'escrow deposited')
    })().finally(() => { this.deposits.delete(e.jobId) })
    this.deposits.set(e.jobId, p)
    await p
  }

  /** No budget.total and top-ups allowed: grows the escrow before the payer reaches it. */
  private async maybeTopUp (jobId: string, committed: bigint): Promise<void> {
    const e = this.store.escrow(jobId)
    if (e === undefined || e.budget !== undefined || !e.allowTopUp || e.deposited === 0n) return
    if (Number(committed) < Number(e.deposited) * TOP_UP_AT) return
    try {
      await this.deposit(e, e.deposited)
    } catch (err) {
      this.init.log?.warn({ jobId, err: (err as Error).message }, 'escrow top-up failed; providers stop when it runs out')
    }
  }

  /**
   * The job ended: totals not signed yet are signed, no more work on chain (`close`); the refund
   * follows after the dispute window. Its payer is dropped (release), whether or not the chain
   * took the close (`dbc job settle` tries again, signing from the store).
   */
  async finish (jobId: string): Promise<void> {
    try {
      await this.closeOnChain(jobId)
    } finally {
      await this.release(jobId)
    }
  }

  private async closeOnChain (jobId: string): Promise<void> {
    const e = this.store.escrow(jobId)
    const bridge = this.init.bridge()
    if (e === undefined || bridge === undefined || e.deposited === 0n || e.closedAt !== undefined) return
    // a payer dropped (an earlier finish whose signing or close failed) or never made since a
    // restart: one made from the store signs what was meant, never less (payer.ts)
    await (this.payers.get(jobId) ?? this.endedPayer(e, bridge))?.flush()
    await bridge.close(e.chainJobId)
    this.store.setClosed(jobId, Date.now())
    this.init.log?.info({ jobId }, 'job closed on chain; the unsigned rest of its escrow is refunded after the dispute window')
    this.scheduleRefunds()
  }

  /** A payer for an ended job's unsigned totals (none: nothing to sign), not kept: it pays nothing new. */
  private endedPayer (e: EscrowRow, bridge: Bridge): JobPayer | undefined {
    if (!this.store.vouchers(e.jobId).some(v => v.forfeited === undefined && v.cumulative > 0n && (v.signature === undefined || v.cumulative > v.signedCumulative || v.receiptCount > v.signedCount))) return undefined
    return new JobPayer({
      jobId: e.jobId, jobIdBytes: jobIdBytesOfRow(e), payerAddress: e.payer, store: this.store, gpus: 0, cores: 0, timeoutMs: 0,
      sign: async (v) => await bridge.signVoucher(v),
      onError: (err) => { this.init.log?.warn({ jobId: e.jobId, err: err.message }, 'a voucher could not be signed yet') }
    })
  }

  /**
   * The latest signed voucher of each payout of a job and the (not forfeited) provider peers it
   * is for: re-sent by `dbc job settle`, so a provider that was down when the job ended still
   * gets what it was signed (vouchers are cumulative: sending one again is harmless).
   */
  latestVouchers (jobId: string): Array<{ providers: string[], voucher: SignedVoucher }> {
    const e = this.store.escrow(jobId)
    if (e === undefined) return []
    const payees = this.store.payees(jobId).filter(p => p.forfeited === undefined)
    const out: Array<{ providers: string[], voucher: SignedVoucher }> = []
    for (const row of this.store.vouchers(jobId)) {
      if (row.signature === undefined || row.forfeited !== undefined) continue
      const providers = payees.filter(p => p.payout.toLowerCase() === row.payout.toLowerCase()).map(p => p.provider)
      if (providers.length === 0) continue
      out.push({ providers, voucher: { voucher: { escrowId: e.chainJobId, provider: row.payout, cumulative: row.signedCumulative, receiptsRoot: row.signedRoot ?? `0x${'0'.repeat(64)}`, receiptCount: row.signedCount }, signature: row.signature } })
    }
    return out
  }

  /** Refunds every closed job whose dispute window has passed (by the chain's clock). */
  async refundDue (): Promise<Array<{ jobId: string, amount: bigint, txHash: string }>> {
    const bridge = this.init.bridge()
    if (bridge === undefined) return []
    const out: Array<{ jobId: string, amount: bigint, txHash: string }> = []
    for (const e of this.store.escrows()) {
      if (e.closedAt === undefined || e.refundTx !== undefined) continue
      try {
        const esc = await bridge.escrow(e.chainJobId, { fresh: true })
        if (esc.refunded) { this.store.setRefunded(e.jobId, 'unknown', 0n); continue }
        const now = Number((await bridge.connectionInfo.publicClient.getBlock({ blockTag: 'latest' })).timestamp)
        if (esc.refundableAt === undefined || now < esc.refundableAt) continue
        const r = await bridge.refund(e.chainJobId)
        this.store.setRefunded(e.jobId, r.txHash, r.amount)
        out.push({ jobId: e.jobId, amount: r.amount, txHash: r.txHash })
        this.init.log?.info({ jobId: e.jobId, amount: `${formatCoins(r.amount)} DBC`, tx: r.txHash }, 'escrow refunded')
      } catch (err) {
        this.init.log?.warn({ jobId: e.jobId, err: (err as Error).message }, 'refund not done yet')
      }
    }
    return out
  }

  /** Checks for due refunds now and then while some closed job waits for one. */
  scheduleRefunds (): void {
    if (this.timer !== undefined) return
    const waiting = (): boolean => this.store.escrows().some(e => e.closedAt !== undefined && e.refundTx === undefined)
    if (!waiting()) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.refundDue().finally(() => { if (waiting()) this.scheduleRefunds() })
    }, REFUND_CHECK_MS)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }

  /** Until the payments the held payers have in flight are done (an ended job's final vouchers on their way to its providers). */
  async idle (): Promise<void> {
    await Promise.allSettled([...this.payers.values()].map(async p => { await p.idle() }))
  }

  /** `dbc job settle`: the escrow and what the chain paid (the bridge's view) and what this node refused. */
  async view (jobId: string): Promise<SettleView | undefined> {
    const e = this.store.escrow(jobId)
    if (e === undefined) return undefined
    const bridge = this.init.bridge()
    const chain = bridge === undefined ? undefined : await bridge.jobPayments(e.chainJobId).catch(() => undefined)
    return { jobId, kind: e.kind, chainJobId: e.chainJobId, deposited: e.deposited, reserve: e.reserve, budget: e.budget, allowTopUp: e.allowTopUp, closedAt: e.closedAt, refundTx: e.refundTx, refunded: e.refunded, payment: paymentView(this.store, jobId), chain, unit: 'DBC' }
  }
}

/** The hash `deposit` takes for a job of this store: grid job ids are hex bytes, training ids text (as the payers' jobIdBytes). */
export function jobHashOfRow (e: EscrowRow): Hex {
  return jobHash(jobIdBytesOfRow(e))
}

/** The job id bytes its receipts name and its escrow key is made of: grid ids are hex bytes, training ids text. */
function jobIdBytesOfRow (e: EscrowRow): Uint8Array {
  return e.kind === 'training' ? new TextEncoder().encode(e.jobId) : bytes(e.jobId)
}

export interface SettleView {
  jobId: string
  kind: 'grid' | 'training'
  chainJobId: Hex
  deposited: bigint
  /** Deposited on top of budget.total for the providers' next tasks; never paid out, refunded. */
  reserve?: bigint
  budget?: bigint
  allowTopUp: boolean
  closedAt?: number
  refundTx?: string
  refunded?: bigint
  /** What this node bounded, signed and refused (smallest units). */
  payment: PaymentView
  /** The chain's side: escrow, signed and redeemed per provider, refund state. */
  chain?: Awaited<ReturnType<Bridge['jobPayments']>>
  unit: 'DBC'
}
