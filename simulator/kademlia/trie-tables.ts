// Routing tables built by the protocol, with kad-dht 16's own table rules
// (routing-table/k-bucket.js): a trie split by absolute id prefix, where a leaf that holds
// k peers splits while it is shallower than `prefixLength`; a newcomer to a full leaf at
// that depth makes the node ping its oldest contacts (up to 3) and evict those that do not
// answer; it is added only if one was evicted. Tables start empty and grow only through
// protocol events (bootstrap, the origin adding responders, responders adding server
// queriers: simulator/kademlia/join.ts and lookup.ts).
//
// Storage: each node's contacts are one sorted run (node numbers are in id order, so a
// trie leaf is a contiguous sub-run found by binary search) in a shared Int32Array pool,
// allocated by size class. The trie itself is never stored: a leaf at depth d is split
// exactly when it holds >= k contacts and d < prefixLength (splits are never undone, but a
// split leaf whose halves now hold < k peers accepts a newcomer either way, so accept and
// reject decisions are the same as kad-dht's).
//
// Simplification (stated in reports): kad-dht pings the 3 contacts with the oldest
// lastPing; we keep no per-contact ping time (memory) and check 3 random contacts of the
// leaf instead.
import type { SimRandom } from '../engine/random.js'
import { KEY_BITS, type KadIds } from './ids.js'
import type { RoutingView } from './routing.js'

const LO_SCALE = 2 ** 21
// Size classes of a table's run: ~1.25x apart, so little of the pool sits unused.
const CLASSES: number[] = [0]
for (let c = 4; c < 1 << 24; c = Math.max(c + 4, Math.ceil(c * 1.25 / 4) * 4)) CLASSES.push(c)

export interface TrieStats { added: number, rejectedFull: number, evicted: number, pings: number }

export class TrieTables implements RoutingView {
  readonly off: Int32Array
  readonly len: Int32Array
  private readonly cls: Uint8Array
  private pool: Int32Array
  private top = 0
  private readonly free: number[][] = CLASSES.map(() => [])
  private readonly sn = new Int32Array(1 << 16)
  private readonly sd = new Float64Array(1 << 16)
  readonly stats: TrieStats = { added: 0, rejectedFull: 0, evicted: 0, pings: 0 }

  /**
   * ids: every node that will ever exist (id order); isServer: DHT servers (the only
   * possible contacts); online: liveness, read by the full-leaf ping.
   */
  constructor (readonly ids: KadIds, readonly servers: Int32Array, readonly k: number, readonly prefixLength: number,
    private readonly online: Uint8Array, private readonly rng: SimRandom, expectedContacts = ids.count * 16) {
    const n = ids.count
    this.off = new Int32Array(n); this.len = new Int32Array(n); this.cls = new Uint8Array(n)
    this.pool = new Int32Array(Math.max(1024, expectedContacts))
  }

  size (n: number): number { return this.len[n] }

  /** Total contacts held, and pool slots allocated (for memory figures). */
  totals (): { contacts: number, poolSlots: number } {
    let c = 0
    for (let i = 0; i < this.len.length; i++) c += this.len[i]
    return { contacts: c, poolSlots: this.pool.length }
  }

  /** Drops the whole table of n (a node that restarts without state). */
  clear (n: number): void {
    if (this.cls[n] !== 0) this.free[this.cls[n]].push(this.off[n])
    this.cls[n] = 0; this.len[n] = 0; this.off[n] = 0
  }

  contactsOf (n: number): Int32Array { return this.pool.subarray(this.off[n], this.off[n] + this.len[n]) }

  has (n: number, c: number): boolean {
    const p = this.lowerNode(n, c)
    return p < this.off[n] + this.len[n] && this.pool[p] === c
  }

