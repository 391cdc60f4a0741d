// The provider's redeem loop, one step at a time: every stored voucher with unredeemed value goes
// into one `redeem` tx per tick. Exactly once across kill -9: the signed tx is written to the
// outbox before its broadcast; a row found `sent` after a restart is looked up by hash, and if
// it is not on chain, `redeemed()` is read before the very same signed tx is re-broadcast. No
// new redeem is signed while one may still land. And the contract pays `cumulative - redeemed`,
// so even a second tx for the same voucher would pay nothing twice.
import { parseEventLogs, type TransactionReceipt } from 'viem'
import { settlementAbi } from './artifacts/settlement.js'
import type { ChainConnection } from './client.js'
import type { Address, Hex } from './config.js'
import { isChainErrorCode, toChainError } from './errors.js'
import type { Outbox, RedeemEntry, RedeemItem } from './outbox.js'
import type { SendQueue } from './sender.js'
import type { StoredVoucher, VoucherBook } from './vouchers.js'
import type { VoucherDomain } from '../core/settlement/voucher.js'
import type { EscrowView } from './types.js'
import { planRedeems, redeemMarginSec, refundTime, type RedeemCandidate, type RedeemPolicy } from '../core/settlement/redeem-policy.js'

/** At most this many vouchers per redeem tx (keeps one tx far below a block's gas limit). */
export const MAX_VOUCHERS_PER_REDEEM = 100

export interface RedeemerDeps {
  conn: ChainConnection
  outbox: Outbox
  book: VoucherBook
  queue: SendQueue
  contract: Address
  domain: VoucherDomain
  /** This node's payout address: the only provider whose vouchers it may redeem. */
  account: Address
  confirmations: number
  now: () => number
  /** Fresh on-chain reads (the bridge's, so tests and the loop share one code path). */
  escrow: (chainJobId: Hex) => Promise<EscrowView>
  redeemed: (chainJobId: Hex, provider: Address) => Promise<bigint>
  /** Vouchers that need no redeem at this cumulative (redeemed in full, or refunded; key job|provider): not read again. */
  settled: Map<string, bigint>
  /** When a voucher is worth its redeem's gas (core/settlement/redeem-policy.ts); absent = redeem all at once. */
  policy?: RedeemPolicy
  /** The operator asked for a redeem now: what beats its gas goes, even if below the policy's multiple. */
  force?: boolean
  /** Wei one redeem of `v` costs at the current gas price (the bridge caches it). */
  gasCost?: (v: StoredVoucher) => Promise<bigint>
  /** The chain's clock, unix seconds: the refund time is judged by it. */
  chainTime?: () => Promise<number>
  /** Vouchers the policy holds back (key -> why), rewritten each pass: shown in `dbc earnings`. */
  holds?: Map<string, { state: 'waiting' | 'not-worth', reason: string }>
  /**
   * Vouchers held back (by the policy, or blocked on a used-up escrow) at this cumulative, and until
   * when (`now()` ms) they are not read again: a newer voucher, `force` or the time ends it. Without
   * it every held voucher cost two chain reads on every pass (review s14 cheat F1).
   */
  recheck?: Map<string, HeldVoucher>
  /** Whether this pass skips the held vouchers whose time has not come (the loop's schedule); else it reads them all and renews `recheck`. */
  recheckSkips?: boolean
  /** Fault injection for tests: runs once a redeem tx is written down, before its broadcast. */
  beforeBroadcast?: (id: number, txHash: Hex) => void
  /** Fault injection for tests: runs right after a redeem tx was broadcast. */
  afterBroadcast?: (id: number, txHash: Hex) => void
}

export interface RedeemTick {
  /** A redeem tx still on its way (this tick's or an earlier one's). */
  inFlight?: { id: number, txHash: Hex }
  /** Rows confirmed in this tick. */
  confirmed: RedeemEntry[]
  /** Vouchers that still hold unredeemed value a redeem could pay now. */
  redeemable: number
  /** Vouchers with value that can not be paid now (refunded job, escrow used up, a revert). */
  blocked: Array<{ chainJobId: Hex, reason: string }>
  /** Vouchers the redeem policy holds back: below its gas multiple for now, or never worth their gas. */
  waiting?: number
  notWorth?: number
}

/** How long a held voucher (below its gas multiple, or its escrow used up) waits before it is read again. */
export const HELD_RECHECK_MS = 60_000

export interface HeldVoucher { cumulative: bigint, until: number, state: 'waiting' | 'not-worth' | 'blocked', reason: string }

