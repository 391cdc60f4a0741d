// The paths chosen for a recipient, reused for a second per (recipient, k, direct): building them
// walks and sorts every connection as a relay candidate, which a chatty peer pair would otherwise
// pay on every message (a node with a hundred connections: a hundred predictions and a sort per
// send). Path objects are never mutated, so messages can share them. buildPaths makes a choice.
import { choosePaths, type RelayCandidate } from '../../core/routing/index.js'
import { cellIdOf, predictOneWayMs, type LatLon } from '../../core/geo/index.js'

export type Paths = ReturnType<typeof choosePaths<string>>
/** How long the paths chosen for a recipient are reused, and for how many recipients at most. */
export const PATH_CACHE_MS = 1000
export const PATH_CACHE_MAX = 1024

interface Entry { at: number, paths: Paths }

export class PathCache {
  private readonly entries = new Map<string, Entry>()
  /** The last choice: a chatty pair asks for the same paths again (no key string built). */
  private last: { recipient: string, k: number, useDirect: boolean, key: string, entry: Entry } | undefined

  get (recipient: string, k: number, useDirect: boolean, now: number): Paths | undefined {
    const last = this.last
    if (last !== undefined && last.recipient === recipient && last.k === k && last.useDirect === useDirect && now - last.entry.at < PATH_CACHE_MS && this.entries.get(last.key) === last.entry) return last.entry.paths
    const key = `${recipient}\n${k}\n${useDirect ? 1 : 0}`
    const cached = this.entries.get(key)
    if (cached === undefined || now - cached.at >= PATH_CACHE_MS) return undefined
    this.last = { recipient, k, useDirect, key, entry: cached }
    return cached.paths
  }

  set (recipient: string, k: number, useDirect: boolean, now: number, paths: Paths): void {
    const key = `${recipient}\n${k}\n${useDirect ? 1 : 0}`
    this.entries.delete(key)
    if (this.entries.size >= PATH_CACHE_MAX) this.entries.delete(this.entries.keys().next().value as string)
    const entry = { at: now, paths }
    this.entries.set(key, entry)
    this.last = { recipient, k, useDirect, key, entry }
  }

  /** Forgets every choice (a banned relay must leave the cached paths at once). */
  clear (): void { this.entries.clear(); this.last = undefined }
}

export interface PathInputs {
  recipient: string
  k: number
  useDirect: boolean
  self: string
  /** Relay candidates: the peers we hold connections to (or the caller's list). */
  pool: Iterable<string>
  /** False for a peer that may not relay (banned). */
  usable: (peer: string) => boolean
  location?: LatLon
  locate?: (peer: string) => LatLon | undefined
}

/**
 * k paths to a recipient (the core's choosePaths): direct when allowed, and relays from the pool,
 * each with its predicted one-way time through it (geo when both ends are located, else 50 ms)
 * and its cell (paths through one cell are not independent).
 */
export function buildPaths (p: PathInputs): Paths {
  const loc = p.location
  const recLoc = p.locate?.(p.recipient)
  const candidates: Array<RelayCandidate<string>> = []
  for (const peer of p.pool) {
    if (peer === p.recipient || peer === p.self || !p.usable(peer)) continue
    const rl = p.locate?.(peer)
    const predictedMs = loc !== undefined && rl !== undefined && recLoc !== undefined ? predictOneWayMs(loc, rl) + predictOneWayMs(rl, recLoc) : 50
    candidates.push({ peer, cell: rl !== undefined ? cellIdOf(rl.lat, rl.lon, 3) : `unknown:${peer}`, predictedMs })
  }
  const direct = p.useDirect ? { predictedMs: loc !== undefined && recLoc !== undefined ? predictOneWayMs(loc, recLoc) : 0 } : undefined
  return choosePaths({ k: p.k, direct, candidates, exclude: [p.recipient] })
}
