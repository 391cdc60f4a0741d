// The provider's redeem loop as the bridge runs it: one pass (redeemer.ts's `redeemTick`) every
// `tickMs`, passes serialized, `redeemNow` for the operator, and one redeem's gas cost (kept a
// minute, the gas price 15 s) for the redeem policy. A failed pass leaves its ChainError on the link.
import { encodeFunctionData } from 'viem'
import { ChainError } from '../errors.js'
import { settlementAbi } from './artifacts/settlement.js'
import { toChainError } from './errors.js'
import type { BridgeInit } from './bridge-init.js'
import type { ChainLink } from './bridge-link.js'
import type { EscrowReads } from './bridge-escrow.js'
import type { Outbox, RedeemState } from './outbox.js'
import { redeemTick, type HeldVoucher, type RedeemTick } from './redeemer.js'
import type { StoredVoucher, VoucherBook } from './vouchers.js'

export interface RedeemLoopDeps {
  init: BridgeInit
  link: ChainLink
  outbox: Outbox
  book: VoucherBook
  escrows: EscrowReads
  now: () => number
}

export class RedeemLoop {
  private readonly d: RedeemLoopDeps
  private timer?: ReturnType<typeof setTimeout>
  private pumping?: Promise<RedeemTick | undefined>
  private lastTick?: RedeemTick
  private readonly settled = new Map<string, bigint>()
  /** Held vouchers and when they are read again (redeemer.ts HELD_RECHECK_MS). */
  private readonly recheck = new Map<string, HeldVoucher>()
  private gasCache?: { gasAt: number, gas: bigint, priceAt: number, price: bigint }
  /** Vouchers the redeem policy holds back, and why (for `dbc earnings`). */
  readonly holds = new Map<string, { state: 'waiting' | 'not-worth', reason: string }>()

  constructor (deps: RedeemLoopDeps) {
    this.d = deps
  }

  /** What the last pass of the loop saw (undefined before the first). */
  get lastRedeemTick (): RedeemTick | undefined { return this.lastTick }

  /** For the node's metrics: transactions on the send queue, redeem rows in the outbox by state. */
  depths (): { sendQueue: number, redeems: Record<RedeemState, number> } {
    return { sendQueue: this.d.link.sendQueueDepth, redeems: this.d.outbox.counts() }
  }

  /** Runs a pass every `tickMs` (default 2000; 0 = never: `redeemNow` only). */
  schedule (): void {
    const tick = this.d.init.tickMs ?? 2000
    if (tick <= 0) return
    this.timer = setTimeout(() => {
      this.pump(undefined, false, true).catch(() => {}).finally(() => { if (this.timer !== undefined) this.schedule() })
    }, tick)
    this.timer.unref?.()
  }

  /** Ends the schedule and waits for a pass under way. */
  async stop (): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    await this.pumping
  }

  /**
   * Runs the redeem loop until nothing redeemable is left and no redeem tx is in flight, or for
   * `waitMs` (default: the tx timeout). Throws the loop's ChainError when a tick fails.
   */
  async redeemNow (opts: { signal?: AbortSignal, waitMs?: number, force?: boolean } = {}): Promise<RedeemTick> {
    const deadline = this.d.now() + (opts.waitMs ?? this.d.init.txTimeoutMs ?? 60_000)
    const poll = this.d.link.connection().kind === 'embedded' ? 5 : 100
    for (;;) {
      // Asked by the operator: what beats its gas goes now (the loop alone waits for more).
      const tick = await this.pump(opts.signal, opts.force ?? true)
      if (tick === undefined) throw this.d.link.lastError ?? new ChainError('CHAIN_ERROR', 'the redeem loop failed')
      if (tick.inFlight === undefined && tick.redeemable === 0) return tick
      if (this.d.now() >= deadline) return tick
      await sleep(poll, opts.signal)
    }
  }

  /** One pass of the redeem loop (serialized: concurrent callers wait for the running pass). */
  /** `scheduled`: the loop's own pass, which reads a held voucher again only when its time came (redeemer.ts recheck); any other pass reads them all. */
  async pump (signal?: AbortSignal, force = false, scheduled = false): Promise<RedeemTick | undefined> {
    while (this.pumping !== undefined) await this.pumping
    signal?.throwIfAborted()
    this.pumping = this.pumpOnce(force, scheduled).finally(() => { this.pumping = undefined })
    return await this.pumping
  }

  private async pumpOnce (force: boolean, scheduled: boolean): Promise<RedeemTick | undefined> {
    const { init, link, outbox, book, escrows, now } = this.d
    const account = link.connection().account.address
    // Nothing to do for a node that holds no voucher and has no redeem in flight: no chain reads.
    if (outbox.counts().sent === 0 && book.received({ provider: account }).length === 0) {
      link.lastError = undefined
      return { confirmed: [], redeemable: 0, blocked: [] }
    }
    try {
      const contract = await link.ready()
      const tick = await redeemTick({
        conn: link.connection(),
        outbox,
        book,
        queue: link.sendQueue(),
        contract,
        domain: await link.domain(),
        account,
        confirmations: link.confirmations(),
        now,
        escrow: async (j) => await escrows.escrow(j, { fresh: true }),
        redeemed: async (j, p) => await escrows.redeemed(j, p),
        settled: this.settled,
        // the schedule's passes skip held vouchers until their time; redeemNow (the operator, tests) reads all
        recheck: this.recheck,
        recheckSkips: scheduled,
        policy: init.redeemPolicy,
        force,
        gasCost: async (v) => await this.redeemGasCost(v),
        chainTime: async () => await link.chainTime(),
        holds: this.holds,
        beforeBroadcast: init.beforeBroadcast,
        afterBroadcast: init.afterBroadcast
      })
      link.lastError = undefined
      this.lastTick = tick
      return tick
    } catch (err) {
      link.lastError = toChainError(err, { action: 'redeeming vouchers', url: link.url })
      for (const e of outbox.inFlight()) outbox.markError(e.id, `${link.lastError.code}: ${link.lastError.message}`, now())
      return undefined
    }
  }

  /** Wei one redeem of one voucher costs now: estimateGas (kept a minute) x gas price (kept 15 s). */
  private async redeemGasCost (v: StoredVoucher): Promise<bigint> {
    const link = this.d.link
    const conn = link.connection()
    const at = this.d.now()
    const c = this.gasCache ??= { gasAt: -Infinity, gas: 0n, priceAt: -Infinity, price: 0n }
    if (at - c.gasAt > 60_000) {
      try {
        c.gas = await conn.publicClient.estimateGas({ account: conn.account, to: await link.ready(), data: encodeFunctionData({ abi: settlementAbi, functionName: 'redeem', args: [[{ ...v.voucher }], [v.signature]] as never }) })
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
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise(resolve => setTimeout(resolve, ms))
}
