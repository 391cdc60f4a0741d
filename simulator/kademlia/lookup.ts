// kad-dht's FIND_NODE/findPeer query, modelled on the event engine. It follows
// @libp2p/kad-dht 16 (query/manager.js and query/query-path.js):
// - the origin takes its k closest contacts to the key, shuffles them and deals them
//   round-robin into `disjointPaths` paths;
// - each path is a queue ordered by XOR distance, running at most `alpha` RPCs at once;
// - a peer already seen by any path is never queued again (the shared peersSeen filter);
// - a returned peer is queued only if it is closer than the peer that returned it and
//   could still enter the path's list of the k closest peers that responded;
// - a dequeued peer that can no longer enter that list is skipped ("path converged");
// - a path ends when its queue is idle; findPeer succeeds as soon as a response names the
//   target (or the target itself answers) and fails when every path has ended.
// - getClosestPeers (the join's self-lookup and refresh lookups: start with a key) runs the
//   same walk but never stops early; it ends when every path has ended.
// Tables learn from the walk as kad-dht's do: the origin adds every peer that answered
// (query/manager.js) and a responder adds a querier that is a DHT server (topology
// onConnect). kad-dht 16 never drops a contact because a query to it failed; the model can
// (`evictOnTimeout`, off by default).
// All lookup state lives in fixed slots of typed arrays; an event carries (slot, candidate,
// generation) and a generation bump retires a finished lookup's late replies.
import type { EventQueue } from '../engine/event-queue.js'
import type { SimRandom } from '../engine/random.js'
import type { VirtualNetwork } from '../network/network.js'
import type { KadIds } from './ids.js'
import type { RoutingView } from './routing.js'
import { DEFAULT_LOOKUP, type LookupParams, type LookupStats } from './lookup-params.js'

export { DEFAULT_LOOKUP, type LookupParams, type LookupStats } from './lookup-params.js'

export const EVENT_RPC_DONE = 1
export const EVENT_RPC_FAIL = 2

const CAND = 2048 // candidates per lookup
const SEEN = 4096 // seen-set hash slots per lookup at most (power of two, > CAND)
// Slot regions are padded by one cache line: with power-of-two strides (16 KB, 32 KB) the hot
// start of every slot's region maps to the same few cache sets and they evict each other.
const CAND_STRIDE = CAND + 4 // 16-byte records
const SEEN_STRIDE = SEEN + 16 // 4-byte entries
const SEEN_BITS_MIN = 8 // a lookup's seen set starts at 256 slots and doubles at half full
const SEEN_BITS_MAX = 12 // log2(SEEN)
const QCAP = 128 // queued peers per path
const WAIT_FIELDS = 8

export class KadLookups {
  readonly p: LookupParams
  readonly stats: LookupStats
  /** Latency of each successful lookup, ms (in completion order). */
  latencies: Float32Array
  private latCount = 0

