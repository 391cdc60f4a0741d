// Amounts charged for metered work, in integer smallest token units (bigint, decimal string on
// the wire). Prices are in whole tokens per hour, as in offers and capability records.
//
// Rounding, in this order (documented in src/compute/README.md):
//  1. a price is converted to smallest units per hour exactly from its decimal text; digits
//     beyond the token's decimals are dropped;
//  2. metered GPU-seconds and CPU time are rounded to whole milliseconds (half up);
//  3. amount = floor((gpuUnitsPerHour * gpuMs + cpuUnitsPerHour * cpuMs) / 3_600_000):
//     one division at the end, rounded down, so the consumer is never charged for a fraction
//     of a unit and the provider loses less than one unit per receipt.

export const TOKEN_DECIMALS = 18
const MS_PER_HOUR = 3_600_000n

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

/** "1.25" tokens → 1250000000000000000n units (18 decimals). Throws RangeError on bad input. */
export function decimalToUnits (value: number | string, decimals = TOKEN_DECIMALS): bigint {
  const text = typeof value === 'number' ? String(value) : value.trim()
  const m = DECIMAL.exec(text)
  if (m === null || (m[1] === '' && (m[2] ?? '') === '')) throw new RangeError(`price "${text}" is not a non-negative decimal number`)
  const frac = m[2] ?? ''
  const digits = BigInt((m[1] + frac).replace(/^0+(?=\d)/, '') || '0')
  const exp = Number(m[3] ?? 0) - frac.length + decimals
  return exp >= 0 ? digits * 10n ** BigInt(exp) : digits / 10n ** BigInt(-exp)
}

/** Units charged for one task's usage; see the rounding rules at the top of this file. */
export function chargeUnits (usage: Pick<MeteredUsage, 'gpuSeconds' | 'cpuMs'>, prices: HourlyPrices, decimals = TOKEN_DECIMALS): bigint {
  if (!(usage.gpuSeconds >= 0) || !(usage.cpuMs >= 0)) throw new RangeError('metered usage must be non-negative numbers')
  const gpuMs = BigInt(Math.round(usage.gpuSeconds * 1000))
  const cpuMs = BigInt(Math.round(usage.cpuMs))
  const gpuUnits = decimalToUnits(prices.priceGpuHour, decimals)
  const cpuUnits = decimalToUnits(prices.priceCpuHour, decimals)
  return (gpuUnits * gpuMs + cpuUnits * cpuMs) / MS_PER_HOUR
}

/** Hourly price of one slot of this shape: what a lease request's max_price_hour is compared to. */
export function slotPriceHour (gpus: number, cpus: number, prices: HourlyPrices): number {
  return gpus * prices.priceGpuHour + cpus * prices.priceCpuHour
}
