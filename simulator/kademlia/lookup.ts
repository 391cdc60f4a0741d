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
// All lookup state lives in fixed slots of typed arrays; an event carries (slot, candidate,
// generation) and a generation bump retires a finished lookup's late replies.
import type { EventQueue } from '../engine/event-queue.js'
import type { SimRandom } from '../engine/random.js'
import type { VirtualNetwork } from '../network/network.js'
import type { KadIds } from './ids.js'
import type { RoutingTables } from './table.js'

export const EVENT_RPC_DONE = 1
export const EVENT_RPC_FAIL = 2

export interface LookupParams {
  /** Bucket size and result size (kad-dht kBucketSize). */
  k: number
  /** Concurrent RPCs per path. */
  alpha: number
  /** Disjoint paths per query (kad-dht 16: `disjointPaths ?? alpha`, kad-dht.js). */
  disjointPaths: number
  /** Round trips one RPC costs: dial (TCP + noise + muxer) plus request/response. */
  rpcRtts: number
  /** How long an RPC to a dead or unreachable peer takes to fail, ms. */
  rpcTimeoutMs: number
  /** Lookups in flight at once (slots). */
  maxConcurrent: number
  /** Evict a peer that failed to answer from the origin's table and refill the slot. */
  repairTables: boolean
}

export const DEFAULT_LOOKUP: LookupParams = { k: 20, alpha: 3, disjointPaths: 3, rpcRtts: 3, rpcTimeoutMs: 5000, maxConcurrent: 512, repairTables: false }

const CAND = 2048 // candidates per lookup
const SEEN = 4096 // seen-set hash slots per lookup (power of two, > CAND)
const QCAP = 128 // queued peers per path

export interface LookupStats {
  started: number
  succeeded: number
  failed: number
  rpcs: number
  timeouts: number
  /** RPCs sent to a peer that was offline or cut off (counted at send time). */
  unreachableRpcs: number
  /** Candidates dropped because a lookup's candidate table was full. */
  overflow: number
  hops: Int32Array
}

export class KadLookups {
  readonly p: LookupParams
  readonly stats: LookupStats
  /** Latency of each successful lookup, ms (in completion order). */
  latencies: Float32Array
  private latCount = 0

  private readonly D: number
  private readonly sOrigin: Int32Array
  private readonly sTarget: Int32Array
  private readonly sGen: Int32Array
  private readonly sStart: Float64Array
  private readonly sInflight: Int32Array
  private readonly sCand: Int32Array
  private readonly sLivePaths: Int32Array
  private readonly freeSlots: Int32Array
  private freeTop: number
  private readonly cNode: Int32Array
  private readonly cDist: Float64Array
  private readonly cDepth: Uint8Array
  private readonly cPath: Uint8Array
  private readonly seenKey: Int32Array
  private readonly seenGen: Int32Array
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
  /** Called once per finished lookup with the tag given to start() (drivers that wait on lookups). */
  onFinish: ((tag: number, ok: boolean, hops: number, now: number) => void) | null = null
  private readonly sTag: Int32Array

  constructor (private readonly q: EventQueue, private readonly net: VirtualNetwork, private readonly ids: KadIds,
    private readonly tables: RoutingTables, private readonly rng: SimRandom, params: Partial<LookupParams> = {}, expectedLookups = 1024) {
    this.p = { ...DEFAULT_LOOKUP, ...params }
    const S = this.p.maxConcurrent; const D = this.D = Math.max(1, Math.min(this.p.disjointPaths, this.p.k)); const K = this.p.k
    this.stats = { started: 0, succeeded: 0, failed: 0, rpcs: 0, timeouts: 0, unreachableRpcs: 0, overflow: 0, hops: new Int32Array(64) }
    this.latencies = new Float32Array(Math.max(16, expectedLookups))
    this.sOrigin = new Int32Array(S); this.sTarget = new Int32Array(S); this.sGen = new Int32Array(S)
    this.sTag = new Int32Array(S); this.sStart = new Float64Array(S); this.sInflight = new Int32Array(S); this.sCand = new Int32Array(S); this.sLivePaths = new Int32Array(S)
    this.freeSlots = new Int32Array(S)
    for (let i = 0; i < S; i++) this.freeSlots[i] = S - 1 - i
    this.freeTop = S
    this.cNode = new Int32Array(S * CAND); this.cDist = new Float64Array(S * CAND)
    this.cDepth = new Uint8Array(S * CAND); this.cPath = new Uint8Array(S * CAND)
    this.seenKey = new Int32Array(S * SEEN); this.seenGen = new Int32Array(S * SEEN)
    this.qLen = new Int32Array(S * D); this.qItem = new Int32Array(S * D * QCAP); this.qDist = new Float64Array(S * D * QCAP)
    this.running = new Int32Array(S * D); this.pathLive = new Uint8Array(S * D)
    this.closeLen = new Int32Array(S * D); this.closeDist = new Float64Array(S * D * K)
    this.scratch = new Int32Array(K + 1)
    this.shuffle = new Int32Array(K + 1)
  }

  /** Lookups in flight now. */
  get inFlight (): number { return this.p.maxConcurrent - this.freeTop }

