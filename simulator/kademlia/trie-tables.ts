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

// Size classes of a table's run: ~1.25x apart, so little of the pool sits unused.
const CLASSES: number[] = [0]
for (let c = 4; c < 1 << 24; c = Math.max(c + 4, Math.ceil(c * 1.25 / 4) * 4)) CLASSES.push(c)

export interface TrieStats { added: number, rejectedFull: number, evicted: number, pings: number }

export class TrieTables implements RoutingView {
  // Per node: pool offset, length and size class of its run, side by side (hd[4n], hd[4n+1],
  // hd[4n+2]): an RPC to a cold node touches one cache line for its table head, not three.
  private readonly hd: Uint32Array
  private pool: Int32Array
  private top = 0
  private readonly free: number[][] = CLASSES.map(() => [])
  private readonly sn = new Int32Array(1 << 16)
  private readonly sd = new Float64Array(1 << 16)
  readonly stats: TrieStats = { added: 0, rejectedFull: 0, evicted: 0, pings: 0 }
  /** XOR distances of the contacts the last closestToKey wrote, index for index (saves the caller reloading ids). */
  readonly outDist: Float64Array
  /** Where the last learn() left its contact: node, index in the run (-1: none; any other change clears it). */
  private hintN = -1
  private hintIdx = 0
  /** Whether any maximum-depth leaf could ever hold k contacts (see the constructor). */
  private readonly fullLeafPossible: boolean

  /**
   * ids: every node that will ever exist (id order); isServer: DHT servers (the only
   * possible contacts); online: liveness, read by the full-leaf ping.
   */
  constructor (readonly ids: KadIds, readonly servers: Int32Array, readonly k: number, readonly prefixLength: number,
    private readonly online: Uint8Array, private readonly rng: SimRandom, expectedContacts = ids.count * 16) {
    const n = ids.count
    this.hd = new Uint32Array(4 * n) // offsets past 2^31 pool slots (10M nodes x ~300)
    this.pool = new Int32Array(Math.max(1024, expectedContacts))
    this.outDist = new Float64Array(k + 1)
    // A leaf at the maximum depth can be full only if more than k ids share that prefix: when
    // no group of ids does (prefixLength 32 below ~10^8 nodes), learn() skips the leaf scan.
    const maxDepth = prefixLength < KEY_BITS ? prefixLength : KEY_BITS
    let group = 1; let biggest = n > 0 ? 1 : 0
    for (let i = 1; i < n; i++) { group = ids.cpl(i - 1, i) >= maxDepth ? group + 1 : 1; if (group > biggest) biggest = group }
    this.fullLeafPossible = biggest > k
  }


  size (n: number): number { return this.hd[4 * n + 1] }

  /** Pool slots handed out so far (freed runs are reused, so this is the high-water mark). */
  get slotsUsed (): number { return this.top }

  /** Pool slots allocated. */
  get poolLength (): number { return this.pool.length }

  /** Total contacts held, and pool slots allocated (for memory figures). */
  totals (): { contacts: number, poolSlots: number } {
    let c = 0
    for (let i = 0; i < this.ids.count; i++) c += this.hd[4 * i + 1]
    return { contacts: c, poolSlots: this.pool.length }
  }

  /** Drops the whole table of n (a node that restarts without state). */
  clear (n: number): void {
    this.hintN = -1
    if (this.hd[4 * n + 2] !== 0) this.free[this.hd[4 * n + 2]].push(this.hd[4 * n])
    this.hd[4 * n + 2] = 0; this.hd[4 * n + 1] = 0; this.hd[4 * n] = 0
  }

  contactsOf (n: number): Int32Array { return this.pool.subarray(this.hd[4 * n], this.hd[4 * n] + this.hd[4 * n + 1]) }

  has (n: number, c: number): boolean {
    const p = this.lowerNode(n, c)
    return p < this.hd[4 * n] + this.hd[4 * n + 1] && this.pool[p] === c
  }

  /** First pool position in n's run whose node number is >= c. */
  private lowerNode (n: number, c: number): number {
    let lo = this.hd[4 * n]; let hi = lo + this.hd[4 * n + 1]
    const pool = this.pool
    while (lo < hi) { const mid = lo + ((hi - lo) >>> 1); if (pool[mid] < c) lo = mid + 1; else hi = mid }
    return lo
  }

