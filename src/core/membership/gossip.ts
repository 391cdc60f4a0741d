// Announcement gossip: push to `fanout` random peers of the partial view, hop count bounded by
// TTL, duplicates suppressed by a bounded seen-set, stale items dropped by age. Signatures are
// checked by the caller before `handle` (the machine is agnostic of the body's format).
import type { Rng } from '../rng.js'
import { SeenSet } from './seen.js'

export interface GossipItem<P, B> {
  /** Unique id (e.g. hex of the announcement id). */
  id: string
  origin: P
  ttl: number
  /** unix ms when the origin created it. */
  createdAt: number
  body: B
}

export interface GossipInit<P> {
  self: P
  rng: Rng
  /** Random peers to push to: usually `(n, exclude) => cyclon.sample(n, exclude)`. */
  samplePeers: (n: number, exclude: readonly P[]) => P[]
  fanout?: number
  maxTtl?: number
  seenCapacity?: number
  /** Items older than this are dropped (ms). */
  maxAgeMs?: number
}

export const GOSSIP_DEFAULTS = { fanout: 4, maxTtl: 8, seenCapacity: 4096, maxAgeMs: 5 * 60_000 }

export type GossipOutcome = 'deliver' | 'duplicate' | 'expired' | 'invalid'

export class Gossip<P, B> {
  private readonly seen: SeenSet<string>
  private outbound: Array<{ to: P, item: GossipItem<P, B> }> = []
  readonly fanout: number
  readonly maxTtl: number
  readonly maxAgeMs: number

  constructor (private readonly init: GossipInit<P>) {
    this.fanout = init.fanout ?? GOSSIP_DEFAULTS.fanout
    this.maxTtl = init.maxTtl ?? GOSSIP_DEFAULTS.maxTtl
    this.maxAgeMs = init.maxAgeMs ?? GOSSIP_DEFAULTS.maxAgeMs
    this.seen = new SeenSet(init.seenCapacity ?? GOSSIP_DEFAULTS.seenCapacity)
  }

  /** Starts an item of our own; returns how many peers it was pushed to. */
  publish (now: number, id: string, body: B, ttl = this.maxTtl): number {
    const item: GossipItem<P, B> = { id, origin: this.init.self, ttl: Math.min(ttl, this.maxTtl), createdAt: now, body }
    this.seen.add(id)
    return this.forward(item, [])
  }

  /**
   * An item from `from`. 'deliver' means new: hand it to the application; it has been queued
   * for forwarding with ttl - 1 (when ttl > 0). 'invalid' (bad ttl/time) should cost `from` score.
   */
  handle (now: number, from: P, item: GossipItem<P, B>): GossipOutcome {
    if (!Number.isInteger(item.ttl) || item.ttl < 0 || item.ttl > this.maxTtl || !Number.isFinite(item.createdAt) || item.id === '') return 'invalid'
    if (item.createdAt > now + 60_000) return 'invalid'
    if (now - item.createdAt > this.maxAgeMs) return 'expired'
    if (!this.seen.add(item.id)) return 'duplicate'
    if (item.ttl > 0) this.forward({ ...item, ttl: item.ttl - 1 }, [from, item.origin])
    return 'deliver'
  }

  private forward (item: GossipItem<P, B>, exclude: P[]): number {
    const peers = this.init.samplePeers(this.fanout, exclude)
    for (const to of peers) this.outbound.push({ to, item })
    return peers.length
  }

  hasSeen (id: string): boolean { return this.seen.has(id) }

  pollOutbound (): Array<{ to: P, item: GossipItem<P, B> }> {
    const out = this.outbound
    this.outbound = []
    return out
  }
}
