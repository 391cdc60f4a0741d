// Calibration of the Kademlia model against a real kad-dht network: 32 libp2p nodes on
// 127.0.0.1 in this process (started one at a time, each dialling 3 earlier ones), then
// findPeer lookups with useCache: false. The model runs on snapshots of the very same
// routing tables for the same (origin, target) pairs, with the same k, alpha and
// disjointPaths. Hops are counted the same way on both sides: the depth (1 = a peer from
// the origin's own table) of the peer whose reply first named the target.
// Tolerance: mean hops within 0.5 of each other; success within 10 points, both >= 90%.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { sha256 } from '@noble/hashes/sha2.js'
import { SimRandom } from '../../simulator/engine/random.js'
import { runModelOnTables } from '../../simulator/kademlia/calibration.js'

const NODES = 32
const LOOKUPS = 40
// A small bucket size and a one-level trie keep each table at <= 8 of the 31 other peers,
// so lookups take several hops (with k = 20 every node knows nearly everyone: 1 hop).
const PARAMS = { k: 4, alpha: 3, disjointPaths: 3 }
const PREFIX_LENGTH = 1

type Node = Libp2p<{ dht: KadDHT, identify: unknown, ping: unknown }>

async function startNode (): Promise<Node> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionMonitor: { enabled: false },
    connectionManager: { allow: ['/ip4/127.0.0.1'] },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({ protocol: '/dbc-sim-calibration/kad/1.0.0', clientMode: false, peerInfoMapper: passthroughMapper, kBucketSize: PARAMS.k, prefixLength: PREFIX_LENGTH, alpha: PARAMS.alpha, disjointPaths: PARAMS.disjointPaths, allowQueryWithZeroPeers: true })
    }
  }) as unknown as Node
}

interface RoutingTableView { size: number, kb: { toIterable: () => Iterable<{ peerId: { toString: () => string } }> } }
const tableOf = (n: Node): RoutingTableView => (n.services.dht as unknown as { routingTable: RoutingTableView }).routingTable

test('kad-dht findPeer on 32 real nodes vs the model on the same tables', async () => {
  const rng = new SimRandom(42)
  const nodes: Node[] = []
  try {
    for (let i = 0; i < NODES; i++) {
      const n = await startNode()
      const peers = nodes.slice()
      for (let d = 0; d < Math.min(3, peers.length); d++) {
        const j = rng.int(peers.length); const p = peers.splice(j, 1)[0]
        await n.dial(p.getMultiaddrs()[0])
      }
      nodes.push(n)
    }
    // Let identify/kad settle the tables.
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && nodes.some(n => tableOf(n).size === 0)) await new Promise(resolve => setTimeout(resolve, 100))
    await new Promise(resolve => setTimeout(resolve, 1000))
    const index = new Map(nodes.map((n, i) => [n.peerId.toString(), i]))
    const kadIds = nodes.map(n => sha256(n.peerId.toMultihash().bytes))
    const contacts = nodes.map(n => [...tableOf(n).kb.toIterable()].map(c => index.get(c.peerId.toString())).filter((x): x is number => x !== undefined))
    const peerStores = await Promise.all(nodes.map(async n => (await n.peerStore.all()).filter(p => p.addresses.length > 0).map(p => index.get(p.id.toString())).filter((x): x is number => x !== undefined)))
    const meanTable = contacts.reduce((a, c) => a + c.length, 0) / NODES
    const pairs: Array<[number, number]> = []
    while (pairs.length < LOOKUPS) { const o = rng.int(NODES); const t = rng.int(NODES); if (o !== t && !contacts[o].includes(t)) pairs.push([o, t]) }

    // Real lookups, one at a time; count hops from the query events.
    let ok = 0; let hopSum = 0; let rpcs = 0
    for (const [o, t] of pairs) {
      const depth = new Map<string, number>()
      let hops = -1
      const signal = AbortSignal.timeout(20_000)
      try {
        for await (const ev of nodes[o].services.dht.findPeer(nodes[t].peerId, { useCache: false, signal })) {
          if (ev.name === 'SEND_QUERY') { rpcs++; if (!depth.has(ev.to.toString())) depth.set(ev.to.toString(), 1) }
          if (ev.name === 'PEER_RESPONSE') {
            const d = depth.get(ev.from.toString()) ?? 1
            for (const c of ev.closer) if (!depth.has(c.id.toString())) depth.set(c.id.toString(), d + 1)
          }
          if (ev.name === 'FINAL_PEER') { hops = depth.get(ev.from.toString()) ?? 1; break }
        }
      } catch {}
      if (hops > 0) { ok++; hopSum += hops }
    }
    const real = { successRate: ok / LOOKUPS, meanHops: hopSum / Math.max(1, ok), rpcsPerLookup: rpcs / LOOKUPS }
    const model = runModelOnTables(kadIds, contacts, pairs, PARAMS, peerStores)
    const tablesOnly = runModelOnTables(kadIds, contacts, pairs, PARAMS)
    console.log(`calibration: mean table ${meanTable.toFixed(1)} contacts, mean peer store ${(peerStores.reduce((a, p) => a + p.length, 0) / NODES).toFixed(1)} peers; real ${JSON.stringify(real)}; model ${JSON.stringify({ successRate: model.successRate, meanHops: model.meanHops, rpcsPerLookup: model.rpcsPerLookup })}; model without peer stores ${JSON.stringify({ successRate: tablesOnly.successRate, meanHops: tablesOnly.meanHops })}`)
    assert.ok(real.successRate >= 0.9, `real success ${real.successRate}`)
    assert.ok(model.successRate >= 0.9, `model success ${model.successRate}`)
    assert.ok(Math.abs(real.successRate - model.successRate) <= 0.1, 'success within 10 points')
    assert.ok(Math.abs(real.meanHops - model.meanHops) <= 0.5, `mean hops real ${real.meanHops} vs model ${model.meanHops}`)
  } finally {
    await Promise.all(nodes.map(n => n.stop()))
  }
})

test.run()