  private readonly D: number
  private readonly sOrigin: Int32Array
  private readonly sTarget: Int32Array
  private readonly sKeyHi: Float64Array
  private readonly sKeyLo: Float64Array
  /** The first node number at or after the slot's key (tables find the key's place among contacts with it). */
  private readonly sNb: Int32Array
  private readonly sWalk: Uint8Array
  private readonly sRpcs: Int32Array
  private readonly sGen: Int32Array
  private readonly sStart: Float64Array
  private readonly sInflight: Int32Array
  private readonly sCand: Int32Array
  private readonly sLivePaths: Int32Array
  private readonly freeSlots: Int32Array
  private freeTop: number
  // A candidate is 16 bytes in one buffer (one cache line per access, not four): distance
  // (f64 at 2*at), node (i32 at 4*at+2), depth << 8 | path (i32 at 4*at+3).
  private readonly cF: Float64Array
  private readonly cI: Int32Array
  // Seen sets: node + 1 per slot (0 empty), open addressing over the first 2^seenBits slots
  // of the lookup's region. A walk sees a few hundred peers, so starting small keeps the 512
  // sets' touched memory ~1 MB (cache-resident) instead of 16 MB of mostly cold slots.
  private readonly seen: Int32Array
  private readonly seenBits: Uint8Array
  private readonly seenCount: Int32Array
  private readonly seenTmp = new Int32Array(SEEN)
  private readonly qLen: Int32Array
  private readonly qItem: Int32Array
  private readonly qDist: Float64Array
  private readonly running: Int32Array
  private readonly pathLive: Uint8Array
  private readonly closeLen: Int32Array
  private readonly closeDist: Float64Array
  private readonly scratch: Int32Array
  private readonly shuffle: Int32Array
  private genCounter = 1
  /**
   * kad-dht's FIND_NODE handler also returns the target itself when the responder's peer
   * store has its addresses (getClosestPeersOffline). Large runs leave this null (no peer
   * stores are modelled: a conservative simplification); calibration sets it from real
   * peer-store snapshots.
   */
  peerStoreKnows: ((responder: number, target: number) => boolean) | null = null
  /** 1 for DHT servers (the nodes a responder adds back when they query it); all servers by default. */
  isServer: Uint8Array
  /** Called for every answer a walk gets (tag, responder): drivers that collect walk results (provider records). */
  onWalkResponse: ((tag: number, responder: number) => void) | null = null
  /** Called once per finished getClosestPeers walk with the tag given to startWalk(). */
  onWalkDone: ((tag: number, now: number) => void) | null = null
  /** Called once per finished findPeer with the tag given to start() (drivers that wait on lookups). */
  onFinish: ((tag: number, ok: boolean, hops: number, now: number) => void) | null = null
  private readonly sTag: Int32Array
  private readonly outDist: Float64Array | null
  /**
   * Requests waiting for a free slot, FIFO, WAIT_FIELDS numbers each (origin, target, key hi,
   * key lo, walk, tag, ctx, enqueued at): slots are a simulator limit, so a request waits for
   * one instead of retrying (retry events spun at every few ms while timeouts held the slots).
   */
  private readonly waitQ: number[] = []
  private waitHead = 0
  private draining = false
  /** Asked when a waiting getClosestPeers walk's turn comes (tag, ctx as given); false drops it. */
  admitWalk: ((tag: number, ctx: number) => boolean) | null = null
  /** Asked when a waiting findPeer's turn comes (tag, ctx as given, origin); false drops it. */
  admitLookup: ((tag: number, ctx: number, origin: number) => boolean) | null = null

  constructor (private readonly q: EventQueue, private readonly net: VirtualNetwork, private readonly ids: KadIds,
    private readonly tables: RoutingView, private readonly rng: SimRandom, params: Partial<LookupParams> = {}, expectedLookups = 1024) {
    this.p = { ...DEFAULT_LOOKUP, ...params }
    const S = this.p.maxConcurrent; const D = this.D = Math.max(1, Math.min(this.p.disjointPaths, this.p.k)); const K = this.p.k
    this.stats = { started: 0, succeeded: 0, failed: 0, rpcs: 0, timeouts: 0, unreachableRpcs: 0, overflow: 0, hops: new Int32Array(64), rpcHist: new Int32Array(256), walks: 0, walkRpcs: 0, walkTimeouts: 0, pings: 0, waited: 0, maxWaiting: 0, waitMs: 0, waitDropped: 0 }
    this.latencies = new Float32Array(Math.max(16, expectedLookups))
    this.sOrigin = new Int32Array(S); this.sTarget = new Int32Array(S); this.sGen = new Int32Array(S)
    this.sKeyHi = new Float64Array(S); this.sKeyLo = new Float64Array(S); this.sNb = new Int32Array(S); this.sWalk = new Uint8Array(S); this.sRpcs = new Int32Array(S)
    this.sTag = new Int32Array(S); this.sStart = new Float64Array(S); this.sInflight = new Int32Array(S); this.sCand = new Int32Array(S); this.sLivePaths = new Int32Array(S)
    this.freeSlots = new Int32Array(S)
    for (let i = 0; i < S; i++) this.freeSlots[i] = S - 1 - i
    this.freeTop = S
    const cbuf = new ArrayBuffer(S * CAND_STRIDE * 16)
    this.cF = new Float64Array(cbuf); this.cI = new Int32Array(cbuf)
    this.seen = new Int32Array(S * SEEN_STRIDE); this.seenBits = new Uint8Array(S); this.seenCount = new Int32Array(S)
    this.qLen = new Int32Array(S * D); this.qItem = new Int32Array(S * D * QCAP); this.qDist = new Float64Array(S * D * QCAP)
    this.running = new Int32Array(S * D); this.pathLive = new Uint8Array(S * D)
    this.closeLen = new Int32Array(S * D); this.closeDist = new Float64Array(S * D * K)
    this.scratch = new Int32Array(K + 1)
    this.isServer = new Uint8Array(ids.count).fill(1)
    this.shuffle = new Int32Array(K + 1)
    this.outDist = tables.outDist ?? null
  }

  /** Lookups in flight now. */
  get inFlight (): number { return this.p.maxConcurrent - this.freeTop }