export const voucherKey = (chainJobId: Hex, provider: Address): string => `${chainJobId.toLowerCase()}|${provider.toLowerCase()}`

/** One pass: move in-flight rows forward; if none is left, redeem what is redeemable. */
export async function redeemTick (d: RedeemerDeps): Promise<RedeemTick> {
  const out: RedeemTick = { confirmed: [], redeemable: 0, blocked: [] }
  for (const e of d.outbox.inFlight()) {
    const r = await advanceSent(d, e)
    if (r === 'confirmed') out.confirmed.push(d.outbox.get(e.id) as RedeemEntry)
    else if (r === 'sent') out.inFlight = { id: e.id, txHash: e.txHash }
  }
  if (out.inFlight !== undefined) return out
  const { ready, blocked, waiting, notWorth } = await redeemable(d)
  out.blocked = blocked
  if (waiting > 0) out.waiting = waiting
  if (notWorth > 0) out.notWorth = notWorth
  out.redeemable = ready.length
  if (ready.length === 0) return out
  const before = out.blocked.length
  const sent = await signAndSend(d, ready.slice(0, MAX_VOUCHERS_PER_REDEEM), out)
  // Vouchers whose redeem reverts (not staked, ...) cannot be paid now: they wait for the cause to go.
  out.redeemable -= out.blocked.length - before
  if (sent === undefined) return out
  const r = await advanceSent(d, d.outbox.get(sent) as RedeemEntry)
  if (r === 'confirmed') out.confirmed.push(d.outbox.get(sent) as RedeemEntry)
  else if (r === 'sent') out.inFlight = { id: sent, txHash: (d.outbox.get(sent) as RedeemEntry).txHash }
  return out
}

/** This provider's vouchers (of the current contract) that a redeem would pay something now. */
async function redeemable (d: RedeemerDeps): Promise<{ ready: StoredVoucher[], blocked: RedeemTick['blocked'], waiting: number, notWorth: number }> {
  const ready: StoredVoucher[] = []
  const cands: RedeemCandidate[] = []
  const blocked: RedeemTick['blocked'] = []
  const mine = d.book.received({ provider: d.account }).filter(v => sameDomain(v.domain, d.domain))
  const now = d.now()
  const kept = new Set<string>()
  let heldWaiting = 0; let heldNotWorth = 0
  for (const v of mine) {
    const key = voucherKey(v.voucher.escrowId, v.voucher.provider)
    const known = d.settled.get(key)
    if (known !== undefined && known >= v.voucher.cumulative) continue
    // held back lately at this very total: not read again before its time (a newer voucher, or force, reads it now)
    const h = d.recheck?.get(key)
    if (h !== undefined && d.recheckSkips !== false && h.cumulative === v.voucher.cumulative && now < h.until && d.force !== true) {
      if (h.state === 'blocked') blocked.push({ chainJobId: v.voucher.escrowId, reason: h.reason })
      else { kept.add(key); if (h.state === 'waiting') heldWaiting++; else heldNotWorth++ }
      continue
    }
    d.recheck?.delete(key)
    const done = await d.redeemed(v.voucher.escrowId, d.account)
    if (done >= v.voucher.cumulative) {
      d.settled.set(key, v.voucher.cumulative)
      if (v.lastError !== undefined) d.book.markError(v.voucher.escrowId, v.voucher.provider, undefined)
      continue
    }
    const esc = await d.escrow(v.voucher.escrowId)
    const reason = esc.refunded
      ? `job refunded to the payer; ${v.voucher.cumulative - done} wei signed but never redeemed`
      : esc.unspent === 0n ? 'the job\'s escrow is used up; waiting for the payer to top it up' : undefined
    if (reason !== undefined) {
      // A refunded job pays this voucher nothing, ever: not read again (a newer one is, once).
      if (esc.refunded) d.settled.set(key, v.voucher.cumulative)
      else d.recheck?.set(key, { cumulative: v.voucher.cumulative, until: now + HELD_RECHECK_MS, state: 'blocked', reason })
      blocked.push({ chainJobId: v.voucher.escrowId, reason })
      if (v.lastError !== reason) d.book.markError(v.voucher.escrowId, v.voucher.provider, reason)
      continue
    }
    ready.push(v)
    const owed = v.voucher.cumulative - done
    cands.push({ key, payable: owed < esc.unspent ? owed : esc.unspent, deadline: esc.deadline, closedAt: esc.closedAt, disputeWindow: esc.disputeWindow })
  }
  const policy = await applyPolicy(d, ready, cands, kept, now)
  return { ...policy, waiting: policy.waiting + heldWaiting, notWorth: policy.notWorth + heldNotWorth, blocked }
}

