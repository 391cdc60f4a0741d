// The model side of the calibration against real kad-dht (test/sim/calibration.test.ts):
// the same nodes (their real kad ids) join in the same order from the same bootstrap
// peers, with kad-dht's join sequence (kademlia/join.ts: self-query, then the refresh),
// one join finishing before the next starts, as the real network was built; then the same
// (origin, target) findPeer lookups run one at a time. Repeated with several seeds (reply
// order, hence the walk, depends on timing).
import { EventQueue } from '../engine/event-queue.js'
import { SimRandom } from '../engine/random.js'
import { VirtualNetwork } from '../network/network.js'
import { placeNodes } from '../network/population.js'
import { KadIds } from './ids.js'
import { EVENT_REFRESH, EVENT_WALK_RETRY, KadMaintenance } from './join.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, KadLookups, type LookupParams } from './lookup.js'
import { TrieTables } from './trie-tables.js'

export interface ModelRun {
  successRate: number
  meanHops: number
  rpcsPerLookup: number
  /** Share of successful lookups per hop count (index = hops). */
  hopShare: number[]
  /** RPCs of each lookup, all repeats. */
  rpcSamples: number[]
  meanTable: number
}

export interface JoinReplay {
  /** 32-byte kad id of each real node (sha256 of its peer id). */
  kadIds: Uint8Array[]
  /** Node indices in join order, and the bootstrap peers each dialled. */
  order: number[]
  bootstrap: number[][]
  /** (origin, target) node indices. */
  pairs: Array<[number, number]>
}

export function runJoinedModel (replay: JoinReplay, params: Partial<LookupParams> & { k: number, prefixLength: number }, repeats = 10, seed = 1): ModelRun {
  const { ids, nodeOf } = KadIds.fromBytes(replay.kadIds)
  const n = replay.kadIds.length
  let ok = 0; let done = 0; let hopSum = 0; let rpcSum = 0; let tableSum = 0
  const hopCount: number[] = []
  const rpcSamples: number[] = []
  for (let r = 0; r < repeats; r++) {
    const rng = new SimRandom(seed + r)
    // Loopback: no geography, sub-millisecond access delay and jitter per message.
    const pop = placeNodes(n, rng.fork(), { natShare: 0, jitterKm: 0, accessMedianMs: 0.5 })
    const net = new VirtualNetwork(pop, rng.fork(), { pathInflation: 0, jitterMeanMs: 0.5 })
    const servers = new Int32Array(n).map((_, i) => i)
    const tables = new TrieTables(ids, servers, params.k, params.prefixLength, net.online, rng.fork(), n * 64)
    const q = new EventQueue(1024)
    const lookups = new KadLookups(q, net, ids, tables, rng.fork(), { rpcRtts: 1, ...params }, replay.pairs.length)
    const maint = new KadMaintenance(q, lookups, tables, ids, net.online, new Uint8Array(n).fill(1), rng.fork(), { until: 0 })
    net.online.fill(0)
    const drain = (): void => {
      while (q.pop()) {
        const kind = q.curKind
        if (kind === EVENT_RPC_DONE || kind === EVENT_RPC_FAIL) lookups.handle(q.curTime, kind, q.curA, q.curB, q.curC)
        else if (kind === EVENT_REFRESH || kind === EVENT_WALK_RETRY) maint.handle(q.curTime, kind, q.curA, q.curB)
      }
    }
    replay.order.forEach((node, i) => {
      maint.join(q.curTime, nodeOf[node], replay.bootstrap[i].map(b => nodeOf[b]))
      drain()
    })
    for (let i = 0; i < n; i++) tableSum += tables.size(i)
    lookups.onFinish = (_tag, success, hops) => {
      done++
      if (success) { ok++; hopSum += hops; hopCount[hops] = (hopCount[hops] ?? 0) + 1 }
    }
    for (const [o, t] of replay.pairs) {
      const before = lookups.stats.rpcs
      lookups.start(q.curTime, nodeOf[o], nodeOf[t])
      drain()
      rpcSamples.push(lookups.stats.rpcs - before)
      rpcSum += lookups.stats.rpcs - before
    }
  }
  const hopShare = Array.from({ length: hopCount.length }, (_, h) => (hopCount[h] ?? 0) / Math.max(1, ok))
  return { successRate: ok / Math.max(1, done), meanHops: hopSum / Math.max(1, ok), rpcsPerLookup: rpcSum / Math.max(1, done), hopShare, rpcSamples, meanTable: tableSum / (n * repeats) }
}
