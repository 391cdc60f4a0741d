// The latest record per peer, with sequence checks: an older seq is a replay, the same seq with
// other bytes is an equivocation. Bounded; expired records go first, then the oldest inserted.
import { toHex } from '../identity/index.js'
import type { CapabilityRecord, SignedCapability } from './record.js'
import { matchesQuery, type CapabilityQuery } from './query.js'

export type StoreOutcome = 'new' | 'updated' | 'duplicate' | 'stale-seq' | 'equivocation'

interface Entry { record: CapabilityRecord, signed: SignedCapability }

export class CapabilityStore {
  private readonly byPeer = new Map<string, Entry>()

  constructor (private readonly maxRecords = 10_000) {}

  get size (): number { return this.byPeer.size }

  /** Stores a verified record if it is newer than what we hold. */
  put (now: number, record: CapabilityRecord, signed: SignedCapability): StoreOutcome {
    const peer = toHex(record.peerId)
    const prev = this.byPeer.get(peer)
    if (prev !== undefined) {
      if (record.seq < prev.record.seq) return 'stale-seq'
      if (record.seq === prev.record.seq) return sameBytes(prev.signed.record, signed.record) ? 'duplicate' : 'equivocation'
      this.byPeer.delete(peer)
    } else if (this.byPeer.size >= this.maxRecords) {
      this.prune(now)
      if (this.byPeer.size >= this.maxRecords) this.byPeer.delete(this.byPeer.keys().next().value as string)
    }
    this.byPeer.set(peer, { record, signed })
    return prev === undefined ? 'new' : 'updated'
  }

  get (now: number, peerHex: string): Entry | undefined {
    const e = this.byPeer.get(peerHex)
    return e !== undefined && e.record.expiresAt > now ? e : undefined
  }

  remove (peerHex: string): boolean { return this.byPeer.delete(peerHex) }

  /** Drops expired records; returns how many. */
  prune (now: number): number {
    let n = 0
    for (const [k, e] of this.byPeer) if (e.record.expiresAt <= now) { this.byPeer.delete(k); n++ }
    return n
  }

  /** Unexpired records matching a query (for answering walks and lookups from cache). */
  * matching (now: number, query: CapabilityQuery): Generator<Entry> {
    for (const e of this.byPeer.values()) if (e.record.expiresAt > now && matchesQuery(e.record, query)) yield e
  }
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