/** The redeem policy's cut: only the vouchers worth their gas now; the rest is noted in `holds`. */
async function applyPolicy (d: RedeemerDeps, ready: StoredVoucher[], cands: RedeemCandidate[], kept: ReadonlySet<string> = new Set(), now = d.now()): Promise<{ ready: StoredVoucher[], waiting: number, notWorth: number }> {
  // holds of vouchers not read this pass (recheck) stay as they were
  if (d.holds !== undefined) for (const k of [...d.holds.keys()]) if (!kept.has(k)) d.holds.delete(k)
  if (d.policy === undefined || d.gasCost === undefined || d.chainTime === undefined || ready.length === 0) return { ready, waiting: 0, notWorth: 0 }
  const gasCost = await d.gasCost(ready[0])
  const chainNow = await d.chainTime()
  const plan = planRedeems(cands, { nowSec: chainNow, gasCost, force: d.force }, d.policy)
  const byKey = new Map(cands.map(c => [c.key, c]))
  const cumulativeOf = new Map(ready.map(v => [voucherKey(v.voucher.escrowId, v.voucher.provider), v.voucher.cumulative]))
  const hold = (key: string, state: 'waiting' | 'not-worth', reason: string): void => {
    d.holds?.set(key, { state, reason })
    const c = byKey.get(key); const cumulative = cumulativeOf.get(key)
    if (d.recheck === undefined || c === undefined || cumulative === undefined) return
    // read again by the time its job ends or its refund nears (the policy redeems it then), a minute at most
    const refundAt = refundTime(c.deadline, c.closedAt, c.disputeWindow)
    const turns = [refundAt === undefined ? undefined : refundAt - redeemMarginSec(c.disputeWindow, d.policy?.maxMarginSec), c.deadline > 0 && c.closedAt === 0 ? c.deadline : undefined]
      .filter((t): t is number => t !== undefined && t > chainNow)
    // and at most its refund margin: a close meanwhile (unseen) brings the refund that near, no nearer
    const margin = redeemMarginSec(c.disputeWindow, d.policy?.maxMarginSec) * 1000
    const waitMs = Math.min(HELD_RECHECK_MS, margin, ...turns.map(t => (t - chainNow) * 1000))
    d.recheck.set(key, { cumulative, until: now + waitMs, state, reason })
  }
  for (const w of plan.waiting) hold(w.key, 'waiting', w.reason)
  for (const n of plan.notWorth) hold(n.key, 'not-worth', n.reason)
  const due = new Set(plan.redeem.map(r => r.key))
  return { ready: ready.filter(v => due.has(voucherKey(v.voucher.escrowId, v.voucher.provider))), waiting: plan.waiting.length, notWorth: plan.notWorth.length }
}

function sameDomain (a: VoucherDomain, b: VoucherDomain): boolean {
  return a.chainId === b.chainId && a.verifyingContract.toLowerCase() === b.verifyingContract.toLowerCase()
}

function redeemArgs (vs: StoredVoucher[]): readonly [Array<{ escrowId: Hex, provider: Address, cumulative: bigint, receiptsRoot: Hex, receiptCount: number }>, Hex[]] {
  return [vs.map(v => ({ ...v.voucher })), vs.map(v => v.signature)]
}

/**
 * Signs one redeem tx for `vs`, writes it down, broadcasts it. A voucher whose redeem would
 * revert (simulated one by one when the batch reverts) is set aside with its reason.
 */
async function signAndSend (d: RedeemerDeps, vs: StoredVoucher[], out: RedeemTick): Promise<number | undefined> {
  let batch = vs
  let tx
  try {
    tx = await sign(d, batch)
  } catch (err) {
    if (!isChainErrorCode(err, 'CONTRACT_REVERTED')) throw err
    const ok: StoredVoucher[] = []
    for (const v of batch) {
      try {
        await d.conn.publicClient.simulateContract({ address: d.contract, abi: settlementAbi, functionName: 'redeem', args: redeemArgs([v]) as never, account: d.conn.account } as never)
        ok.push(v)
      } catch (e) {
        const ce = toChainError(e, { action: `redeeming job ${v.voucher.escrowId.slice(0, 10)}`, url: d.conn.url })
        if (ce.code !== 'CONTRACT_REVERTED') throw ce
        d.book.markError(v.voucher.escrowId, v.voucher.provider, ce.message)
        out.blocked.push({ chainJobId: v.voucher.escrowId, reason: ce.message })
      }
    }
    if (ok.length === 0) return undefined
    batch = ok
    tx = await sign(d, batch)
  }
  return tx
}