  /**
   * A protocol event made n aware of server c (kad-dht's routingTable.add after the new
   * contact answered its ping). Returns true when c is now in n's table.
   */
  learn (n: number, c: number): boolean {
    if (n === c) return false
    const pos = this.lowerNode(n, c)
    const end = this.hd[4 * n] + this.hd[4 * n + 1]
    if (pos < end && this.pool[pos] === c) { this.hintN = n; this.hintIdx = pos - this.hd[4 * n]; return true }
    // Walking down the trie, a leaf at depth d is split iff it holds >= k and d < prefixLength,
    // so the newcomer's leaf is full only if the range at the maximum depth holds >= k (counts
    // only shrink with depth): one range count decides. That range is the run of contacts
    // around c's position sharing its top maxDepth bits (at most k of them: scanned).
    const maxDepth = this.prefixLength < KEY_BITS ? this.prefixLength : KEY_BITS
    const a0 = this.hd[4 * n]
    let a = a0; let b = end
    if (!this.fullLeafPossible) {
      b = a // no leaf at the maximum depth can hold k: skip the scan
    } else if (b - a >= this.k) {
      const hc = this.ids.hl[2 * c]; const lc = this.ids.hl[2 * c + 1]
      a = pos; b = pos
      while (a > a0 && this.cplAt(a - 1, hc, lc) >= maxDepth) a--
      while (b < end && this.cplAt(b, hc, lc) >= maxDepth) b++
    }
    let at = pos
    if (b - a >= this.k) {
      // Full leaf at the maximum depth: ping up to 3 old contacts, evict the dead ones.
      let evicted = 0
      for (let t = 0; t < 3 && b - a > 0; t++) {
        const p = a + this.rng.int(b - a)
        const old = this.pool[p]
        this.stats.pings++
        if (this.online[old] === 0) { this.removeAt(n, p); b--; evicted++; if (p < at) at-- }
      }
      if (evicted === 0) { this.stats.rejectedFull++; return false }
      this.stats.evicted += evicted
    }
    this.insertAt(n, c, at)
    this.hintN = n; this.hintIdx = at - a0
    this.stats.added++
    return true
  }

  /** Removes c from n's table (not kad-dht 16 behaviour on timeouts; optional in the model). */
  forget (n: number, c: number): boolean {
    const p = this.lowerNode(n, c)
    if (p >= this.hd[4 * n] + this.hd[4 * n + 1] || this.pool[p] !== c) return false
    this.removeAt(n, p)
    return true
  }

  private removeAt (n: number, p: number): void {
    this.hintN = -1
    const end = this.hd[4 * n] + this.hd[4 * n + 1]
    this.pool.copyWithin(p, p + 1, end)
    this.hd[4 * n + 1]--
  }

  /** Inserts c at pool position `pos` of n's run (its sorted place). */
  private insertAt (n: number, c: number, pos: number): void {
    this.hintN = -1
    if (this.hd[4 * n + 1] === CLASSES[this.hd[4 * n + 2]]) { const o = this.hd[4 * n]; this.growTable(n); pos += this.hd[4 * n] - o }
    const end = this.hd[4 * n] + this.hd[4 * n + 1]
    this.pool.copyWithin(pos + 1, pos, end)
    this.pool[pos] = c
    this.hd[4 * n + 1]++
  }

  private growTable (n: number): void {
    const nc = this.hd[4 * n + 2] + 1
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
    this.pool.copyWithin(at, this.hd[4 * n], this.hd[4 * n] + this.hd[4 * n + 1])
    if (this.hd[4 * n + 2] !== 0) this.free[this.hd[4 * n + 2]].push(this.hd[4 * n])
    this.hd[4 * n] = at; this.hd[4 * n + 2] = nc
  }

  /** Common prefix length of the contact at pool position p with the key (hi, lo). */
  private cplAt (p: number, hi: number, lo: number): number {
    const c2 = this.pool[p] * 2; const HL = this.ids.hl
    return cplOf(HL[c2], HL[c2 + 1], hi, lo)
  }