  /** Starts findPeer(target) at `origin`; false when all slots are busy (retry later). */
  start (now: number, origin: number, target: number, tag = -1): boolean {
    return this.begin(now, origin, target, this.ids.hi[target], this.ids.lo[target], 0, tag)
  }

  /**
   * Starts getClosestPeers(key) at `origin` (a self-lookup or a refresh walk): it runs
   * until every path has ended. The key is (hi 32 bits, lo 21 bits).
   */
  startWalk (now: number, origin: number, hi: number, lo: number, tag = -1): boolean {
    return this.begin(now, origin, -1, hi, lo, 1, tag)
  }

  /** Requests waiting for a slot now. */
  get waiting (): number { return (this.waitQ.length - this.waitHead) / WAIT_FIELDS }

  /** findPeer(target) at `origin` now, or when a slot frees (then admitLookup decides whether it still runs). */
  startOrWait (now: number, origin: number, target: number, tag = -1, ctx = 0): void {
    if (this.freeTop > 0 && this.waiting === 0) { this.start(now, origin, target, tag); return }
    this.enqueue(now, origin, target, this.ids.hi[target], this.ids.lo[target], 0, tag, ctx)
  }

  /** getClosestPeers(key) at `origin` now, or when a slot frees (then admitWalk decides whether it still runs). */
  startWalkOrWait (now: number, origin: number, hi: number, lo: number, tag = -1, ctx = 0): void {
    if (this.freeTop > 0 && this.waiting === 0) { this.startWalk(now, origin, hi, lo, tag); return }
    this.enqueue(now, origin, -1, hi, lo, 1, tag, ctx)
  }

  private enqueue (now: number, origin: number, target: number, hi: number, lo: number, walk: number, tag: number, ctx: number): void {
    this.waitQ.push(origin, target, hi, lo, walk, tag, ctx, now)
    this.stats.waited++
    const w = this.waiting
    if (w > this.stats.maxWaiting) this.stats.maxWaiting = w
  }

  /** Starts waiting requests while slots are free (called when one frees). */
  private drain (now: number): void {
    if (this.draining) return
    this.draining = true
    const w = this.waitQ
    while (this.freeTop > 0 && this.waitHead < w.length) {
      const h = this.waitHead
      this.waitHead += WAIT_FIELDS
      const origin = w[h]; const target = w[h + 1]; const walk = w[h + 4]; const tag = w[h + 5]; const ctx = w[h + 6]
      const ok = walk === 1 ? (this.admitWalk === null || this.admitWalk(tag, ctx)) : (this.admitLookup === null || this.admitLookup(tag, ctx, origin))
      if (!ok) { this.stats.waitDropped++; continue }
      this.stats.waitMs += now - w[h + 7]
      this.begin(now, origin, target, w[h + 2], w[h + 3], walk, tag)
    }
    if (this.waitHead === w.length) { w.length = 0; this.waitHead = 0 } else if (this.waitHead > 65536 && this.waitHead * 2 > w.length) { w.splice(0, this.waitHead); this.waitHead = 0 }
    this.draining = false
  }

  private begin (now: number, origin: number, target: number, hi: number, lo: number, walk: number, tag: number): boolean {
    if (this.freeTop === 0) return false
    const s = this.freeSlots[--this.freeTop]
    this.sTag[s] = tag
    const gen = this.genCounter++
    this.sGen[s] = gen; this.sOrigin[s] = origin; this.sTarget[s] = target; this.sStart[s] = now
    this.sKeyHi[s] = hi; this.sKeyLo[s] = lo; this.sWalk[s] = walk; this.sRpcs[s] = 0
    const nb = this.sNb[s] = this.ids.lowerBoundHiLo(hi, lo)
    this.sInflight[s] = 0; this.sCand[s] = 0
    if (walk === 0) this.stats.started++
    this.seen.fill(0, s * SEEN_STRIDE, s * SEEN_STRIDE + (1 << SEEN_BITS_MIN)); this.seenBits[s] = SEEN_BITS_MIN; this.seenCount[s] = 0
    const D = this.D
    const n = this.tables.closestToKey(origin, hi, lo, -1, this.shuffle, nb)
    if (n === 0) { this.finish(s, now, false, 0); return true }
    for (let i = n - 1; i > 0; i--) { const j = this.rng.int(i + 1); const t = this.shuffle[i]; this.shuffle[i] = this.shuffle[j]; this.shuffle[j] = t }
    const paths = n < D ? n : D
    this.sLivePaths[s] = paths
    for (let p = 0; p < paths; p++) {
      const pi = s * D + p
      this.qLen[pi] = 0; this.running[pi] = 0; this.closeLen[pi] = 0; this.pathLive[pi] = 1
    }
    for (let i = 0; i < n; i++) {
      const c = this.shuffle[i]
      this.markSeen(s, c)
      this.addCandidate(s, c, this.ids.distanceToKey(c, hi, lo), 1, i % paths)
    }
    for (let p = 0; p < paths && this.sGen[s] === gen; p++) this.pump(s, p, now)
    return true
  }

