// Small helpers for summaries and chart data (run once per scenario, not on hot paths).
import type { ChartSeries } from './types.js'

export function sortedCopy (xs: ArrayLike<number>): Float64Array {
  const a = Float64Array.from(xs as ArrayLike<number>)
  a.sort()
  return a
}

export function quantile (sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[i]
}

export function mean (xs: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < xs.length; i++) s += xs[i]
  return xs.length === 0 ? NaN : s / xs.length
}

/** An empirical CDF with at most `points` points (x = value, y = share <= x). */
export function cdfSeries (label: string, sorted: Float64Array, points = 200): ChartSeries {
  const data: Array<{ x: number, y: number }> = []
  const n = sorted.length
  if (n === 0) return { label, data }
  const step = Math.max(1, Math.floor(n / points))
  for (let i = step - 1; i < n; i += step) data.push({ x: round(sorted[i]), y: round((i + 1) / n) })
  if (data[data.length - 1].y !== 1) data.push({ x: round(sorted[n - 1]), y: 1 })
  return { label, data }
}

/** Rounds to 4 significant digits so JSON stays small and stable. */
export function round (x: number): number {
  if (!Number.isFinite(x) || x === 0) return x
  return Number(x.toPrecision(4))
}

export function histogramSeries (label: string, counts: ArrayLike<number>, normalise = true): ChartSeries {
  let total = 0; let last = 0
  for (let i = 0; i < counts.length; i++) { total += counts[i]; if (counts[i] > 0) last = i }
  const data: Array<{ x: number, y: number }> = []
  for (let i = 0; i <= last; i++) data.push({ x: i, y: normalise ? round(counts[i] / Math.max(1, total)) : counts[i] })
  return { label, data }
}
