// The recipient's (and relays') memory of messages seen, keyed by (sender, message id), kept
// until the message's own expiry. Bounded: when full, the oldest entry is evicted and its expiry
// becomes a low-water mark; anything expiring no later than that mark is refused, because we
// can no longer prove we have not seen it (exactly-once over availability, under flood only).

export type ReceiveVerdict = 'new' | 'duplicate' | 'replayed'

interface Seen<P> { expiresAt: number, via: P[] }

export class ReceiveWindow<P = string> {
  private readonly seen = new Map<string, Seen<P>>()
  private lowWater = -Infinity
  private lastFullPrune = -Infinity
  private inserts = 0

  constructor (readonly capacity = 65_536) {}

  /**
   * Records a copy of message `key` (sender + message id) that arrived from neighbour `via`.
   * 'new': first copy, deliver it. 'duplicate': another path's copy (normal with k > 1).
   * 'replayed': the same neighbour sent it again, or it is older than what we can still judge;
   * charge `via`.
   */
  check (now: number, key: string, expiresAt: number, via: P): ReceiveVerdict {
    const s = this.seen.get(key)
    if (s !== undefined) {
      if (s.via.includes(via)) return 'replayed'
      if (s.via.length < 8) s.via.push(via)
      return 'duplicate'
    }
    if (expiresAt <= this.lowWater) return 'replayed'
    // Forget a few expired entries from the oldest end (up to 8 every 4th insert: 2 per insert, one
    // iterator per 4): the window then holds about the messages still alive, without a full scan
    // (entries arrive roughly in expiry order).
    if ((++this.inserts & 3) === 0) this.dropExpiredHead(now, 8)
    if (this.seen.size >= this.capacity) this.evict(now)
    this.seen.set(key, { expiresAt, via: [via] })
    return 'new'
  }

  has (key: string): boolean { return this.seen.has(key) }

  /** Deletes expired entries from the insertion-order head, at most `max`, stopping at a live one. */
  private dropExpiredHead (now: number, max: number): void {
    for (const [k, s] of this.seen) {
      if (max-- <= 0 || s.expiresAt > now) return
      this.seen.delete(k)
    }
  }

  private evict (now: number): void {
    this.dropExpiredHead(now, Infinity)
    // a long-lived entry at the head can hide expired ones behind it: scan fully, but rarely
    if (this.seen.size >= this.capacity && now - this.lastFullPrune >= 1000) { this.lastFullPrune = now; this.prune(now) }
    if (this.seen.size < this.capacity) return
    const [oldestKey, oldest] = this.seen.entries().next().value as [string, Seen<P>]
    this.seen.delete(oldestKey)
    if (oldest.expiresAt > this.lowWater) this.lowWater = oldest.expiresAt
  }

  /** Forgets expired entries (they can no longer be replayed: expiry is checked first). */
  prune (now: number): number {
    let n = 0
    for (const [k, s] of this.seen) {
      if (s.expiresAt <= now) { this.seen.delete(k); n++ }
    }
    return n
  }

  get size (): number { return this.seen.size }
}

/** What a node does with a relayed copy. */
export type RelayDecision = 'deliver' | 'forward' | 'hop-limit' | 'unreachable'

export function decideRelay (input: { recipientIsSelf: boolean, hopsLeft: number, recipientReachable: boolean }): RelayDecision {
  if (input.recipientIsSelf) return 'deliver'
  if (input.hopsLeft <= 0) return 'hop-limit'
  return input.recipientReachable ? 'forward' : 'unreachable'
}