  /** Starts findPeer(target) at `origin`; false when all slots are busy (retry later). */
  start (now: number, origin: number, target: number, tag = -1): boolean {
    if (this.freeTop === 0) return false
    const s = this.freeSlots[--this.freeTop]
    this.sTag[s] = tag
    const gen = this.genCounter++
    this.sGen[s] = gen; this.sOrigin[s] = origin; this.sTarget[s] = target; this.sStart[s] = now
    this.sInflight[s] = 0; this.sCand[s] = 0
    this.stats.started++
    const D = this.D
    const n = this.tables.closestPeers(origin, target, -1, this.shuffle)
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
      this.markSeen(s, gen, c)
      this.addCandidate(s, c, this.ids.distance(c, target), 1, i % paths)
    }
    for (let p = 0; p < paths && this.sGen[s] === gen; p++) this.pump(s, p, now)
    return true
  }

  /** Handles an event of kind EVENT_RPC_DONE / EVENT_RPC_FAIL popped from the queue. */
  handle (now: number, kind: number, s: number, ci: number, gen: number): void {
    if (this.sGen[s] !== gen) return // the lookup already finished
    const base = s * CAND
    const p = this.cPath[base + ci]
    const pi = s * this.D + p
    this.running[pi]--; this.sInflight[s]--
    const r = this.cNode[base + ci]
    if (kind === EVENT_RPC_FAIL) {
      this.stats.timeouts++
      if (this.p.repairTables) this.tables.replaceContact(this.sOrigin[s], r, this.net.online, this.rng)
      this.pump(s, p, now)
      return
    }
    const target = this.sTarget[s]
    const depth = this.cDepth[base + ci]
    if (r === target || (this.peerStoreKnows !== null && this.peerStoreKnows(r, target))) { this.finish(s, now, true, depth); return }
    const rd = this.cDist[base + ci]
    this.addClose(pi, rd)
    const out = this.scratch
    const n = this.tables.closestPeers(r, target, this.sOrigin[s], out)
    for (let i = 0; i < n; i++) if (out[i] === target) { this.finish(s, now, true, depth); return }
    for (let i = 0; i < n; i++) {
      const c = out[i]
      const dc = this.ids.distance(c, target)
      if (dc >= rd) continue // not closer than the peer that named it
      if (!this.canAdd(pi, dc)) continue
      if (!this.markSeen(s, gen, c)) continue
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
  private markSeen (s: number, gen: number, c: number): boolean {
    const base = s * SEEN
    let h = Math.imul(c, 0x9e3779b1) >>> 20 // 12 bits
    for (;;) {
      const at = base + h
      if (this.seenGen[at] !== gen) { this.seenGen[at] = gen; this.seenKey[at] = c; return true }
      if (this.seenKey[at] === c) return false
      h = (h + 1) & (SEEN - 1)
    }
  }

  private addCandidate (s: number, c: number, d: number, depth: number, p: number): void {
    const ci = this.sCand[s]
    const pi = s * this.D + p
    if (ci >= CAND || this.qLen[pi] >= QCAP) { this.stats.overflow++; return }
    this.sCand[s] = ci + 1
    const at = s * CAND + ci
    this.cNode[at] = c; this.cDist[at] = d; this.cDepth[at] = depth > 255 ? 255 : depth; this.cPath[at] = p
    // Append to the path queue (unordered); pump() takes the nearest. Appending is O(1) and
    // most queued peers are never dispatched, so this beats keeping the queue sorted.
    const at2 = pi * QCAP + this.qLen[pi]++
    this.qItem[at2] = ci; this.qDist[at2] = d
  }

  private pump (s: number, p: number, now: number): void {
    const pi = s * this.D + p
    const alpha = this.p.alpha
    const qb = pi * QCAP; const qi = this.qItem; const qd = this.qDist
    while (this.running[pi] < alpha && this.qLen[pi] > 0) {
      // Take the nearest queued peer (swap-remove).
      const len = this.qLen[pi]
      let best = qb; let bd = qd[qb]
      for (let x = qb + 1; x < qb + len; x++) if (qd[x] < bd) { bd = qd[x]; best = x }
      const ci = qi[best]
      const last = qb + len - 1
      qi[best] = qi[last]; qd[best] = qd[last]
      this.qLen[pi] = len - 1
      if (!this.canAdd(pi, bd)) continue // path converged for this peer
      this.send(s, ci, now)
      this.running[pi]++
    }
    if (this.running[pi] === 0 && this.qLen[pi] === 0 && this.pathLive[pi] === 1) {
      this.pathLive[pi] = 0
      if (--this.sLivePaths[s] === 0) this.finish(s, now, false, 0)
    }
  }

  private send (s: number, ci: number, now: number): void {
    const origin = this.sOrigin[s]; const c = this.cNode[s * CAND + ci]
    this.stats.rpcs++
    this.sInflight[s]++
    const net = this.net
    if (net.delivers(origin, c) && net.delivers(c, origin)) {
      const rtt = net.oneWayMs(origin, c) + net.oneWayMs(c, origin)
      this.q.push(now + rtt * this.p.rpcRtts, EVENT_RPC_DONE, s, ci, this.sGen[s])
    } else {
      this.stats.unreachableRpcs++
      this.q.push(now + this.p.rpcTimeoutMs, EVENT_RPC_FAIL, s, ci, this.sGen[s])
    }
  }

  private finish (s: number, now: number, ok: boolean, hops: number): void {
    if (ok) {
      this.stats.succeeded++
      this.stats.hops[hops < 63 ? hops : 63]++
      if (this.latCount === this.latencies.length) {
        const grown = new Float32Array(this.latencies.length * 2); grown.set(this.latencies); this.latencies = grown
      }
      this.latencies[this.latCount++] = now - this.sStart[s]
    } else {
      this.stats.failed++
    }
    this.sGen[s] = 0 // retire late replies (generations start at 1)
    this.freeSlots[this.freeTop++] = s
    if (this.onFinish !== null) this.onFinish(this.sTag[s], ok, hops, now)
  }

  /** The successful lookups' latencies, ms. */
  latencySamples (): Float32Array { return this.latencies.subarray(0, this.latCount) }
}
