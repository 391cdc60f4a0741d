// The paths chosen for a recipient, reused for a second per (recipient, k, direct): building them
// walks and sorts every connection as a relay candidate, which a chatty peer pair would otherwise
// pay on every message (a node with a hundred connections: a hundred predictions and a sort per
// send). Path objects are never mutated, so messages can share them.
import type { choosePaths } from '../../core/routing/index.js'

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
