// The Kademlia lookup model at small sizes: kad-dht's trie rules in the joined tables,
// every lookup finishes exactly once, success on a static network is ~100% with tables
// built by joining, hop counts grow with the network, churn leaves dead contacts that cost
// timeouts, and the event queue pops in (time, insertion) order.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EventQueue } from '../../simulator/engine/event-queue.js'
import { SimRandom } from '../../simulator/engine/random.js'
import { KadIds } from '../../simulator/kademlia/ids.js'
import type { RoutingTables } from '../../simulator/kademlia/table.js'
import { EVENT_RPC_DONE, EVENT_RPC_FAIL, KadLookups } from '../../simulator/kademlia/lookup.js'
import { TrieTables } from '../../simulator/kademlia/trie-tables.js'
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

test('omniscient reference tables: contacts are servers, sorted by bucket, at most k per bucket', () => {
  const w = buildWorld(3000, 3, { tables: 'omniscient' })
  const { ids, pop } = w
  const tables = w.tables as RoutingTables
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

test('omniscient closestPeers returns the k XOR-closest contacts (checked by brute force)', () => {
  const w = buildWorld(2000, 4, { tables: 'omniscient' })
  const { ids } = w
  const tables = w.tables as RoutingTables
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

test('trie tables follow kad-dht 16: leaves split to prefixLength, a full leaf takes a newcomer only in place of a dead contact', () => {
  const ids = new KadIds(4000, new SimRandom(5))
  const online = new Uint8Array(4000).fill(1)
  const servers = new Int32Array(4000).map((_, i) => i)
  const k = 3; const prefixLength = 2
  const t = new TrieTables(ids, servers, k, prefixLength, online, new SimRandom(6))
  const rng = new SimRandom(7)
  for (let i = 0; i < 2000; i++) t.learn(0, 1 + rng.int(3999))
  const mine = Array.from(t.contactsOf(0))
  assert.equal(mine, [...new Set(mine)].sort((a, b) => a - b), 'one sorted run, no duplicates')
  assert.is(mine.length, k * 2 ** prefixLength, 'full: k per leaf, 2^prefixLength leaves')
  const leaf = (c: number): number => Math.floor(ids.hi[c] / 2 ** (32 - prefixLength))
  for (let l = 0; l < 4; l++) assert.is(mine.filter(c => leaf(c) === l).length, k)
  // A newcomer to a full leaf is refused while its contacts answer pings...
  const newcomer = (() => { for (let c = 1; c < 4000; c++) if (!mine.includes(c) && leaf(c) === leaf(mine[0])) return c; return -1 })()
  assert.not.ok(t.learn(0, newcomer))
  // ...and replaces one that does not.
  for (const c of mine) if (leaf(c) === leaf(newcomer)) online[c] = 0
  assert.ok(t.learn(0, newcomer))
  assert.ok(t.stats.evicted >= 1)
  // Deep prefixLength: the table keeps every server it learns until k share a 32-bit prefix.
  const deep = new TrieTables(ids, servers, 20, 32, online.fill(1), new SimRandom(8))
  for (let c = 1; c < 500; c++) deep.learn(0, c)
  assert.is(deep.size(0), 499)
})

test('trie closestToKey returns the k XOR-closest contacts (checked by brute force)', () => {
  const ids = new KadIds(5000, new SimRandom(11))
  const t = new TrieTables(ids, new Int32Array(5000).map((_, i) => i), 20, 32, new Uint8Array(5000).fill(1), new SimRandom(12))
  const rng = new SimRandom(13)
  for (let n = 0; n < 50; n++) for (let j = 0; j < 300; j++) t.learn(n, rng.int(5000))
  const out = new Int32Array(32)
  for (let i = 0; i < 300; i++) {
    const n = rng.int(50); const target = rng.int(5000); const exclude = rng.int(5000)
    const got = Array.from(out.subarray(0, t.closestToKey(n, ids.hi[target], ids.lo[target], exclude, out))).sort((a, b) => ids.distance(a, target) - ids.distance(b, target))
    const all = Array.from(t.contactsOf(n)).filter(c => c !== exclude).sort((a, b) => ids.distance(a, target) - ids.distance(b, target)).slice(0, 20)
    assert.equal(got, all)
  }
})

test('lookup scenario on joined tables: all lookups finish once, >= 99% succeed, hops grow with size; the omniscient reference runs too', () => {
  const small = runLookup({ nodes: 1000, seed: 1 })
  const big = runLookup({ nodes: 8000, seed: 1, count: 3000 })
  for (const r of [small, big]) {
    for (const inv of r.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
    assert.ok(Number(r.summary.successRate) >= 0.99, `success ${r.summary.successRate}`)
  }
  assert.ok(Number(big.summary.meanHops) > Number(small.summary.meanHops), `hops ${small.summary.meanHops} -> ${big.summary.meanHops}`)
  assert.ok(Number(big.summary.latencyP50Ms) > 0)
  assert.ok(Number(big.summary['join.meanContacts']) > 20, 'tables were filled by the joins')
  const ref = runLookup({ nodes: 5000, seed: 1, count: 2000, extra: { tables: 1 } })
  assert.ok(Number(ref.summary.successRate) >= 0.99)
  assert.ok(String(ref.params.table).includes('omniscient'))
})

test('a request that finds every lookup slot busy waits for one: each runs once, in order, with no retry events; admit hooks drop stale ones', () => {
  const w = buildWorld(500, 3)
  const trie = w.trie as TrieTables
  const q = new EventQueue(256)
  const lk = new KadLookups(q, w.net, w.ids, trie, new SimRandom(1), { maxConcurrent: 2, learn: false })
  const started: number[] = []; const finished: number[] = []
  lk.onFinish = (tag) => { finished.push(tag) }
  const servers = trie.servers
  for (let i = 0; i < 10; i++) lk.startOrWait(0, servers[i], servers[i + 20], i)
  assert.is(lk.inFlight, 2)
  assert.is(lk.waiting, 8)
  lk.admitLookup = (tag) => { started.push(tag); return tag !== 5 }
  let other = 0
  while (q.pop()) {
    if (q.curKind !== EVENT_RPC_DONE && q.curKind !== EVENT_RPC_FAIL) other++
    lk.handle(q.curTime, q.curKind, q.curA, q.curB, q.curC)
  }
  assert.is(other, 0, 'only RPC events: nothing polls for slots')
  assert.equal(started, [2, 3, 4, 5, 6, 7, 8, 9], 'waiting requests start in arrival order')
  assert.equal([...finished].sort((a, b) => a - b), [0, 1, 2, 3, 4, 6, 7, 8, 9])
  assert.is(lk.stats.waited, 8)
  assert.is(lk.stats.waitDropped, 1)
  assert.ok(lk.stats.waitMs > 0)
  assert.is(lk.inFlight, 0)
  assert.is(lk.waiting, 0)
})

test('lookups during churn: departed nodes stay in tables and cost timeouts, nodes rejoin and new ids join, most lookups succeed', () => {
  const r = runLookup({ nodes: 3000, seed: 2, count: 1500, extra: { session: 10, minutes: 10 } })
  for (const inv of r.invariants) assert.ok(inv.ok, `${inv.name}: ${inv.detail}`)
  assert.ok(Number(r.summary.departures) > 100 && Number(r.summary.returns) > 0 && Number(r.summary.newcomers) > 0)
  assert.ok(Number(r.summary.deadRpcsPerLookup) > 0, 'lookups send RPCs to departed nodes still in tables')
  assert.ok(Number(r.summary.successRate) >= 0.9, `success ${r.summary.successRate}`)
})

test.run()
