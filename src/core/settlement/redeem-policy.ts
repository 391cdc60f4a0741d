// When a provider redeems its vouchers (sans-IO: the caller passes chain time, gas cost and the
// escrow facts). A redeem costs gas; a job's value grows voucher by voucher. Redeeming on every
// tick spends more in gas than small jobs earn, and waiting too long lets the payer refund after
// min(deadline, closedAt) + disputeWindow. So a voucher is redeemed when
//   (a) what it would pay now is at least `minGasMultiple` x the gas of one redeem (worth it), or
//   (b) the job is closed or past its deadline (no more vouchers will come), or
//   (c) the refund time is near (within `marginSec`), or the operator asked (`force`),
// and in (b)/(c) only if it pays more than the gas. What never beats the gas is `notWorth`
// (reported, never silently dropped). Every due voucher goes into the same tx.

export interface RedeemCandidate {
  key: string
  /** What a redeem would pay now: min(cumulative - redeemed, escrow - paid), wei. */
  payable: bigint
  /** The job on chain, unix seconds (0 = unset). */
  deadline: number
  closedAt: number
  disputeWindow: number
}

export interface RedeemPolicy {
  /** Redeem early once a voucher is worth this many redeems' gas (default 10). */
  minGasMultiple: number
  /** Longest safety margin before the refund time, seconds (default 600; also at most half the window). */
  maxMarginSec?: number
}

export const DEFAULT_MIN_REDEEM_GAS_MULTIPLE = 10
export const DEFAULT_REDEEM_MARGIN_SEC = 600

export type RedeemWhy = 'worth' | 'final' | 'refund-near' | 'asked'

export interface RedeemPlan {
  /** Due now, in the order given: one tx for all. */
  redeem: Array<{ key: string, why: RedeemWhy }>
  /** Worth less than the threshold for now; more vouchers may come. */
  waiting: Array<{ key: string, reason: string }>
  /** Final (or refund near) and worth no more than one redeem's gas: left on chain on purpose. */
  notWorth: Array<{ key: string, payable: bigint, gasCost: bigint, reason: string }>
}

/** Seconds before the refund time at which a provider stops waiting: min(window / 2, maxMargin). */
export function redeemMarginSec (disputeWindow: number, maxMarginSec = DEFAULT_REDEEM_MARGIN_SEC): number {
  return Math.min(Math.floor(disputeWindow / 2), maxMarginSec)
}

/** When the payer may refund: min(deadline, closedAt) + disputeWindow (undefined while neither is set). */
export function refundTime (deadline: number, closedAt: number, disputeWindow: number): number | undefined {
  const ends = [deadline, closedAt].filter(t => t > 0)
  return ends.length === 0 ? undefined : Math.min(...ends) + disputeWindow
}

/**
 * Decides which candidates to redeem now. `gasCost` is the wei one redeem of one voucher costs at
 * the current gas price; `nowSec` is the chain's clock (refunds are judged by it).
 */
export function planRedeems (cands: RedeemCandidate[], ctx: { nowSec: number, gasCost: bigint, force?: boolean }, policy: RedeemPolicy): RedeemPlan {
  if (!Number.isFinite(policy.minGasMultiple) || policy.minGasMultiple < 0) throw new RangeError('minGasMultiple must be a non-negative number')
  const plan: RedeemPlan = { redeem: [], waiting: [], notWorth: [] }
  // bigint threshold with the multiple's fraction kept to 1/1000
  const worth = ctx.gasCost * BigInt(Math.round(policy.minGasMultiple * 1000)) / 1000n
  for (const c of cands) {
    if (c.payable <= 0n) continue
    if (c.payable >= worth && c.payable > 0n) { plan.redeem.push({ key: c.key, why: 'worth' }); continue }
    const refundAt = refundTime(c.deadline, c.closedAt, c.disputeWindow)
    const final = c.closedAt > 0 || (c.deadline > 0 && ctx.nowSec >= c.deadline)
    const near = refundAt !== undefined && ctx.nowSec >= refundAt - redeemMarginSec(c.disputeWindow, policy.maxMarginSec)
    const why: RedeemWhy | undefined = near ? 'refund-near' : final ? 'final' : ctx.force === true ? 'asked' : undefined
    if (why === undefined) {
      plan.waiting.push({ key: c.key, reason: `waiting: ${dbc(c.payable)} DBC is below ${policy.minGasMultiple}x the gas of one redeem (${dbc(ctx.gasCost)} DBC); redeemed when it grows, the job closes, or its refund time nears` })
    } else if (c.payable > ctx.gasCost) {
      plan.redeem.push({ key: c.key, why })
    } else {
      plan.notWorth.push({ key: c.key, payable: c.payable, gasCost: ctx.gasCost, reason: `not worth redeeming: ${dbc(c.payable)} DBC pending, one redeem costs about ${dbc(ctx.gasCost)} DBC in gas` })
    }
  }
  return plan
}

/** Wei as DBC, every decimal kept (for the reasons people read; dust must not read as 0). */
function dbc (wei: bigint): string {
  const frac = (wei % 10n ** 18n).toString().padStart(18, '0').replace(/0+$/, '')
  return `${wei / 10n ** 18n}${frac === '' ? '' : `.${frac}`}`
}
