// Bandwidth-aware slicing for the butterfly all-reduce (Hivemind's load balancing idea): a
// member's slice is what it must receive from and send back to every other member, so a round
// takes about max over members of (slice bytes / bandwidth). Slices proportional to bandwidth
// make those times equal; a floor keeps every member a share (a slow member still owns part of
// the vector, so its bandwidth keeps being measured and one bad measurement cannot starve it).
// Pure and deterministic: every member computes the same bounds from the same inputs (the
// bandwidths the coordinator sends in RoundStart), so no bound ever travels on the wire.

/** Share of the equal slice (length / n) every member keeps at least (default). */
export const DEFAULT_MIN_SHARE = 0.1

export interface PartitionOptions {
  /** Fraction of the equal share each member keeps at least, in [0, 1] (default DEFAULT_MIN_SHARE). */
  minShare?: number
}

/** Bandwidths usable for a partition: one finite positive value per member. */
export function validBandwidths (bandwidths: readonly number[] | undefined, members: number): boolean {
  return bandwidths !== undefined && bandwidths.length === members && members > 0 && bandwidths.every(b => Number.isFinite(b) && b > 0)
}

/**
 * Slice sizes (values per member, summing to `length`) proportional to `bandwidths`, each at
 * least floor(minShare · length / n). Equal bandwidths (or unusable ones) give the equal split of
 * sliceRange(). Members whose proportional share falls under the floor get the floor and the
 * rest is shared out again among the others (water-filling), then whole values go by largest
 * remainder, ties to the lower index.
 */
export function partitionSizes (length: number, bandwidths: readonly number[], opts: PartitionOptions = {}): number[] {
  const n = bandwidths.length
  if (n === 0) return []
  if (!validBandwidths(bandwidths, n) || bandwidths.every(b => b === bandwidths[0])) return equalSizes(length, n)
  const minShare = Math.min(1, Math.max(0, opts.minShare ?? DEFAULT_MIN_SHARE))
  const floor = Math.floor((minShare * length) / n)
  const fixed = new Array<boolean>(n).fill(false)
  const exact = new Array<number>(n).fill(0)
  for (;;) {
    let rest = length
    let bw = 0
    for (let i = 0; i < n; i++) { if (fixed[i]) rest -= floor; else bw += bandwidths[i] }
    let changed = false
    for (let i = 0; i < n; i++) {
      if (fixed[i]) { exact[i] = floor; continue }
      exact[i] = (rest * bandwidths[i]) / bw
      if (exact[i] < floor) { fixed[i] = true; changed = true }
    }
    if (!changed) break
  }
  const sizes = exact.map(x => Math.floor(x))
  let left = length - sizes.reduce((a, b) => a + b, 0)
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (let k = 0; left > 0; k = (k + 1) % n, left--) sizes[order[k].i]++
  return sizes
}

/** The equal split, identical to sliceRange(length, n, i) for each i. */
export function equalSizes (length: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.floor(((i + 1) * length) / n) - Math.floor((i * length) / n))
}

/** Offsets [0, s0, s0+s1, ..., length]: slice i is [bounds[i], bounds[i+1]). */
export function boundsOf (sizes: readonly number[]): number[] {
  const b = [0]
  for (const s of sizes) b.push(b[b.length - 1] + s)
  return b
}

/**
 * Modelled round time for a partition, seconds: member i receives and sends back its slice to
 * the n−1 others, and sends the rest of its own vector out and gets it back, at `bandwidths[i]`
 * values/s each way. The bench compares partitions with it; the runtime measures instead.
 */
export function modelledRoundSeconds (sizes: readonly number[], bandwidths: readonly number[]): number {
  const n = sizes.length
  const length = sizes.reduce((a, b) => a + b, 0)
  let worst = 0
  for (let i = 0; i < n; i++) worst = Math.max(worst, ((n - 1) * sizes[i] + (length - sizes[i])) / bandwidths[i])
  return worst
}

/**
 * A member's bandwidth, bytes/s, as an exponentially weighted moving average of what its rounds
 * moved (bytes written and the time its sends were busy). Pure: the caller measures.
 */
export class BandwidthEstimate {
  private current: number | undefined
  constructor (private readonly alpha = 0.3, private readonly minBytes = 64 * 1024) {}

  /** The estimate, bytes/s; undefined before a large enough transfer was seen. */
  get value (): number | undefined { return this.current }

  /** One round's transfer: `bytes` written during `busyMs` of sending. Tiny samples are ignored (noise). */
  observe (bytes: number, busyMs: number): void {
    if (!(bytes >= this.minBytes) || !(busyMs > 0)) return
    const sample = bytes / (busyMs / 1000)
    this.current = this.current === undefined ? sample : this.alpha * sample + (1 - this.alpha) * this.current
  }
}
