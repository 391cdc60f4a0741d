// 256-bit Kademlia ids (as kad-dht derives them: sha256 of the peer id), stored as 8
// Uint32 words per node in one array. Nodes are numbered in id order, so every subtree
// of the id space is a contiguous range of node numbers: routing tables are built by
// binary search, without sorting per node.
//
// Lookups compare the top 53 bits of the XOR distance (exact in a float64). Two ids
// share their top 53 bits with probability ~N^2/2^54 (1e-4 at a million nodes), and
// only then could an order differ from the full 256-bit XOR order.
import type { SimRandom } from '../engine/random.js'

export const KEY_BITS = 53
const LO_BITS = 21
const LO_SCALE = 2 ** LO_BITS

export class KadIds {
  /** Top 32 bits of each id. */
  readonly hi: Uint32Array
  /** The next 21 bits. */
  readonly lo: Uint32Array
  /** All 256 bits, 8 words per node (word 0 = hi). */
  readonly words: Uint32Array
  /** hi and lo side by side (hl[2n], hl[2n + 1]): hot loops load both in one cache line. */
  readonly hl: Uint32Array

  constructor (readonly count: number, rng: SimRandom | null) {
    this.hi = new Uint32Array(count)
    this.lo = new Uint32Array(count)
    this.words = new Uint32Array(count * 8)
    this.hl = new Uint32Array(count * 2)
    if (rng === null) return
    // Draw 53-bit keys, sort them, then node n gets the n-th smallest.
    const keys = new Float64Array(count)
    for (let i = 0; i < count; i++) keys[i] = rng.u32() * LO_SCALE + (rng.u32() >>> (32 - LO_BITS))
    keys.sort()
    for (let i = 0; i < count; i++) {
      const hi = Math.floor(keys[i] / LO_SCALE); const lo = keys[i] - hi * LO_SCALE
      this.hi[i] = hi; this.lo[i] = lo
      this.hl[2 * i] = hi; this.hl[2 * i + 1] = lo
      const w = i * 8
      this.words[w] = hi
      this.words[w + 1] = ((lo << (32 - LO_BITS)) | (rng.u32() >>> LO_BITS)) >>> 0
      for (let j = 2; j < 8; j++) this.words[w + j] = rng.u32()
    }
  }

  /**
   * Ids given as 32-byte kad ids (e.g. sha256 of real peer ids, for calibration).
   * Returns the ids in node order and `nodeOf[i]`, the node number of input i.
   */
  static fromBytes (input: Uint8Array[]): { ids: KadIds, nodeOf: Int32Array } {
    const n = input.length
    const word = (b: Uint8Array, j: number): number => ((b[4 * j] << 24) | (b[4 * j + 1] << 16) | (b[4 * j + 2] << 8) | b[4 * j + 3]) >>> 0
    const order = Array.from({ length: n }, (_, i) => i)
    const cmp = (a: Uint8Array, b: Uint8Array): number => { for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0 }
    order.sort((a, b) => cmp(input[a], input[b]))
    const ids = new KadIds(n, null)
    const nodeOf = new Int32Array(n)
    order.forEach((src, node) => {
      nodeOf[src] = node
      const b = input[src]
      for (let j = 0; j < 8; j++) ids.words[node * 8 + j] = word(b, j)
      ids.hi[node] = ids.words[node * 8]
      ids.lo[node] = ids.words[node * 8 + 1] >>> (32 - LO_BITS)
      ids.hl[2 * node] = ids.hi[node]; ids.hl[2 * node + 1] = ids.lo[node]
    })
    return { ids, nodeOf }
  }

  /** XOR distance between two nodes' ids (top 53 bits) as a float64. */
  distance (a: number, b: number): number {
    return ((this.hi[a] ^ this.hi[b]) >>> 0) * LO_SCALE + (this.lo[a] ^ this.lo[b])
  }

  /** Common prefix length of two ids (0..53). */
  cpl (a: number, b: number): number {
    const x = (this.hi[a] ^ this.hi[b]) >>> 0
    if (x !== 0) return Math.clz32(x)
    const y = this.lo[a] ^ this.lo[b]
    return y === 0 ? KEY_BITS : 32 + Math.clz32(y) - (32 - LO_BITS)
  }

  key (n: number): number { return this.hi[n] * LO_SCALE + this.lo[n] }

  /** Common prefix length (0..53) of node a's id and a key given as (hi, lo). */
  cplKey (a: number, hi: number, lo: number): number {
    const x = (this.hi[a] ^ hi) >>> 0
    if (x !== 0) return Math.clz32(x)
    const y = this.lo[a] ^ lo
    return y === 0 ? KEY_BITS : 32 + Math.clz32(y) - (32 - LO_BITS)
  }

  /** XOR distance (top 53 bits) between node a and a key given as (hi 32 bits, lo 21 bits). */
  distanceToKey (a: number, hi: number, lo: number): number {
    return ((this.hi[a] ^ hi) >>> 0) * LO_SCALE + (this.lo[a] ^ lo)
  }

  /**
   * A random key sharing exactly `cpl` leading bits with node n (kad-dht's refresh key for
   * that common prefix length). Written into out[0] (hi) and out[1] (lo).
   */
  randomKeyWithCpl (n: number, cpl: number, rng: SimRandom, out: Uint32Array | Float64Array): void {
    const own = this.key(n)
    const unit = 2 ** (KEY_BITS - cpl - 1)
    const q = Math.floor(own / unit)
    const sibling = (q % 2 === 0 ? q + 1 : q - 1) * unit
    const k = sibling + Math.floor(rng.next() * unit)
    const hi = Math.floor(k / LO_SCALE)
    out[0] = hi; out[1] = k - hi * LO_SCALE
  }

  private prefixIndex: Int32Array | null = null

  /**
   * First node number whose key (hi, lo) is >= the given key: an index by the top 16 bits
   * (256 KB, stays in cache) narrows the binary search to the few nodes sharing them.
   */
  lowerBoundHiLo (hi: number, lo: number): number {
    let idx = this.prefixIndex
    if (idx === null) {
      idx = this.prefixIndex = new Int32Array(65537)
      let n = 0
      for (let t = 0; t <= 65536; t++) { while (n < this.count && (this.hi[n] >>> 16) < t) n++; idx[t] = n }
    }
    const t = hi >>> 16
    let a = idx[t]; let b = idx[t + 1]
    const H = this.hi; const L = this.lo
    while (a < b) {
      const mid = (a + b) >>> 1
      if (H[mid] < hi || (H[mid] === hi && L[mid] < lo)) a = mid + 1; else b = mid
    }
    return a
  }

  /** First node number whose key is >= `key` (binary search over the id order). */
  lowerBound (key: number, from = 0, to = this.count): number {
    let lo = from; let hi = to
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.hi[mid] * LO_SCALE + this.lo[mid] < key) lo = mid + 1; else hi = mid
    }
    return lo
  }

  hex (n: number): string {
    let s = ''
    for (let j = 0; j < 8; j++) s += this.words[n * 8 + j].toString(16).padStart(8, '0')
    return s
  }
}