  /** First pool position in n's run whose node number is >= c. */
  private lowerNode (n: number, c: number): number {
    let lo = this.off[n]; let hi = lo + this.len[n]
    const pool = this.pool
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (pool[mid] < c) lo = mid + 1; else hi = mid }
    return lo
  }

  /** First position in pool[lo..hi) (part of one sorted run) whose id key is >= key. */
  private lowerKey (lo: number, hi: number, key: number): number {
    const pool = this.pool; const H = this.ids.hi; const L = this.ids.lo
    while (lo < hi) {
      const mid = (lo + hi) >>> 1; const c = pool[mid]
      if (H[c] * LO_SCALE + L[c] < key) lo = mid + 1; else hi = mid
    }
    return lo
  }

  /**
   * A protocol event made n aware of server c (kad-dht's routingTable.add after the new
   * contact answered its ping). Returns true when c is now in n's table.
   */
  learn (n: number, c: number): boolean {
    if (n === c) return false
    const pos = this.lowerNode(n, c)
    const end = this.off[n] + this.len[n]
    if (pos < end && this.pool[pos] === c) return true
    const key = this.ids.key(c)
    // Walking down the trie, a leaf at depth d is split iff it holds >= k and d < prefixLength,
    // so the newcomer's leaf is full only if the range at the maximum depth holds >= k (counts
    // only shrink with depth): one range count decides.
    const maxDepth = this.prefixLength < KEY_BITS ? this.prefixLength : KEY_BITS
    let a = this.off[n]; let b = end
    if (b - a >= this.k) {
      const unit = 2 ** (KEY_BITS - maxDepth)
      const lo = Math.floor(key / unit) * unit
      a = this.lowerKey(a, b, lo); b = this.lowerKey(a, b, lo + unit)
    }
    if (b - a >= this.k) {
      // Full leaf at the maximum depth: ping up to 3 old contacts, evict the dead ones.
      let evicted = 0
      for (let t = 0; t < 3 && b - a > 0; t++) {
        const p = a + this.rng.int(b - a)
        const old = this.pool[p]
        this.stats.pings++
        if (this.online[old] === 0) { this.removeAt(n, p); b--; evicted++ }
      }
      if (evicted === 0) { this.stats.rejectedFull++; return false }
      this.stats.evicted += evicted
    }
    this.insert(n, c)
    this.stats.added++
    return true
  }

  /** Removes c from n's table (not kad-dht 16 behaviour on timeouts; optional in the model). */
  forget (n: number, c: number): boolean {
    const p = this.lowerNode(n, c)
    if (p >= this.off[n] + this.len[n] || this.pool[p] !== c) return false
    this.removeAt(n, p)
    return true
  }

  private removeAt (n: number, p: number): void {
    const end = this.off[n] + this.len[n]
    this.pool.copyWithin(p, p + 1, end)
    this.len[n]--
  }

  private insert (n: number, c: number): void {
    if (this.len[n] === CLASSES[this.cls[n]]) this.growTable(n)
    const pos = this.lowerNode(n, c)
    const end = this.off[n] + this.len[n]
    this.pool.copyWithin(pos + 1, pos, end)
    this.pool[pos] = c
    this.len[n]++
  }

  private growTable (n: number): void {
    const nc = this.cls[n] + 1
    const size = CLASSES[nc]
    let at = this.free[nc].pop()
    if (at === undefined) {
      if (this.top + size > this.pool.length) {
        const grown = new Int32Array(Math.max(this.top + size, Math.ceil(this.pool.length * 1.5)))
        grown.set(this.pool.subarray(0, this.top))
        this.pool = grown
      }
      at = this.top; this.top += size
    }
    this.pool.copyWithin(at, this.off[n], this.off[n] + this.len[n])
    if (this.cls[n] !== 0) this.free[this.cls[n]].push(this.off[n])
    this.off[n] = at; this.cls[n] = nc
  }

  /**
   * kad-dht's closestPeers: n's k contacts XOR-closest to the key (hi, lo), never
   * `exclude`. Writes node numbers into out[0..] and returns the count (unordered).
   */
  closestToKey (n: number, hi: number, lo: number, exclude: number, out: Int32Array): number {
    const k = this.k; const pool = this.pool
    const a0 = this.off[n]; const b0 = a0 + this.len[n]
    if (b0 - a0 <= k + 1) {
      let got = 0
      for (let p = a0; p < b0 && got < k; p++) { const c = pool[p]; if (c !== exclude) out[got++] = c }
      return got
    }
    // The deepest aligned subtree around the key holding >= k+1 contacts holds the k closest;
    // each level's range lies inside the one above, so the searches narrow.
    const key = hi * LO_SCALE + lo
    let a = a0; let b = b0
    for (let d = 1; d <= KEY_BITS; d++) {
      const unit = 2 ** (KEY_BITS - d)
      const s = Math.floor(key / unit) * unit
      const x = this.lowerKey(a, b, s); const y = this.lowerKey(x, b, s + unit)
      if (y - x < k + 1) break
      a = x; b = y
    }
    const sn = this.sn; const sd = this.sd
    let m = 0
    for (let p = a; p < b && m < sn.length; p++) {
      const c = pool[p]
      if (c !== exclude) { sn[m] = c; sd[m] = this.ids.distanceToKey(c, hi, lo); m++ }
    }
    if (m <= k) { for (let i = 0; i < m; i++) out[i] = sn[i]; return m }
    selectSmallest(sn, sd, m, k)
    for (let i = 0; i < k; i++) out[i] = sn[i]
    return k
  }

  /** Largest common prefix length, in whole bytes, between n and any contact (kad-dht refresh's _maxCommonPrefix). */
  maxCommonPrefixBytes (n: number): number {
    const a = this.off[n]; const b = a + this.len[n]
    if (a === b) return 0
    // The contacts adjacent to n in id order share the longest prefix with it.
    const p = this.lowerNode(n, n)
    let best = 0
    for (const q of [p - 1, p]) if (q >= a && q < b) best = Math.max(best, this.ids.cpl(n, this.pool[q]))
    return Math.floor(best / 8)
  }
}

/** Moves the k smallest of d[0..m) (with their nodes) into positions 0..k-1 (quickselect). */
function selectSmallest (nodes: Int32Array, d: Float64Array, m: number, k: number): void {
  let lo = 0; let hi = m - 1
  while (lo < hi) {
    const pivot = d[(lo + hi) >>> 1]
    let i = lo; let j = hi
    while (i <= j) {
      while (d[i] < pivot) i++
      while (d[j] > pivot) j--
      if (i <= j) {
        const td = d[i]; d[i] = d[j]; d[j] = td
        const tn = nodes[i]; nodes[i] = nodes[j]; nodes[j] = tn
        i++; j--
      }
    }
    if (k - 1 <= j) hi = j
    else if (k - 1 >= i) lo = i
    else return
  }
}
