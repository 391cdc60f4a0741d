// Amounts charged for metered work, in integer smallest token units (bigint, decimal string on
// the wire). Prices are in whole tokens per hour, as in offers and capability records.
//
// Rounding, in this order (documented in src/compute/README.md):
//  1. a price is converted to smallest units per hour exactly from its decimal text; digits
//     beyond the token's decimals are dropped;
//  2. metered GPU-seconds and CPU time are rounded to whole milliseconds, by the receipt's
//     pricing version: 0 (receipts before session 14) half up, so a task under 0.5 ms paid
//     nothing; 1 to whole microseconds (half up), then up to whole milliseconds, so a task that
//     measured any time pays at least 1 ms (as cloud functions bill; its dispatch, result and
//     receipt cost the provider more than that). Both sides recompute the amount by the version
//     the receipt names: a provider uses 1 only when its submitter says it checks it;
//  3. amount = floor((gpuUnitsPerHour * gpuMs + cpuUnitsPerHour * cpuMs) / 3_600_000):
//     one division at the end, rounded down, so the consumer is never charged for a fraction
//     of a unit and the provider loses less than one unit per receipt.

export const TOKEN_DECIMALS = 18
const MS_PER_HOUR = 3_600_000n

/** Rule 2 half up to whole ms: what a receipt without a pricing version was priced by. */
export const PRICING_V0_ROUND_MS = 0
/** Rule 2 up to whole ms (after rounding to whole us): any measured time pays at least 1 ms. */
export const PRICING_V1_CEIL_MS = 1
/** The highest pricing version this code prices and checks. */
export const PRICING_VERSION = PRICING_V1_CEIL_MS

/** The version a receipt is priced by when the other side checks up to `theirs` (absent: an older peer, 0). */
export function agreedPricingVersion (theirs: number | null | undefined): number {
  const v = Number(theirs ?? 0)
  return Number.isInteger(v) && v > 0 ? Math.min(v, PRICING_VERSION) : PRICING_V0_ROUND_MS
}

export interface MeteredUsage {
  wallMs: number
  cpuMs: number
  /** GPUs allocated × wall seconds. */
  gpuSeconds: number
  bytesIn: number
  bytesOut: number
}

export interface HourlyPrices {
  /** Tokens per GPU-hour. */
  priceGpuHour: number
  /** Tokens per CPU-hour (per core). */
  priceCpuHour: number
}

const DECIMAL = /^(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i

/** Prices (numbers) at TOKEN_DECIMALS already converted: every receipt checked prices the same few (its offer's). */
const unitsOf = new Map<number, bigint>()
const UNITS_CACHED_MAX = 256

/** "1.25" tokens → 1250000000000000000n units (18 decimals). Throws RangeError on bad input. */
export function decimalToUnits (value: number | string, decimals = TOKEN_DECIMALS): bigint {
  if (typeof value === 'number' && decimals === TOKEN_DECIMALS) {
    const hit = unitsOf.get(value)
    if (hit !== undefined) return hit
    const units = decimalUnits(value, decimals)
    if (unitsOf.size >= UNITS_CACHED_MAX) unitsOf.clear()
    unitsOf.set(value, units)
    return units
  }
  return decimalUnits(value, decimals)
}

function decimalUnits (value: number | string, decimals: number): bigint {
  const text = typeof value === 'number' ? String(value) : value.trim()
  const m = DECIMAL.exec(text)
  if (m === null || (m[1] === '' && (m[2] ?? '') === '')) throw new RangeError(`price "${text}" is not a non-negative decimal number`)
  const frac = m[2] ?? ''
  const digits = BigInt((m[1] + frac).replace(/^0+(?=\d)/, '') || '0')
  const exp = Number(m[3] ?? 0) - frac.length + decimals
  return exp >= 0 ? digits * 10n ** BigInt(exp) : digits / 10n ** BigInt(-exp)
}

/** Metered usage as a receipt prices it: `pricingVersion` absent is version 0. */
export type PricedUsage = Pick<MeteredUsage, 'gpuSeconds' | 'cpuMs'> & { pricingVersion?: number | null }

/** Whole milliseconds of `ms` by rule 2 of `version`. */
function billedMs (ms: number, version: number): bigint {
  if (version === PRICING_V0_ROUND_MS) return BigInt(Math.round(ms))
  // whole us first: a float's last bit (0.001 * 1000 = 1.0000000000000002) does not add a ms
  const us = BigInt(Math.round(ms * 1000))
  return (us + 999n) / 1000n
}

/**
 * Units charged for one task's usage; see the rounding rules at the top of this file. Throws
 * RangeError on negative or non-finite usage and on a pricing version this code does not know.
 */
export function chargeUnits (usage: PricedUsage, prices: HourlyPrices, decimals = TOKEN_DECIMALS): bigint {
  if (!(usage.gpuSeconds >= 0) || !(usage.cpuMs >= 0) || !Number.isFinite(usage.gpuSeconds) || !Number.isFinite(usage.cpuMs)) throw new RangeError('metered usage must be non-negative numbers')
  const version = usage.pricingVersion ?? PRICING_V0_ROUND_MS
  if (!Number.isInteger(version) || version < 0 || version > PRICING_VERSION) throw new RangeError(`pricing version ${version} is not known here (this node prices versions 0-${PRICING_VERSION}: upgrade it)`)
  const gpuMs = billedMs(usage.gpuSeconds * 1000, version)
  const cpuMs = billedMs(usage.cpuMs, version)
  const gpuUnits = decimalToUnits(prices.priceGpuHour, decimals)
  const cpuUnits = decimalToUnits(prices.priceCpuHour, decimals)
  return (gpuUnits * gpuMs + cpuUnits * cpuMs) / MS_PER_HOUR
}

/** Hourly price of one slot of this shape: what a lease request's max_price_hour is compared to. */
export function slotPriceHour (gpus: number, cpus: number, prices: HourlyPrices): number {
  return gpus * prices.priceGpuHour + cpus * prices.priceCpuHour
}