async function sign (d: RedeemerDeps, batch: StoredVoucher[]): Promise<number> {
  return await d.queue.run(async () => {
    const tx = await d.queue.signCall({ address: d.contract, abi: settlementAbi, functionName: 'redeem', args: redeemArgs(batch) as never, action: `redeeming ${batch.length} voucher(s)` })
    const items: RedeemItem[] = batch.map(v => ({ chainJobId: v.voucher.escrowId, provider: v.voucher.provider, cumulative: v.voucher.cumulative }))
    // Write-ahead: once this row exists, a crash can only lead to re-broadcasting this tx.
    const id = d.outbox.recordSent(items, tx, d.now())
    d.beforeBroadcast?.(id, tx.hash)
    await d.queue.broadcast(tx, 'broadcasting a redeem')
    d.afterBroadcast?.(id, tx.hash)
    return id
  })
}

type Advance = 'confirmed' | 'sent' | 'dropped'

/** A written-down redeem tx: confirm it, wait for depth, re-broadcast it, or drop it. */
export async function advanceSent (d: RedeemerDeps, e: RedeemEntry): Promise<Advance> {
  const receipt = await receiptOf(d, e.txHash)
  if (receipt !== undefined) {
    if (receipt.status !== 'success') {
      d.outbox.markDropped(e.id, `tx ${e.txHash} reverted`, d.now())
      return 'dropped'
    }
    return await confirmIfDeep(d, e, receipt)
  }
  // Not on chain (lost with a crashed node, or still in a mempool). Read the chain first: if
  // everything it carries is redeemed already, another tx of ours paid it; this one would pay 0.
  let unpaid = false
  for (const i of e.items) if (await d.redeemed(i.chainJobId, i.provider) < i.cumulative) unpaid = true
  if (!unpaid) {
    // mined between the receipt read and these reads: this tx is what paid (seen once in CI)
    if (await receiptOf(d, e.txHash) !== undefined) return await advanceSent(d, e)
    d.outbox.markDropped(e.id, 'everything it carries is redeemed already', d.now())
    return 'dropped'
  }
  if (e.rawTx === undefined) {
    d.outbox.markDropped(e.id, 'no signed tx kept', d.now())
    return 'dropped'
  }
  try {
    d.outbox.markAttempt(e.id, d.now())
    await d.queue.broadcast({ hash: e.txHash, raw: e.rawTx, nonce: e.nonce, gas: 0n }, 're-broadcasting a redeem')
  } catch (err) {
    if (!isChainErrorCode(err, 'NONCE_TOO_LOW')) throw err
    // Its nonce went to another tx: unless it is that tx, it can never land. Sign a fresh one next.
    const again = await receiptOf(d, e.txHash)
    if (again !== undefined) return await advanceSent(d, e)
    d.outbox.markDropped(e.id, 'nonce taken by another transaction', d.now())
    return 'dropped'
  }
  const after = await receiptOf(d, e.txHash)
  return after === undefined ? 'sent' : await advanceSent(d, e)
}

async function confirmIfDeep (d: RedeemerDeps, e: RedeemEntry, receipt: TransactionReceipt): Promise<Advance> {
  let head: bigint
  try {
    head = await d.conn.publicClient.getBlockNumber({ cacheTime: 0 })
  } catch (err) {
    throw toChainError(err, { action: 'reading the block number', url: d.conn.url })
  }
  if (head - receipt.blockNumber + 1n < BigInt(d.confirmations)) return 'sent'
  const events = parseEventLogs({ abi: settlementAbi, logs: receipt.logs, eventName: 'Redeemed' })
    .filter(l => l.address.toLowerCase() === d.contract.toLowerCase())
  const paid = events.map(l => {
    const a = l.args
    return { chainJobId: a.escrowId, amount: a.amount, cumulative: a.cumulative }
  })
  d.outbox.markConfirmed(e.id, { blockNumber: Number(receipt.blockNumber), gasUsed: receipt.gasUsed, paid }, d.now())
  for (const i of e.items) d.settled.delete(voucherKey(i.chainJobId, i.provider))
  return 'confirmed'
}

async function receiptOf (d: RedeemerDeps, hash: Hex): Promise<TransactionReceipt | undefined> {
  try {
    return await d.conn.publicClient.getTransactionReceipt({ hash })
  } catch (err) {
    if ((err as Error).name === 'TransactionReceiptNotFoundError') return undefined
    throw toChainError(err, { action: 'reading a transaction receipt', url: d.conn.url })
  }
}