  /** Handles an event of kind EVENT_RPC_DONE / EVENT_RPC_FAIL popped from the queue. */
  handle (now: number, kind: number, s: number, ci: number, gen: number): void {
    if (this.sGen[s] !== gen) return // the lookup already finished
    const base = s * CAND_STRIDE
    const at = base + ci
    const dp = this.cI[4 * at + 3]
    const p = dp & 255
    const pi = s * this.D + p
    this.running[pi]--; this.sInflight[s]--
    const r = this.cI[4 * at + 2]
    const origin = this.sOrigin[s]
    if (kind === EVENT_RPC_FAIL) {
      if (this.sWalk[s] === 0) this.stats.timeouts++; else this.stats.walkTimeouts++
      if (this.p.evictOnTimeout) this.tables.forget(origin, r)
      this.pump(s, p, now)
      return
    }
    if (this.p.learn) {
      this.tables.learn(origin, r)
      if (this.isServer[origin] === 1) this.tables.learn(r, origin)
    }
    if (this.sWalk[s] === 1 && this.onWalkResponse !== null) this.onWalkResponse(this.sTag[s], r)
    const target = this.sTarget[s]
    const depth = dp >>> 8
    if (target >= 0 && (r === target || (this.peerStoreKnows !== null && this.peerStoreKnows(r, target)))) { this.finish(s, now, true, depth); return }
    const rd = this.cF[2 * at]
    this.addClose(pi, rd)
    const out = this.scratch
    const hi = this.sKeyHi[s]; const lo = this.sKeyLo[s]
    const n = this.tables.closestToKey(r, hi, lo, origin, out, this.sNb[s])
    if (this.p.learnNamed) {
      for (let i = 0; i < n; i++) {
        const c = out[i]
        if (c !== origin && this.net.online[c] === 1) { this.stats.pings++; this.tables.learn(origin, c) }
      }
    }
    if (target >= 0) for (let i = 0; i < n; i++) if (out[i] === target) { this.finish(s, now, true, depth); return }
    const od = this.outDist
    for (let i = 0; i < n; i++) {
      const c = out[i]
      if (c === origin) continue
      const dc = od !== null ? od[i] : this.ids.distanceToKey(c, hi, lo)
      if (dc >= rd) continue // not closer than the peer that named it
      if (!this.canAdd(pi, dc)) continue
      if (!this.markSeen(s, c)) continue
      this.addCandidate(s, c, dc, depth + 1, p)
    }
    this.pump(s, p, now)
  }

  private canAdd (pi: number, d: number): boolean {
    const K = this.p.k
    return this.closeLen[pi] < K || d < this.closeDist[pi * K + K - 1]
  }

  private addClose (pi: number, d: number): void {
    const K = this.p.k; const base = pi * K; const cd = this.closeDist
    let len = this.closeLen[pi]
    if (len === K) { if (d >= cd[base + K - 1]) return; len-- }
    let i = len
    while (i > 0 && cd[base + i - 1] > d) { cd[base + i] = cd[base + i - 1]; i-- }
    cd[base + i] = d
    this.closeLen[pi] = len + 1
  }

  /** Adds c to the seen set; false when it was already there. */
  private markSeen (s: number, c: number): boolean {
    const seen = this.seen; const base = s * SEEN_STRIDE; const bits = this.seenBits[s]; const mask = (1 << bits) - 1
    const v = c + 1
    let h = Math.imul(c, 0x9e3779b1) >>> (32 - bits)
    for (;;) {
      const e = seen[base + h]
      if (e === 0) break
      if (e === v) return false
      h = (h + 1) & mask
    }
    seen[base + h] = v
    if (++this.seenCount[s] * 2 > mask + 1 && bits < SEEN_BITS_MAX) this.growSeen(s, bits)
    return true
  }

