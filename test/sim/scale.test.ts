// The shortcuts that make large joined runs cheaper must not change what is simulated:
// the full-leaf test is skipped only when no leaf could be full, a round trip draws the
// same jitter as two one-way messages, a walk's growing seen set still queues each peer
// once, and a capped run (10M) stops with a partial report instead of running on.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimRandom } from '../../simulator/engine/random.js'
import { KadIds } from '../../simulator/kademlia/ids.js'
import { TrieTables } from '../../simulator/kademlia/trie-tables.js'
import { VirtualNetwork } from '../../simulator/network/network.js'
import { placeNodes } from '../../simulator/network/population.js'
import { buildWorld } from '../../simulator/scenarios/world.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

test('prefixLength 32: a leaf is still full when more than k ids share 32 bits (the scan is skipped only when none do)', () => {
  // 30 ids share their first 4 bytes; 100 others are random.
  const rng = new SimRandom(3)
  const input: Uint8Array[] = []
  for (let i = 0; i < 130; i++) { const b = rng.bytes32(); if (i < 30) b.set([0xab, 0xcd, 0xef, 0x01]); input.push(b) }
  const { ids, nodeOf } = KadIds.fromBytes(input)
  const online = new Uint8Array(130).fill(1)
  const t = new TrieTables(ids, new Int32Array(130).map((_, i) => i), 20, 32, online, new SimRandom(4))
  const group = Array.from({ length: 30 }, (_, i) => nodeOf[i])
  const owner = nodeOf[100]
  let accepted = 0
  for (const c of group) if (t.learn(owner, c)) accepted++
  assert.is(accepted, 20, 'a 32-bit leaf holds k = 20; the other 10 are refused while the 20 answer pings')
  assert.is(t.stats.rejectedFull, 10)
  // Random ids beside them still go in (their 32-bit leaves hold one id each).
  for (let i = 101; i < 130; i++) assert.ok(t.learn(owner, nodeOf[i]))
})

test('a round trip is oneWayMs(a, b) + oneWayMs(b, a) with the same draws', () => {
  const pop = placeNodes(500, new SimRandom(9))
  const a = new VirtualNetwork(pop, new SimRandom(10), { jitterMeanMs: 2 })
  const b = new VirtualNetwork(pop, new SimRandom(10), { jitterMeanMs: 2 })
  const pick = new SimRandom(11)
  for (let i = 0; i < 2000; i++) {
    const x = pick.int(500); let y = pick.int(500); if (y === x) y = (x + 1) % 500
    assert.is(a.roundTripMs(x, y), b.oneWayMs(x, y) + b.oneWayMs(y, x))
  }
})

test('joins: every walk asks each peer at most once (the seen set grows past its first 256 slots)', () => {
  const perWalk = new Map<number, Set<number>>()
  let repeats = 0; let biggest = 0
  const world = buildWorld(3000, 21, { population: { natShare: 0.3 } })
  // Re-run a few self-queries on the built world and watch who answers.
  const lookups = world.lookups
  assert.ok(lookups !== null)
  lookups.onWalkResponse = (tag, r) => {
    const s = perWalk.get(tag) ?? new Set<number>()
    if (s.has(r)) repeats++
    s.add(r); perWalk.set(tag, s); biggest = Math.max(biggest, s.size)
  }
  lookups.onWalkDone = null
  const q = world.q
  for (let n = 0; n < 200; n++) lookups.startWalk(q.curTime, n, world.ids.hi[n] ^ 0x80000000, world.ids.lo[n], 1000 + n)
  while (q.pop()) lookups.handle(q.curTime, q.curKind, q.curA, q.curB, q.curC)
  assert.is(repeats, 0)
  assert.is(perWalk.size, 200)
  assert.ok(biggest >= 20, `walks asked ${biggest} peers at most`)
})

test('the build gate bounds walks in flight, and tables built through it route as well as the old wide build', () => {
  const figures = (buildSlots: number): { maxIn: number, contacts: number, success: number, hops: number } => {
    const w = buildWorld(3000, 5, { population: { natShare: 0.3 }, buildSlots })
    const lk = w.lookups; const join = w.join
    assert.ok(lk !== null && join !== null)
    let ok = 0; let hops = 0; let done = 0
    lk.onFinish = (_tag, success, h) => { done++; if (success) { ok++; hops += h } }
    const rng = new SimRandom(6); const servers = w.tables.servers
    for (let i = 0; i < 300; i++) {
      const origin = rng.int(3000); let target = servers[rng.int(servers.length)]
      while (target === origin) target = servers[rng.int(servers.length)]
      lk.startOrWait(w.q.curTime, origin, target)
    }
    while (w.q.pop()) lk.handle(w.q.curTime, w.q.curKind, w.q.curA, w.q.curB, w.q.curC)
    assert.is(done, 300)
    return { maxIn: join.maxWalksInFlight, contacts: join.meanContacts, success: ok / 300, hops: hops / Math.max(1, ok) }
  }
  const narrow = figures(8); const wide = figures(489)
  assert.ok(narrow.maxIn <= 8 && narrow.maxIn >= 2, `narrow build: ${narrow.maxIn} walks in flight at most`)
  assert.ok(wide.maxIn > 50, `the old build overlapped ${wide.maxIn} walks (the gate must be what bounds the narrow one)`)
  assert.ok(narrow.success >= 0.99 && wide.success >= 0.99, JSON.stringify({ narrow, wide }))
  assert.ok(Math.abs(narrow.contacts / wide.contacts - 1) < 0.1, JSON.stringify({ narrow, wide }))
  assert.ok(Math.abs(narrow.hops - wide.hops) < 0.3, JSON.stringify({ narrow, wide }))
})

test('a capped run stops during the joins and prints how far it got', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'simulator/bench-entry.ts', '--mode', 'joined', '--nodes', '3000', '--seed', '1', '--max-wall-s', '0'],
    { cwd: root, encoding: 'utf8', timeout: 300_000 })
  assert.is(r.status, 0, r.stderr)
  const j = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { partial?: boolean, stoppedBy?: string, joined?: number, nodes?: number, fixedBytesPerNode?: number }
  assert.is(j.partial, true)
  assert.is(j.stoppedBy, 'wall')
  assert.is(j.nodes, 3000)
  assert.ok((j.joined ?? -1) >= 0 && (j.joined ?? 3000) < 3000)
  assert.ok((j.fixedBytesPerNode ?? 0) > 0)
})

test.run()
