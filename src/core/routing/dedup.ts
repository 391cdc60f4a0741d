// The recipient's (and relays') memory of messages seen, keyed by (sender, message id), kept
// until the message's own expiry. A 16-byte message id (checkId) is kept as numbers: 30 bits of it
// are the map key (a small integer: no hex text per message, a cheap hash), the other 98 bits sit
// in the entry and are compared on lookup, so two ids are one message only when all 128 bits match. Bounded: when full, the oldest entry is evicted and its expiry
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
  /** Set on an entry kept under its own key (the id's chain was full): the id's key, for `overflow`. */
  overflowOf: Key | undefined
  /** The rest of a 16-byte id kept by checkId (its map key holds the first 30 bits); 0 for a text key. */
  w1: number
  w2: number
  w3: number
  w4: number
}

/** A text key (check), or the first 30 bits of a 16-byte message id (checkId). */
type Key = string | number

/**
 * Entries chained under one key at most (owners of one message id; under a numeric key, also ids
 * that share its 30 bits, which a peer can pick): a peer with many identities or ids could
 * otherwise grow one chain and make every lookup of that key walk it. Further entries get a key of
 * their own (ownKey), looked up only when the key's chain exists and does not hold the entry.
 */
const MAX_CHAIN = 8

const HEX = '0123456789abcdef'

/** Lower-case hex of `b` (the core names no platform codec); only for keys of their own, rare. */
function hexOf (b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15]
  return s
}

/** An entry's key of its own: owner and text key, or (after a NUL, which text keys of this overlay never start with) owner and the id's hex. */
function ownKey (owner: string, key: Key, id: Uint8Array | undefined): string {
  return id === undefined ? `${owner}\n${String(key)}` : `${owner}\n\0${hexOf(id)}`
}

export class ReceiveWindow<P = string> {
  private readonly seen = new Map<Key, Seen<P>>()
  /** Keys with entries under own keys, and how many: those are looked up even when the key's chain is gone. */
  private readonly overflow = new Map<Key, number>()
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
  private order: MapIterator<[Key, Seen<P>]> | undefined
  private headKey: Key | undefined
  private headValue: Seen<P> | undefined

  constructor (readonly capacity = 65_536) {}

  /**
   * Records a copy of message `key` of `owner` (its sender; the key alone when omitted) that
   * arrived from neighbour `via`. 'new': first copy, deliver it. 'duplicate': another path's copy
   * (normal with k > 1). 'replayed': the same neighbour sent it again, or it is older than what we
   * can still judge; charge `via`.
   */
  check (now: number, key: string, expiresAt: number, via: P, owner = ''): ReceiveVerdict {
    return this.record(now, key, 0, 0, 0, 0, undefined, expiresAt, via, owner)
  }

  /**
   * check() for a message id given as bytes: the same verdicts as check(now, hex of id, ...) (for
   * ids whose first 30 bits differ the very same window; ids that share them chain under one key,
   * each still its own message). A window takes either text keys or ids, not both. `id` is read,
   * not kept (it may be a view into a read buffer).
   */
  checkId (now: number, id: Uint8Array, expiresAt: number, via: P, owner = ''): ReceiveVerdict {
    if (id.length !== 16) return this.record(now, `\0${hexOf(id)}`, 0, 0, 0, 0, undefined, expiresAt, via, owner)
    const b3 = id[3]
    return this.record(now, (id[0] | id[1] << 8 | id[2] << 16 | (b3 & 0x3f) << 24), (b3 >> 6) | id[4] << 2 | id[5] << 10 | id[6] << 18,
      id[7] | id[8] << 8 | id[9] << 16, id[10] | id[11] << 8 | id[12] << 16, id[13] | id[14] << 8 | id[15] << 16, id, expiresAt, via, owner)
  }

  private record (now: number, key: Key, w1: number, w2: number, w3: number, w4: number, id: Uint8Array | undefined, expiresAt: number, via: P, owner: string): ReceiveVerdict {
    const head = this.seen.get(key)
    let s = head
    let chained = 0
    while (s !== undefined && !(s.owner === owner && s.w1 === w1 && s.w2 === w2 && s.w3 === w3 && s.w4 === w4)) { s = s.next; chained++ }
    // another owner (or id) holds this key: ours may sit under its own key (a chain is capped, see below)
    const own = s === undefined && (head !== undefined || (this.overflow.size > 0 && this.overflow.has(key))) ? ownKey(owner, key, id) : undefined
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
    const e: Seen<P> = { expiresAt, via, more: undefined, owner, next: undefined, overflowOf: undefined, w1, w2, w3, w4 }
    // (evict may have dropped the chain meanwhile)
    const first = this.seen.get(key)
    if (first === undefined) this.seen.set(key, e)
    else if (chained < MAX_CHAIN) { e.next = first.next; first.next = e } else {
      e.overflowOf = key
      this.overflow.set(key, (this.overflow.get(key) ?? 0) + 1)
      this.seen.set(own ?? ownKey(owner, key, id), e)
    }
    this.count++
    return 'new'
  }

  has (key: string, owner = ''): boolean {
    const head = this.seen.get(key)
    let s = head
    while (s !== undefined && s.owner !== owner) s = s.next
    return s !== undefined || ((head !== undefined || this.overflow.has(key)) && this.seen.has(ownKey(owner, key, undefined)))
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
  private replace (key: Key, s: Seen<P>): void {
    if (key === this.headKey && this.seen.get(key) === this.headValue) this.headValue = s
    this.seen.set(key, s)
  }

  /** Deletes expired entries from the insertion-order head, at most `max` keys, stopping at a live one. */
  private dropExpiredHead (now: number, max: number): void {
    while (max-- > 0 && this.head()) {
      const k = this.headKey as Key; const s = this.headValue as Seen<P>
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
    const oldestKey = this.headKey as Key; const oldest = this.headValue as Seen<P>
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