  /**
   * kad-dht's closestPeers: n's k contacts XOR-closest to the key (hi, lo), never
   * `exclude`. Writes node numbers into out[0..] and returns the count (unordered).
   */
  closestToKey (n: number, hi: number, lo: number, exclude: number, out: Int32Array, nbGiven = -1): number {
    const k = this.k; const pool = this.pool
    const a0 = this.hd[4 * n]; const b0 = a0 + this.hd[4 * n + 1]
    if (b0 - a0 <= k + 1) {
      let got = 0
      const od = this.outDist
      for (let p = a0; p < b0 && got < k; p++) { const c = pool[p]; if (c !== exclude) { od[got] = this.ids.distanceToKey(c, hi, lo); out[got++] = c } }
      return got
    }
    // The deepest aligned subtree around the key holding >= k+1 contacts holds the k closest.
    // Contacts are in key order, so their common prefix with the key grows toward the key's
    // position from both sides: merging the two sides by common prefix, the (k+1)-th taken
    // gives that subtree's depth, and it is the run of contacts around the key that share it.
    const HL = this.ids.hl
    // Node numbers are in key order: the key's place among n's contacts is that of the first
    // node at or after the key (an int search over the run, not a key search through ids).
    const nb = nbGiven >= 0 ? nbGiven : this.ids.lowerBoundHiLo(hi, lo)
    let pos = a0; let pe = b0
    // learn() just placed a contact in this run (a responder adding its querier): its place
    // bounds the search (for a self-query, whose key is the querier's id, it is the place).
    if (this.hintN === n) {
      const hp = a0 + this.hintIdx
      if (pool[hp] < nb) pos = hp + 1; else pe = hp
    }
    while (pos < pe) { const mid = pos + ((pe - pos) >>> 1); if (pool[mid] < nb) pos = mid + 1; else pe = mid }
    let l = pos - 1; let r = pos
    let cl = l >= a0 ? this.cplAt(l, hi, lo) : -1
    let cr = r < b0 ? this.cplAt(r, hi, lo) : -1
    let depth = KEY_BITS
    for (let taken = 0; taken <= k; taken++) {
      if (cl >= cr) { depth = cl; l--; cl = l >= a0 ? this.cplAt(l, hi, lo) : -1 } else { depth = cr; r++; cr = r < b0 ? this.cplAt(r, hi, lo) : -1 }
    }
    while (cl >= depth) { l--; cl = l >= a0 ? this.cplAt(l, hi, lo) : -1 }
    while (cr >= depth) { r++; cr = r < b0 ? this.cplAt(r, hi, lo) : -1 }
    const a = l + 1; const b = r
    const sn = this.sn; const sd = this.sd
    let m = 0
    for (let p = a; p < b && m < sn.length; p++) {
      const c = pool[p]
      if (c !== exclude) { sn[m] = c; sd[m] = ((HL[2 * c] ^ hi) >>> 0) * 2097152 + (HL[2 * c + 1] ^ lo); m++ } // distanceToKey
    }
    const od = this.outDist
    if (m <= k) { for (let i = 0; i < m; i++) { out[i] = sn[i]; od[i] = sd[i] } return m }
    selectSmallest(sn, sd, m, k)
    for (let i = 0; i < k; i++) { out[i] = sn[i]; od[i] = sd[i] }
    return k
  }

  /** Largest common prefix length, in whole bytes, between n and any contact (kad-dht refresh's _maxCommonPrefix). */
  maxCommonPrefixBytes (n: number): number {
    const a = this.hd[4 * n]; const b = a + this.hd[4 * n + 1]
    if (a === b) return 0
    // The contacts adjacent to n in id order share the longest prefix with it.
    const p = this.lowerNode(n, n)
    let best = 0
    for (const q of [p - 1, p]) if (q >= a && q < b) best = Math.max(best, this.ids.cpl(n, this.pool[q]))
    return Math.floor(best / 8)
  }
}

/** Common prefix length (0..53) of the keys (h1, l1) and (h2, l2) (as KadIds.cplKey). */
function cplOf (h1: number, l1: number, h2: number, l2: number): number {
  const x = (h1 ^ h2) >>> 0
  if (x !== 0) return Math.clz32(x)
  const y = l1 ^ l2
  return y === 0 ? KEY_BITS : Math.clz32(y) + 21
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
