// The OMNISCIENT reference tables (`--set tables=omniscient`; the model before tables were
// built by joining, kept as the reference that bench/sim.ts measures against): Kademlia
// routing tables for every node in two flat arrays (CSR): node n's contacts are
// contacts[start[n] .. start[n+1]), ordered by bucket (common prefix length with n, as in
// the classic per-distance k-buckets), so a bucket is found by binary search and nothing
// is stored per bucket. Only DHT servers (reachable nodes) appear as contacts; NAT'ed
// nodes are DHT clients that keep a table but are never in one.
//
// Simplification (stated in reports): tables are "fully refreshed": bucket b holds k
// servers drawn uniformly from the subtree it covers, as kad-dht's refresh converges to.
// kad-dht 16's own table is a trie split to depth `prefixLength` (6) plus a peer store;
// the classic shape is what keeps a table at ~k*log2(N/k) contacts (~1.3 KB at 1M nodes).
import type { SimRandom } from '../engine/random.js'
import { KEY_BITS, type KadIds } from './ids.js'
import type { RoutingView } from './routing.js'

export class RoutingTables implements RoutingView {
  /** Node n's contacts start at start[n]; start[count] is the total. */
  readonly start: Int32Array
  readonly contacts: Int32Array
  /** Server node numbers in id order (the only nodes that can be contacts). */
  readonly servers: Int32Array
  /** Id keys of `servers`, for contiguous binary searches (building, repairing). */
  private serverKeys: Float64Array
  private readonly scratchNode = new Int32Array(4096)
  private readonly scratchDist = new Float64Array(4096)

  /**
   * Tables given explicitly (e.g. snapshots of real kad-dht nodes for calibration):
   * contacts[i] lists node i's contacts as node numbers. Everyone is a server.
   */
  static fromContacts (ids: KadIds, contacts: number[][], k: number): RoutingTables {
    const t = new RoutingTables(ids, new Uint8Array(ids.count).fill(1), k, null)
    let total = 0
    for (let i = 0; i < ids.count; i++) total += contacts[i].length
    const flat = new Int32Array(total)
    let at = 0
    for (let i = 0; i < ids.count; i++) {
      t.start[i] = at
      const sorted = contacts[i].filter(c => c !== i).sort((a, b) => ids.cpl(i, a) - ids.cpl(i, b))
      for (const c of sorted) flat[at++] = c
    }
    t.start[ids.count] = at
    ;(t as { contacts: Int32Array }).contacts = flat.subarray(0, at)
    return t
  }

  /**
   * kad-dht 16's own table shape: a trie split by *absolute* id prefix down to
   * `prefixLength` bits (default 6), so up to 2^prefixLength leaves of k peers each, with
   * no deeper buckets near the node itself (up to 1,280 contacts; ~5 KB per node). For
   * comparison runs (`--set trie=6`): without peer stores it shows how far such a table
   * routes on its own.
   */
  static trie (ids: KadIds, isServer: Uint8Array, k: number, prefixLength: number, rng: SimRandom): RoutingTables {
    const t = new RoutingTables(ids, isServer, k, null)
    const n = ids.count
    const leaves = 2 ** prefixLength; const unit = 2 ** (KEY_BITS - prefixLength)
    const r = new Int32Array(2)
    const leafRanges = new Int32Array(leaves * 2)
    for (let p = 0; p < leaves; p++) { t.serverRange(p * unit, unit, r); leafRanges[2 * p] = r[0]; leafRanges[2 * p + 1] = r[1] }
    const own = (i: number): number => Math.floor(ids.key(i) / unit)
    let total = 0
    for (let i = 0; i < n; i++) {
      t.start[i] = total
      for (let p = 0; p < leaves; p++) {
        const m = leafRanges[2 * p + 1] - leafRanges[2 * p] - (p === own(i) && isServer[i] === 1 ? 1 : 0)
        total += m < k ? m : k
      }
    }
    t.start[n] = total
    const flat = new Int32Array(total)
    const tmp = new Int32Array(leaves * k); const byCpl = new Int32Array(KEY_BITS + 2)
    for (let i = 0; i < n; i++) {
      let got = 0
      for (let p = 0; p < leaves; p++) {
        const lo = leafRanges[2 * p]; const m = leafRanges[2 * p + 1] - lo
        const first = got
        if (m <= k + 1) {
          for (let j = 0; j < m && got - first < k; j++) { const c = t.servers[lo + j]; if (c !== i) tmp[got++] = c }
        } else {
          while (got - first < k) {
            const c = t.servers[lo + rng.int(m)]
            let dup = c === i
            for (let x = first; x < got && !dup; x++) if (tmp[x] === c) dup = true
            if (!dup) tmp[got++] = c
          }
        }
      }
      // Order by bucket (cpl with i), as closestPeers expects: counting sort.
      byCpl.fill(0)
      for (let x = 0; x < got; x++) byCpl[ids.cpl(i, tmp[x]) + 1]++
      for (let c = 1; c < byCpl.length; c++) byCpl[c] += byCpl[c - 1]
      const base = t.start[i]
      for (let x = 0; x < got; x++) flat[base + byCpl[ids.cpl(i, tmp[x])]++] = tmp[x]
    }
    ;(t as { contacts: Int32Array }).contacts = flat
    return t
  }