  /** Doubles lookup s's seen set (rehashing its entries). */
  private growSeen (s: number, bits: number): void {
    const seen = this.seen; const base = s * SEEN_STRIDE; const cap = 1 << bits; const tmp = this.seenTmp
    let m = 0
    for (let i = 0; i < cap; i++) { const e = seen[base + i]; if (e !== 0) tmp[m++] = e }
    const nb = bits + 1; const mask = (1 << nb) - 1
    seen.fill(0, base, base + (1 << nb))
    for (let i = 0; i < m; i++) {
      const v = tmp[i]
      let h = Math.imul(v - 1, 0x9e3779b1) >>> (32 - nb)
      while (seen[base + h] !== 0) h = (h + 1) & mask
      seen[base + h] = v
    }
    this.seenBits[s] = nb
  }

  private addCandidate (s: number, c: number, d: number, depth: number, p: number): void {
    const ci = this.sCand[s]
    const pi = s * this.D + p
    if (ci >= CAND || this.qLen[pi] >= QCAP) { this.stats.overflow++; return }
    this.sCand[s] = ci + 1
    const at = s * CAND_STRIDE + ci
    this.cF[2 * at] = d; this.cI[4 * at + 2] = c; this.cI[4 * at + 3] = (depth > 255 ? 255 : depth) << 8 | p
    // The path queue is kept sorted by falling distance, the nearest last: pump() pops it in
    // O(1), and a new peer (closer than the one that named it) is usually placed near the end.
    const qb = pi * QCAP; const qi = this.qItem; const qd = this.qDist
    let j = qb + this.qLen[pi]++
    while (j > qb && qd[j - 1] < d) { qd[j] = qd[j - 1]; qi[j] = qi[j - 1]; j-- }
    qi[j] = ci; qd[j] = d
  }

  private pump (s: number, p: number, now: number): void {
    const pi = s * this.D + p
    const alpha = this.p.alpha
    const qb = pi * QCAP; const qi = this.qItem; const qd = this.qDist
    while (this.running[pi] < alpha && this.qLen[pi] > 0) {
      // Take the nearest queued peer (the last). Distances are distinct, so the order is the
      // one kad-dht's distance-ordered queue gives.
      const last = qb + this.qLen[pi] - 1
      const bd = qd[last]
      // Path converged: no queued peer can enter the k closest (all are farther than this one).
      if (!this.canAdd(pi, bd)) { this.qLen[pi] = 0; break }
      const ci = qi[last]
      this.qLen[pi]--
      this.send(s, ci, now)
      this.running[pi]++
    }
    if (this.running[pi] === 0 && this.qLen[pi] === 0 && this.pathLive[pi] === 1) {
      this.pathLive[pi] = 0
      if (--this.sLivePaths[s] === 0) this.finish(s, now, false, 0)
    }
  }

  private send (s: number, ci: number, now: number): void {
    const origin = this.sOrigin[s]; const c = this.cI[4 * (s * CAND_STRIDE + ci) + 2]
    if (this.sWalk[s] === 0) this.stats.rpcs++; else this.stats.walkRpcs++
    this.sRpcs[s]++
    this.sInflight[s]++
    const net = this.net
    if (net.delivers(origin, c) && net.delivers(c, origin)) {
      const rtt = net.roundTripMs(origin, c)
      this.q.push(now + rtt * this.p.rpcRtts, EVENT_RPC_DONE, s, ci, this.sGen[s])
    } else {
      if (this.sWalk[s] === 0) this.stats.unreachableRpcs++
      this.q.push(now + this.p.rpcTimeoutMs, EVENT_RPC_FAIL, s, ci, this.sGen[s])
    }
  }

  private finish (s: number, now: number, ok: boolean, hops: number): void {
    if (this.sWalk[s] === 1) {
      this.stats.walks++ // a walk has no success of its own
    } else if (ok) {
      const r = this.sRpcs[s]
      this.stats.rpcHist[r < 255 ? r : 255]++
      this.stats.succeeded++
      this.stats.hops[hops < 63 ? hops : 63]++
      if (this.latCount === this.latencies.length) {
        const grown = new Float32Array(this.latencies.length * 2); grown.set(this.latencies); this.latencies = grown
      }
      this.latencies[this.latCount++] = now - this.sStart[s]
    } else {
      const r = this.sRpcs[s]
      this.stats.rpcHist[r < 255 ? r : 255]++
      this.stats.failed++
    }
    this.sGen[s] = 0 // retire late replies (generations start at 1)
    this.freeSlots[this.freeTop++] = s
    if (this.sWalk[s] === 1) { if (this.onWalkDone !== null) this.onWalkDone(this.sTag[s], now) } else if (this.onFinish !== null) this.onFinish(this.sTag[s], ok, hops, now)
    if (this.waitHead < this.waitQ.length) this.drain(now)
  }

  /** The successful lookups' latencies, ms. */
  latencySamples (): Float32Array { return this.latencies.subarray(0, this.latCount) }
}
