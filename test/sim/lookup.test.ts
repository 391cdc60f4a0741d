// The Kademlia lookup model at small sizes: every lookup finishes exactly once, success
// on a static network is ~100%, hop counts grow with the network, and the event queue
// pops in (time, insertion) order.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EventQueue } from '../../simulator/engine/event-queue.js'
import { SimRandom } from '../../simulator/engine/random.js'
import { runLookup } from '../../simulator/scenarios/lookup.js'
import { buildWorld } from '../../simulator/scenarios/world.js'

test('event queue pops in time order, ties in insertion order, and grows', () => {
  const q = new EventQueue(16)
  const rng = new SimRandom(1)
  const times: number[] = []
  for (let i = 0; i < 5000; i++) { const t = Math.floor(rng.next() * 100); times.push(t); q.push(t, 1, i, 0, 0) }
  let lastT = -1; let lastA = -1; let n = 0
  while (q.pop()) {
    assert.ok(q.curTime >= lastT)
    if (q.curTime === lastT) assert.ok(q.curA > lastA, 'ties keep insertion order')
    assert.is(times[q.curA], q.curTime)
    lastT = q.curTime; lastA = q.curA; n++
  }
  assert.is(n, 5000)
})

test('routing tables: contacts are servers, sorted by bucket, at most k per bucket', () => {
  const w = buildWorld(3000, 3)
  const { tables, ids, pop } = w
  for (let n = 0; n < 3000; n += 37) {
    const perBucket = new Int32Array(64)
    let last = -1
    for (let p = tables.start[n]; p < tables.start[n + 1]; p++) {
      const c = tables.contacts[p]
      assert.is(pop.nat[c], 0, 'a NAT node is never a contact')
      assert.is.not(c, n)
      const b = ids.cpl(n, c)
      assert.ok(b >= last, 'buckets in order')
      last = b
      perBucket[b]++
    }
    for (const v of perBucket) assert.ok(v <= 20)
  }
})

test('closestPeers returns the k XOR-closest contacts (checked by brute force)', () => {
  const w = buildWorld(2000, 4)
  const { tables, ids } = w
  const out = new Int32Array(32)
  const rng = new SimRandom(9)
  for (let i = 0; i < 200; i++) {
    const n = rng.int(2000); const t = tables.servers[rng.int(tables.servers.length)]
    if (n === t) continue
    const got = Array.from(out.subarray(0, tables.closestPeers(n, t, -1, out))).sort((a, b) => ids.distance(a, t) - ids.distance(b, t))
    const all = Array.from(tables.contacts.subarray(tables.start[n], tables.start[n + 1])).sort((a, b) => ids.distance(a, t) - ids.distance(b, t)).slice(0, 20)
    assert.equal(got, all)
  }
})

test('lookup scenario: all lookups finish once, >= 99% succeed, hops grow with size', () => {
  const small = runLookup({ nodes: 1000, seed: 1 })
  const big = runLookup({ nodes: 20000, seed: 1, count: 5000 })
  for (const r of [small, big]) {
    for (const inv of r.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
    assert.ok(Number(r.summary.successRate) >= 0.99, `success ${r.summary.successRate}`)
  }
  assert.ok(Number(big.summary.meanHops) > Number(small.summary.meanHops), `hops ${small.summary.meanHops} -> ${big.summary.meanHops}`)
  assert.ok(Number(big.summary.latencyP50Ms) > 0)
})

test.run()
