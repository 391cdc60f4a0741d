// What a submitter pays for one receipt: never more than the provider billed, never more than
// its own signed offer's price for the time the task was allowed (its timeout) and the
// submitter measured, never past the manifest's caps (maxPricePerHour, budget.total). The
// provider signs its receipts, so a receipt is a claim, not a bill: the rest is refused and
// reported. Pure: amounts in smallest token units (bigint), prices in tokens per hour.
import { chargeUnits, decimalToUnits, TOKEN_DECIMALS, type HourlyPrices, type PricedUsage } from '../compute/pricing.js'
import { formatCoins } from './stake.js'

const MS_PER_HOUR = 3_600_000n

export interface BoundInput {
  /** What the provider's receipt bills (smallest units). */
  receiptAmount: bigint
  /** The receipt's metered usage and pricing version, repriced at the offer's prices when given. */
  usage?: PricedUsage
  /** Prices of the provider's signed offer (tokens per hour). */
  offer: HourlyPrices
  /** The task's shape: what one slot of the offer costs per hour. */
  gpus: number
  cores: number
  /** Wall time the submitter measured from sending the task to receiving its result (ms). */
  measuredMs: number
  /** The task's timeout (ms): no task is paid for longer. */
  timeoutMs: number
  /** manifest budget.maxPricePerHour (tokens per hour for one task's slot). */
  maxPricePerHour?: number
  /** manifest budget.total in smallest units, and what this job already committed to pay. */
  budgetTotal?: bigint
  committed?: bigint
  decimals?: number
}

export type BoundLimit = 'receipt' | 'offer-price' | 'time' | 'max-price' | 'budget'

export interface BoundResult {
  /** What may be signed for this receipt. */
  payable: bigint
  /** receiptAmount - payable. */
  refused: bigint
  /** Which bound decided the payable amount ('receipt': paid in full). */
  limit: BoundLimit
  /** Why part of the bill was refused, for people (undefined when paid in full). */
  reason?: string
}

const dbc = (units: bigint, decimals: number): string => `${formatCoins(units, decimals)} DBC`

/** The hourly price of one task's slot under this offer (smallest units per hour). */
export function slotUnitsPerHour (offer: HourlyPrices, gpus: number, cores: number, decimals = TOKEN_DECIMALS): bigint {
  return BigInt(Math.max(0, Math.round(gpus))) * decimalToUnits(offer.priceGpuHour, decimals) +
    BigInt(Math.max(0, Math.round(cores))) * decimalToUnits(offer.priceCpuHour, decimals)
}

/** Bounds one receipt; see the file comment. Never throws on bad numbers: they pay nothing. */
export function boundReceipt (input: BoundInput): BoundResult {
  const decimals = input.decimals ?? TOKEN_DECIMALS
  const billed = input.receiptAmount > 0n ? input.receiptAmount : 0n
  let payable = billed
  let limit: BoundLimit = 'receipt'
  let reason: string | undefined
  const cap = (amount: bigint, l: BoundLimit, why: () => string): void => {
    if (amount < payable) { payable = amount < 0n ? 0n : amount; limit = l; reason = why() }
  }
  let hourly: bigint
  let maxHourly: bigint | undefined
  try {
    hourly = slotUnitsPerHour(input.offer, input.gpus, input.cores, decimals)
    if (input.maxPricePerHour !== undefined) maxHourly = decimalToUnits(input.maxPricePerHour, decimals)
  } catch {
    return { payable: 0n, refused: billed, limit: 'offer-price', reason: 'the offer\'s prices are not valid numbers' }
  }
  if (input.usage !== undefined) {
    let repriced: bigint
    try { repriced = chargeUnits(input.usage, input.offer, decimals) } catch { repriced = 0n }
    cap(repriced, 'offer-price', () => `billed ${dbc(billed, decimals)}, its usage at the offer's prices (${input.offer.priceCpuHour} DBC/CPU-h, ${input.offer.priceGpuHour} DBC/GPU-h) is ${dbc(repriced, decimals)}`)
  }
  const measuredOk = Number.isFinite(input.measuredMs) && input.measuredMs >= 0
  const measured = measuredOk ? input.measuredMs : 0
  const allowed = Number.isFinite(input.timeoutMs) && input.timeoutMs > 0 ? input.timeoutMs : 0
  // at least 1 ms: a result back within the runtime clock's same millisecond measures 0 (the caller
  // passes measuredMs; this module reads no clock), and pricing version 1
  // bills any measured time as at least 1 ms (NaN or negative: no measurement, nothing)
  const ms = measuredOk && allowed > 0 ? BigInt(Math.max(1, Math.ceil(Math.min(measured, allowed)))) : 0n
  const rate = maxHourly !== undefined && maxHourly < hourly ? maxHourly : hourly
  const timeCap = rate * ms / MS_PER_HOUR
  const byRate = maxHourly !== undefined && maxHourly < hourly
  cap(timeCap, byRate ? 'max-price' : 'time', () => byRate
    ? `billed ${dbc(billed, decimals)}, the manifest's maxPricePerHour (${dbc(maxHourly!, decimals)}/h) for ${ms} ms allows ${dbc(timeCap, decimals)}`
    : `billed ${dbc(billed, decimals)}, the offer's price (${dbc(hourly, decimals)}/h) for ${ms} ms (${measured <= allowed ? 'measured by the submitter' : 'the task timeout'}) allows ${dbc(timeCap, decimals)}`)
  if (input.budgetTotal !== undefined) {
    const room = input.budgetTotal - (input.committed ?? 0n)
    cap(room > 0n ? room : 0n, 'budget', () => `budget.total (${dbc(input.budgetTotal!, decimals)}) leaves ${dbc(room > 0n ? room : 0n, decimals)} for this receipt`)
  }
  return { payable, refused: billed - payable, limit, reason }
}

