// The receive window as it was before its head was read from one kept iterator (fc4325d,
// src/core/routing/dedup.ts, unchanged but for the class name): the reference the current
// window's verdicts are compared with (test/unit/core/routing/receive-window-order.test.ts).
type ReceiveVerdict = 'new' | 'duplicate' | 'replayed'

/**
 * A message seen: its expiry, the neighbours its copies came from (the first in `via`, more in
 * `more`) and whose message it is (`owner`). Entries are keyed by message id alone; ids of two
 * owners that collide (a peer can pick any id) share a key and are chained by `next`. One object
 * per message on the common one-copy path, kept until the message expires.
 */
interface Seen<P> {
  expiresAt: number
  via: P
  more: P[] | undefined
  owner: string
  next: Seen<P> | undefined
  /** Set on an entry kept under its own key (the id's chain was full): the id, for `overflow`. */
  overflowOf: string | undefined
}

/**
 * Owners chained under one message id at most: a peer with many identities could otherwise grow
 * one chain and make every lookup of that id walk it. Further owners of the id get a key of their
 * own (ownKey), looked up only when the id's chain exists and does not hold the owner.
 */
const MAX_CHAIN = 8

function ownKey (owner: string, key: string): string {
  return `${owner}\n${key}`
}

export class ReferenceReceiveWindow<P = string> {
  private readonly seen = new Map<string, Seen<P>>()
  /** Ids with entries under own keys, and how many: those are looked up even when the id's chain is gone. */
  private readonly overflow = new Map<string, number>()
  private count = 0
  private lowWater = -Infinity
  private lastFullPrune = -Infinity
  private inserts = 0

  constructor (readonly capacity = 65_536) {}

  /**
   * Records a copy of message `key` of `owner` (its sender; the key alone when omitted) that
   * arrived from neighbour `via`. 'new': first copy, deliver it. 'duplicate': another path's copy
   * (normal with k > 1). 'replayed': the same neighbour sent it again, or it is older than what we
   * can still judge; charge `via`.
   */
  check (now: number, key: string, expiresAt: number, via: P, owner = ''): ReceiveVerdict {
    const head = this.seen.get(key)
    let s = head
    let chained = 0
    while (s !== undefined && s.owner !== owner) { s = s.next; chained++ }
    // another owner holds this id: ours may sit under its own key (a chain is capped, see below)
    const own = s === undefined && (head !== undefined || (this.overflow.size > 0 && this.overflow.has(key))) ? ownKey(owner, key) : undefined
    if (own !== undefined) s = this.seen.get(own)
    if (s !== undefined) {
      if (s.via === via || (s.more !== undefined && s.more.includes(via))) return 'replayed'
      if (s.more === undefined) s.more = [via]
      else if (s.more.length < 7) s.more.push(via)
      return 'duplicate'
    }
    if (expiresAt <= this.lowWater) return 'replayed'
    // Forget a few expired entries from the oldest end (up to 8 every 4th insert: 2 per insert, one
    // iterator per 4): the window then holds about the messages still alive, without a full scan
    // (entries arrive roughly in expiry order).
    if ((++this.inserts & 3) === 0) this.dropExpiredHead(now, 8)
    if (this.count >= this.capacity) this.evict(now)
    const e: Seen<P> = { expiresAt, via, more: undefined, owner, next: undefined, overflowOf: undefined }
    // (evict may have dropped the chain meanwhile)
    const first = this.seen.get(key)
    if (first === undefined) this.seen.set(key, e)
    else if (chained < MAX_CHAIN) { e.next = first.next; first.next = e } else {
      e.overflowOf = key
      this.overflow.set(key, (this.overflow.get(key) ?? 0) + 1)
      this.seen.set(own ?? ownKey(owner, key), e)
    }
    this.count++
    return 'new'
  }

  has (key: string, owner = ''): boolean {
    const head = this.seen.get(key)
    let s = head
    while (s !== undefined && s.owner !== owner) s = s.next
    return s !== undefined || ((head !== undefined || this.overflow.has(key)) && this.seen.has(ownKey(owner, key)))
  }

  /** Counts an entry gone (expired or evicted). */
  private forget (s: Seen<P>): void {
    this.count--
    const id = s.overflowOf
    if (id === undefined) return
    const n = (this.overflow.get(id) ?? 1) - 1
    if (n <= 0) this.overflow.delete(id); else this.overflow.set(id, n)
  }

  /** The live entries of a chain (undefined when none), counting what is dropped. */
  private live (s: Seen<P> | undefined, now: number): Seen<P> | undefined {
    let head: Seen<P> | undefined
    let tail: Seen<P> | undefined
    for (; s !== undefined; s = s.next) {
      if (s.expiresAt <= now) { this.forget(s); continue }
      if (tail === undefined) head = s; else tail.next = s
      tail = s
    }
    if (tail !== undefined) tail.next = undefined
    return head
  }

  /** Deletes expired entries from the insertion-order head, at most `max` keys, stopping at a live one. */
  private dropExpiredHead (now: number, max: number): void {
    for (const [k, s] of this.seen) {
      if (max-- <= 0 || s.expiresAt > now) return
      const rest = this.live(s, now)
      if (rest === undefined) this.seen.delete(k)
      else { this.seen.set(k, rest); return } // (a colliding id still alive keeps the key's place)
    }
  }

  private evict (now: number): void {
    this.dropExpiredHead(now, Infinity)
    // a long-lived entry at the head can hide expired ones behind it: scan fully, but rarely
    if (this.count >= this.capacity && now - this.lastFullPrune >= 1000) { this.lastFullPrune = now; this.prune(now) }
    if (this.count < this.capacity) return
    const [oldestKey, oldest] = this.seen.entries().next().value as [string, Seen<P>]
    this.seen.delete(oldestKey)
    for (let s: Seen<P> | undefined = oldest; s !== undefined; s = s.next) {
      this.forget(s)
      if (s.expiresAt > this.lowWater) this.lowWater = s.expiresAt
    }
  }

  /** Forgets expired entries (they can no longer be replayed: expiry is checked first). */
  prune (now: number): number {
    const before = this.count
    for (const [k, s] of this.seen) {
      const rest = this.live(s, now)
      if (rest === undefined) this.seen.delete(k)
      else if (rest !== s) this.seen.set(k, rest)
    }
    return before - this.count
  }

  /** Messages remembered. */
  get size (): number { return this.count }
}