  constructor (readonly ids: KadIds, isServer: Uint8Array, readonly k: number, rng: SimRandom | null) {
    const n = ids.count
    let s = 0
    for (let i = 0; i < n; i++) if (isServer[i] === 1) s++
    this.servers = new Int32Array(s)
    s = 0
    for (let i = 0; i < n; i++) if (isServer[i] === 1) this.servers[s++] = i
    this.serverKeys = new Float64Array(s)
    for (let j = 0; j < s; j++) this.serverKeys[j] = ids.key(this.servers[j])
    // Pass 1: sizes. Pass 2: sample. Exact allocation keeps the 1M-node table compact.
    this.start = new Int32Array(n + 1)
    if (rng === null) { this.contacts = new Int32Array(0); return }
    let total = 0
    for (let i = 0; i < n; i++) {
      this.start[i] = total
      total += this.fill(i, null, 0, rng, isServer[i] === 1)
    }
    this.start[n] = total
    this.contacts = new Int32Array(total)
    for (let i = 0; i < n; i++) this.fill(i, this.contacts, this.start[i], rng, isServer[i] === 1)
  }

  /** Server-array range [lo, hi) of the ids whose top `len` bits equal `key`'s with bit len-1 flipped or not. */
  private serverRange (keyStart: number, unit: number, out: Int32Array): void {
    out[0] = this.lowerBoundServers(keyStart)
    out[1] = this.lowerBoundServers(keyStart + unit)
  }

