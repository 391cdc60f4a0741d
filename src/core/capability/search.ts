// A capability search as a pure machine: it plans which (capability, cell) keys to look up,
// ring by ring from the caller's cell and coarser levels after that, takes the records the
// runtime found for each step, and stops once it has `want` matches. Results are nearest first.
import { cellOf, ringsAround, parseCellId } from '../geo/cells.js'
import { haversineKm } from '../geo/location.js'
import { predictOneWayMsFromKm, DEFAULT_GEO_LATENCY, type GeoLatencyModel } from '../geo/latency.js'
import { capabilityKey, matchesQuery, normaliseCapability, INDEX_LEVELS, type CapabilityQuery } from './query.js'
import { verifyCapability, type CapabilityRecord, type SignedCapability, type VerifyFn } from './record.js'
import { toHex } from '../identity/index.js'

export interface SearchStep {
  level: number
  ring: number
  cells: string[]
  /** Provider keys (sha2-256 multihashes) for the cells, same order. */
  keys: Uint8Array[]
}

export interface SearchPlanOptions {
  levels?: readonly number[]
  /**
   * Widest ring at the finest level (default 0: its own cell only; the next level's ring 0
   * already holds that neighbourhood at one lookup). Middle levels search rings 0..1; the
   * coarsest level always widens until it covers the globe.
   */
  maxRing?: number
}

/**
 * The ordered lookup plan for a query at (lat, lon): near, cheap lookups first. With the default
 * levels [5, 3, 1]: own r5 cell (1 key), own r3 cell (1), the r3 ring (8), then r1 cells until the
 * whole globe is covered (8 in all). Cells already covered are never looked up twice.
 */
export function planCapabilitySearch (capability: string, lat: number, lon: number, opts: SearchPlanOptions = {}): SearchStep[] {
  const levels = opts.levels ?? INDEX_LEVELS
  const cap = normaliseCapability(capability)
  const steps: SearchStep[] = []
  const searched = new Set<string>()
  levels.forEach((level, i) => {
    const centre = cellOf(lat, lon, level)
    const last = i === levels.length - 1
    // At the coarsest level: rings until every column is covered (2^level), so nothing is missed.
    const rings = last ? 2 ** level : i === 0 ? (opts.maxRing ?? 0) : 1
    for (let ring = 0; ring <= rings; ring++) {
      const cells = ringsAround(centre, ring).filter(c => !searched.has(c))
      if (cells.length === 0) continue
      for (const c of cells) searched.add(c)
      steps.push({ level, ring, cells, keys: cells.map(c => capabilityKey(cap, c)) })
    }
  })
  return steps
}

export interface SearchResult {
  record: CapabilityRecord
  signed: SignedCapability
  distanceKm: number
  /** Predicted one-way latency from the caller, ms (Vivaldi when the runtime supplies it, else geo). */
  predictedMs: number
}

export interface CapabilitySearchInit extends SearchPlanOptions {
  query: CapabilityQuery
  /** Caller's location. */
  lat: number
  lon: number
  verify?: VerifyFn
  latencyModel?: GeoLatencyModel
  /** Optional better estimate (e.g. Vivaldi) of one-way latency to a peer, by peer id hex. */
  predictMs?: (peerHex: string, record: CapabilityRecord) => number | undefined
}

export type SearchRejection = { peer?: string, reason: string }

export class CapabilitySearch {
  readonly steps: SearchStep[]
  private stepIndex = 0
  private readonly found = new Map<string, SearchResult>()
  readonly rejected: SearchRejection[] = []
  readonly want: number

  constructor (private readonly init: CapabilitySearchInit) {
    this.steps = planCapabilitySearch(init.query.capability ?? '', init.lat, init.lon, init)
    this.want = Math.max(1, init.query.want ?? 10)
  }

  /** The next lookup to run, or undefined when the search is done. */
  nextStep (): SearchStep | undefined {
    if (this.done()) return undefined
    return this.steps[this.stepIndex++]
  }

  done (): boolean {
    return this.found.size >= this.want || this.stepIndex >= this.steps.length
  }

  /** Feeds signed records the runtime fetched for the last step; returns how many new matches it gained. */
  addRecords (now: number, records: Iterable<Uint8Array | SignedCapability>): number {
    let added = 0
    for (const r of records) {
      const v = verifyCapability(r, { now, verify: this.init.verify })
      if (!v.ok) { this.rejected.push({ reason: v.reason }); continue }
      if (this.addVerified(v.record, v.signed)) added++
    }
    return added
  }

  /** Adds an already verified record (e.g. from a cache); false when it does not match or is known. */
  addVerified (record: CapabilityRecord, signed: SignedCapability): boolean {
    if (!matchesQuery(record, this.init.query)) return false
    const peer = toHex(record.peerId)
    const prev = this.found.get(peer)
    if (prev !== undefined && prev.record.seq >= record.seq) return false
    const distanceKm = haversineKm(this.init.lat, this.init.lon, record.latE4 / 1e4, record.lonE4 / 1e4)
    const predictedMs = this.init.predictMs?.(peer, record) ?? predictOneWayMsFromKm(distanceKm, this.init.latencyModel ?? DEFAULT_GEO_LATENCY)
    this.found.set(peer, { record, signed, distanceKm, predictedMs })
    return prev === undefined
  }

  /** Matches so far, nearest (lowest predicted latency, then distance) first, at most `want`. */
  results (): SearchResult[] {
    return [...this.found.values()].sort((a, b) => a.predictedMs - b.predictedMs || a.distanceKm - b.distanceKm).slice(0, this.want)
  }
}

/** Parses a step's cell back, for logs. */
export function describeStep (s: SearchStep): string {
  const c = parseCellId(s.cells[0])
  return `level ${s.level} ring ${s.ring} (${s.cells.length} cells${c === undefined ? '' : ` from ${s.cells[0]}`})`
}
