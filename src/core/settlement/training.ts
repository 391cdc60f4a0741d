// A training member's price for one round, decided by the member alone (review: a hostile
// coordinator set `deadline.maxMs: 1` and a round looked free, so a 1-wei escrow passed).
// The rule: a round costs the member's own hourly price for the slot it gives the job (its GPUs
// at its GPU-hour price, else one core at its CPU-hour price) for a round time it bounds itself:
// the longer of its operator's floor (`provider.training.minRoundS`) and the longest round it
// has measured in this job so far; never less than the most one of its rounds has billed. Nothing
// the coordinator sends (deadline, spec prices) enters it, so nothing it sends can lower it.
// The escrow check at the invitation and before every round (credit.ts decideAdmission) uses it.
import type { HourlyPrices } from '../compute/pricing.js'
import { decimalToUnits, TOKEN_DECIMALS } from '../compute/pricing.js'
import { slotUnitsPerHour } from './bounds.js'
import { taskPriceUnits } from './credit.js'
import { formatCoins } from './stake.js'

/** The floor of a round's time when the operator sets none (config provider.training.minRoundS). */
export const DEFAULT_MIN_ROUND_S = 60

export interface MemberRoundInput {
  /** The member's own prices (its provider policy). */
  prices: HourlyPrices
  /** GPUs the member gives the job (0: one CPU core). */
  gpus: number
  /** The operator's floor of a round's time, ms. */
  minRoundMs: number
  /** Longest round this member measured in this job (its compute time), ms; 0 before the first. */
  longestMs?: number
  /** Most one of its rounds billed in this job (its receipt's amount), wei; 0 before the first. */
  mostBilled?: bigint
}

/** The slot a member gives a round: its GPUs, else one core. */
export function roundSlot (gpus: number): { gpus: number, cores: number } {
  const g = Number.isFinite(gpus) && gpus > 0 ? Math.floor(gpus) : 0
  return { gpus: g, cores: g > 0 ? 0 : 1 }
}

/** One round's price and time as the member bounds them (see the file comment). */
export function memberRoundPrice (p: MemberRoundInput): { price: bigint, roundMs: number } {
  const floor = Number.isFinite(p.minRoundMs) && p.minRoundMs > 0 ? p.minRoundMs : DEFAULT_MIN_ROUND_S * 1000
  const longest = Number.isFinite(p.longestMs) && (p.longestMs ?? 0) > 0 ? p.longestMs! : 0
  const roundMs = Math.max(floor, longest)
  const { gpus, cores } = roundSlot(p.gpus)
  const byTime = taskPriceUnits(p.prices, gpus, cores, roundMs)
  const billed = p.mostBilled !== undefined && p.mostBilled > 0n ? p.mostBilled : 0n
  return { price: byTime > billed ? byTime : billed, roundMs }
}

/**
 * Why a member refuses a job whose cap on the hourly price is below its own slot price (it would
 * be paid less than it bills, and fall "behind" on an honest payer); undefined when the cap allows it.
 */
export function priceAboveCap (prices: HourlyPrices, gpus: number, maxPricePerHour: number): string | undefined {
  const { gpus: g, cores } = roundSlot(gpus)
  let hourly: bigint
  let cap: bigint
  try {
    hourly = slotUnitsPerHour(prices, g, cores)
    cap = decimalToUnits(maxPricePerHour, TOKEN_DECIMALS)
  } catch {
    return 'the job\'s maxPricePerHour is not a price'
  }
  if (hourly <= cap) return undefined
  return `this member asks ${formatCoins(hourly)} DBC per hour for ${g > 0 ? `${g} GPU(s)` : 'one core'}, above the job's maxPricePerHour of ${formatCoins(cap)} DBC`
}