  private lowerBoundServers (key: number): number {
    const sk = this.serverKeys
    let lo = 0; let hi = sk.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (sk[mid] < key) lo = mid + 1; else hi = mid
    }
    return lo
  }

  /** Counts (out === null) or samples node i's buckets into out[at..]. Returns how many. */
  private readonly range = new Int32Array(2)

  private fill (i: number, out: Int32Array | null, at: number, rng: SimRandom, isServer: boolean): number {
    const key = this.ids.key(i)
    const r = this.range
    let written = 0
    for (let b = 0; b < KEY_BITS; b++) {
      const unit = 2 ** (KEY_BITS - b - 1)
      const q = Math.floor(key / unit)
      const sibling = (q % 2 === 0 ? q + 1 : q - 1) * unit
      this.serverRange(sibling, unit, r)
      const m = r[1] - r[0]
      const take = m < this.k ? m : this.k
      if (out !== null && take > 0) {
        if (m <= this.k) {
          for (let j = 0; j < m; j++) out[at + written + j] = this.servers[r[0] + j]
        } else {
          // Floyd's sampling of k distinct indices out of m.
          let got = 0
          for (let j = m - this.k; j < m; j++) {
            let t = rng.int(j + 1)
            for (let x = 0; x < got; x++) if (out[at + written + x] === this.servers[r[0] + t]) { t = j; break }
            out[at + written + got++] = this.servers[r[0] + t]
          }
        }
      }
      written += take
      // Stop once our own subtree at depth b+1 holds no other server.
      const own = q * unit
      this.serverRange(own, unit, r)
      const others = r[1] - r[0] - (isServer ? 1 : 0) // i is inside its own subtree
      if (others <= 0) break
    }
    return written
  }

  size (n: number): number { return this.start[n + 1] - this.start[n] }

  /** First position in n's contacts whose bucket (cpl with n) is >= b. */
  private bucketStart (n: number, b: number): number {
    let lo = this.start[n]; let hi = this.start[n + 1]
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.ids.cpl(n, this.contacts[mid]) < b) lo = mid + 1; else hi = mid
    }
    return lo
  }

  /**
   * kad-dht's getClosestPeersOffline: node n's k closest contacts to `target`, never
   * `exclude` (the requester). Writes node numbers into out[0..] and returns the count.
   * Buckets are visited from the target's bucket outwards, so at most a few are touched.
   */
  closestPeers (n: number, target: number, exclude: number, out: Int32Array): number {
    return this.closestToKey(n, this.ids.hi[target], this.ids.lo[target], exclude, out)
  }

  /** closestPeers for a key given as (hi 32 bits, lo 21 bits). */
  closestToKey (n: number, hi: number, lo: number, exclude: number, out: Int32Array): number {
    const k = this.k; const ids = this.ids; const cs = this.contacts
    const b = ids.cplKey(n, hi, lo)
    const s0 = this.bucketStart(n, b)
    const s1 = this.bucketStart(n, b + 1)
    const end = this.start[n + 1]
    let got = 0
    if (s1 - s0 > k) return this.addClosest(s0, s1, hi, lo, exclude, out, 0) // only explicit tables overfill a bucket
    for (let p = s0; p < s1; p++) { const c = cs[p]; if (c !== exclude) out[got++] = c }
    if (got >= k) return got
    // Deeper buckets are all closer to the target than shallower ones.
    got = this.addClosest(s1, end, hi, lo, exclude, out, got)
    let hiPos = s0
    for (let j = b - 1; j >= 0 && got < k; j--) {
      const loPos = this.bucketStart(n, j)
      got = this.addClosest(loPos, hiPos, hi, lo, exclude, out, got)
      hiPos = loPos
    }
    return got
  }

  /** Omniscient tables are fixed: protocol events change nothing. */
  learn (_n: number, _c: number): boolean { return false }
  forget (_n: number, _c: number): boolean { return false }

  private addClosest (from: number, to: number, hi: number, lo: number, exclude: number, out: Int32Array, got: number): number {
    const need = this.k - got
    const cs = this.contacts
    let m = 0
    for (let p = from; p < to; p++) { if (cs[p] !== exclude) m++ }
    if (m <= need) {
      for (let p = from; p < to; p++) { const c = cs[p]; if (c !== exclude) out[got++] = c }
      return got
    }
    const sn = this.scratchNode; const sd = this.scratchDist
    m = 0
    for (let p = from; p < to && m < sn.length; p++) {
      const c = cs[p]
      if (c !== exclude) { sn[m] = c; sd[m] = this.ids.distanceToKey(c, hi, lo); m++ }
    }
    for (let x = 0; x < need; x++) {
      let best = x
      for (let y = x + 1; y < m; y++) if (sd[y] < sd[best]) best = y
      const tn = sn[x]; sn[x] = sn[best]; sn[best] = tn
      const td = sd[x]; sd[x] = sd[best]; sd[best] = td
      out[got++] = sn[x]
    }
    return got
  }

  /**
   * Replaces contact `dead` in n's table (after a failed RPC) by a random online server
   * from the same subtree, standing in for kad-dht's ping-evict-refresh cycle.
   */
  replaceContact (n: number, dead: number, online: Uint8Array, rng: SimRandom): boolean {
    const b = this.ids.cpl(n, dead)
    const s0 = this.bucketStart(n, b); const s1 = this.bucketStart(n, b + 1)
    let pos = -1
    for (let p = s0; p < s1; p++) if (this.contacts[p] === dead) { pos = p; break }
    if (pos < 0) return false
    const key = this.ids.key(n)
    const unit = 2 ** (KEY_BITS - b - 1)
    const q = Math.floor(key / unit)
    const r = new Int32Array(2)
    this.serverRange((q % 2 === 0 ? q + 1 : q - 1) * unit, unit, r)
    const m = r[1] - r[0]
    for (let tries = 0; tries < 8 && m > 0; tries++) {
      const c = this.servers[r[0] + rng.int(m)]
      if (online[c] === 0) continue
      let dup = false
      for (let p = s0; p < s1; p++) if (this.contacts[p] === c) { dup = true; break }
      if (dup) continue
      this.contacts[pos] = c
      return true
    }
    return false
  }
}
