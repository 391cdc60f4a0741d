// Runs the Kademlia model on explicit routing tables (snapshots of real kad-dht nodes), so
// the calibration test can compare the model's hop counts and success with what the real
// libp2p network did for the same (origin, target) pairs.
import { EventQueue } from '../engine/event-queue.js'
import { SimRandom } from '../engine/random.js'
import { VirtualNetwork } from '../network/network.js'
import { placeNodes } from '../network/population.js'
import { KadIds } from './ids.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, KadLookups, type LookupParams } from './lookup.js'
import { RoutingTables } from './table.js'

export interface ModelRun { successRate: number, meanHops: number, rpcsPerLookup: number, hops: Int32Array }

/**
 * kadIds: each real node's 32-byte kad id; contacts: each node's routing table as input
 * indices; pairs: (origin, target) as input indices. Repeats the pairs `repeats` times with
 * different seeds (the order of replies, hence the walk, depends on timing). peerStores[i]:
 * the peers whose addresses node i's peer store holds (input indices), or undefined.
 */
export function runModelOnTables (kadIds: Uint8Array[], contacts: number[][], pairs: Array<[number, number]>, params: Partial<LookupParams>, peerStores?: number[][], repeats = 20, seed = 1): ModelRun {
  const { ids, nodeOf } = KadIds.fromBytes(kadIds)
  const mapped: number[][] = Array.from({ length: kadIds.length }, () => [])
  contacts.forEach((list, i) => { mapped[nodeOf[i]] = list.map(c => nodeOf[c]) })
  const tables = RoutingTables.fromContacts(ids, mapped, params.k ?? 20)
  const rng = new SimRandom(seed)
  // Loopback: no geography, a few ms of access delay and jitter per message.
  const pop = placeNodes(kadIds.length, rng.fork(), { natShare: 0, jitterKm: 0, accessMedianMs: 0.5 })
  const net = new VirtualNetwork(pop, rng.fork(), { pathInflation: 0, jitterMeanMs: 0.5 })
  const q = new EventQueue(1024)
  const lookups = new KadLookups(q, net, ids, tables, rng.fork(), { rpcRtts: 1, ...params }, pairs.length * repeats)
  if (peerStores !== undefined) {
    const known = new Set<number>()
    peerStores.forEach((list, i) => { for (const p of list) known.add(nodeOf[i] * kadIds.length + nodeOf[p]) })
    lookups.peerStoreKnows = (r, t) => known.has(r * kadIds.length + t)
  }
  for (let r = 0; r < repeats; r++) {
    for (const [o, t] of pairs) {
      lookups.start(q.peekTime() === Infinity ? 0 : q.curTime, nodeOf[o], nodeOf[t])
      while (q.pop()) {
        if (q.curKind === EVENT_RPC_DONE || q.curKind === EVENT_RPC_FAIL) lookups.handle(q.curTime, q.curKind, q.curA, q.curB, q.curC)
      }
    }
  }
  const st = lookups.stats
  const done = st.succeeded + st.failed
  let hopSum = 0
  for (let h = 0; h < st.hops.length; h++) hopSum += h * st.hops[h]
  return { successRate: st.succeeded / done, meanHops: hopSum / Math.max(1, st.succeeded), rpcsPerLookup: st.rpcs / done, hops: st.hops }
}
