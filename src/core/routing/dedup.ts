// The recipient's (and relays') memory of messages seen, keyed by (sender, message id), kept
// until the message's own expiry. Bounded: when full, the oldest entry is evicted and its expiry
// becomes a low-water mark; anything expiring no later than that mark is refused, because we
// can no longer prove we have not seen it (exactly-once over availability, under flood only).

export type ReceiveVerdict = 'new' | 'duplicate' | 'replayed'

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

export class ReceiveWindow<P = string> {
  private readonly seen = new Map<string, Seen<P>>()
  /** Ids with entries under own keys, and how many: those are looked up even when the id's chain is gone. */
  private readonly overflow = new Map<string, number>()
  private count = 0
  private lowWater = -Infinity
  private lastFullPrune = -Infinity
  private inserts = 0
  /**
   * The oldest key and its value, read from one long-lived iterator over `seen` (see head). A
   * JavaScript Map keeps a deleted entry's slot until the table is rehashed, and an iterator made
   * afresh walks every such slot from the start: with the oldest entries deleted one by one (expiry,
   * eviction), finding the head anew each time cost O(slots deleted) per message (a full window,
   * 65,536 messages: ~100 us per check). The kept iterator steps over each slot once.
   */
  private order: MapIterator<[string, Seen<P>]> | undefined
  private headKey: string | undefined
  private headValue: Seen<P> | undefined

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

  /**
   * Points headKey/headValue at the first entry of `seen` in insertion order; false when it is
   * empty. The cached pair stands while `seen` still maps the key to that very value (values of
   * existing keys are replaced only by `replace`, which keeps the pair up to date); a key deleted,
   * or deleted and added again (a later place in the order, a new value), is stepped past.
   */
  private head (): boolean {
    for (;;) {
      if (this.headKey !== undefined && this.seen.get(this.headKey) === this.headValue) return true
      this.order ??= this.seen.entries()
      const next = this.order.next()
      if (next.done === true) {
        // (a finished iterator never resumes: a fresh one for the keys added later)
        this.order = undefined; this.headKey = undefined; this.headValue = undefined
        return false
      }
      this.headKey = next.value[0]; this.headValue = next.value[1]
    }
  }

  /** Sets an existing key's chain (its place in the order is kept), keeping the cached head in step. */
  private replace (key: string, s: Seen<P>): void {
    if (key === this.headKey && this.seen.get(key) === this.headValue) this.headValue = s
    this.seen.set(key, s)
  }

  /** Deletes expired entries from the insertion-order head, at most `max` keys, stopping at a live one. */
  private dropExpiredHead (now: number, max: number): void {
    while (max-- > 0 && this.head()) {
      const k = this.headKey as string; const s = this.headValue as Seen<P>
      if (s.expiresAt > now) return
      const rest = this.live(s, now)
      if (rest === undefined) this.seen.delete(k)
      else { this.replace(k, rest); return } // (a colliding id still alive keeps the key's place)
    }
  }

  private evict (now: number): void {
    this.dropExpiredHead(now, Infinity)
    // a long-lived entry at the head can hide expired ones behind it: scan fully, but rarely
    if (this.count >= this.capacity && now - this.lastFullPrune >= 1000) { this.lastFullPrune = now; this.prune(now) }
    if (this.count < this.capacity || !this.head()) return
    const oldestKey = this.headKey as string; const oldest = this.headValue as Seen<P>
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
      else if (rest !== s) this.replace(k, rest)
    }
    return before - this.count
  }

  /** Messages remembered. */
  get size (): number { return this.count }
}

/** What a node does with a relayed copy. */
export type RelayDecision = 'deliver' | 'forward' | 'hop-limit' | 'unreachable'

export function decideRelay (input: { recipientIsSelf: boolean, hopsLeft: number, recipientReachable: boolean }): RelayDecision {
  if (input.recipientIsSelf) return 'deliver'
  if (input.hopsLeft <= 0) return 'hop-limit'
  return input.recipientReachable ? 'forward' : 'unreachable'
}
