// The virtual network: one-way latency from geography (great circle at fibre speed times
// path inflation, plus both access links, plus exponential jitter), random loss, node
// liveness, and partitions (nodes carry a partition label; messages cross only within
// one label). Every call is O(1) on typed arrays.
import type { SimRandom } from '../engine/random.js'
import { EARTH_RADIUS_KM, type Population } from './population.js'

export interface NetworkOptions {
  fibreKmPerMs: number
  /** Route length / great-circle length. */
  pathInflation: number
  /** Mean of the exponential per-message jitter, ms. */
  jitterMeanMs: number
  /** Probability that one message is lost. */
  lossRate: number
}

export const DEFAULT_NETWORK: NetworkOptions = { fibreKmPerMs: 200, pathInflation: 1.7, jitterMeanMs: 1, lossRate: 0 }

export class VirtualNetwork {
  readonly online: Uint8Array
  /** Partition label per node; 0 for everyone when there is no partition. */
  readonly partition: Uint8Array
  readonly opts: NetworkOptions
  private readonly msPerKm: number
  /** x, y, z and access delay of each node side by side (one cache line per node on the RPC path; placements never move after placeNodes). */
  private readonly geo: Float32Array
  /** Whether any partition label is set (delivers() skips the label check otherwise). */
  private partitioned = false

  constructor (readonly pop: Population, readonly rng: SimRandom, opts: Partial<NetworkOptions> = {}) {
    this.opts = { ...DEFAULT_NETWORK, ...opts }
    this.online = new Uint8Array(pop.count).fill(1)
    this.partition = new Uint8Array(pop.count)
    this.msPerKm = this.opts.pathInflation / this.opts.fibreKmPerMs
    const g = this.geo = new Float32Array(pop.count * 4)
    for (let n = 0; n < pop.count; n++) { g[4 * n] = pop.x[n]; g[4 * n + 1] = pop.y[n]; g[4 * n + 2] = pop.z[n]; g[4 * n + 3] = pop.accessMs[n] }
  }

  /** Base one-way latency without jitter, ms (deterministic, for "true" RTTs). */
  baseOneWayMs (a: number, b: number): number {
    if (a === b) return 0
    // distanceKm(pop, a, b) on the interleaved copy (same float32 values, same arithmetic).
    const g = this.geo; const ga = 4 * a; const gb = 4 * b
    const dot = g[ga] * g[gb] + g[ga + 1] * g[gb + 1] + g[ga + 2] * g[gb + 2]
    return g[ga + 3] + g[gb + 3] + EARTH_RADIUS_KM * Math.acos(dot > 1 ? 1 : (dot < -1 ? -1 : dot)) * this.msPerKm
  }

  /** One sampled one-way delay including jitter, ms. */
  oneWayMs (a: number, b: number): number {
    return this.baseOneWayMs(a, b) + this.rng.exp(this.opts.jitterMeanMs)
  }

  /**
   * A round trip a -> b -> a: oneWayMs(a, b) + oneWayMs(b, a) with the same draws in the same
   * order (the base delay is symmetric, so it is computed once).
   */
  roundTripMs (a: number, b: number): number {
    const base = this.baseOneWayMs(a, b)
    return (base + this.rng.exp(this.opts.jitterMeanMs)) + (base + this.rng.exp(this.opts.jitterMeanMs))
  }

  /** Whether a message from a to b gets through (both up, same partition, not lost). */
  delivers (a: number, b: number): boolean {
    if (this.online[a] === 0 || this.online[b] === 0) return false
    if (this.partitioned && this.partition[a] !== this.partition[b]) return false
    return this.opts.lossRate === 0 || this.rng.next() >= this.opts.lossRate
  }

  /** Cuts off the nodes with longitude in [minLon, maxLon] (e.g. -170..-30: the Americas). */
  partitionByLongitude (minLon: number, maxLon: number): void {
    for (let n = 0; n < this.pop.count; n++) {
      const lon = this.pop.lonDeg[n]
      this.partition[n] = lon >= minLon && lon <= maxLon ? 1 : 0
    }
    this.partitioned = true
  }

  healPartitions (): void { this.partition.fill(0); this.partitioned = false }
}
