import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import { CyclonView, Gossip, RandomWalks, SeenSet, type MembershipEvent } from '../../../../src/core/membership/index.js'

const PERIOD = 1000

/** N Cyclon nodes on a ring bootstrap, messages delivered instantly, time stepped by `tick`. */
function network (n: number, seed: number, viewSize = 8): { nodes: Array<CyclonView<number>>, alive: boolean[], run: (from: number, to: number) => void, events: Array<MembershipEvent<number>[]> } {
  const rng = createRng(seed)
  const nodes = Array.from({ length: n }, (_, i) => new CyclonView<number>({ self: i, rng: createRng(seed * 1000 + i), viewSize, shuffleLength: 4, periodMs: PERIOD, responseTimeoutMs: 300, start: rng.int(PERIOD) }))
  nodes.forEach((v, i) => v.addPeers([(i + 1) % n, (i + 2) % n]))
  const alive = nodes.map(() => true)
  const events: Array<MembershipEvent<number>[]> = nodes.map(() => [])
  const run = (from: number, to: number): void => {
    for (let t = from; t <= to; t += 50) {
      for (let i = 0; i < n; i++) if (alive[i]) nodes[i].tick(t)
      let moved = true
      while (moved) {
        moved = false
        for (let i = 0; i < n; i++) {
          if (!alive[i]) continue
          for (const { to: dst, msg } of nodes[i].pollOutbound()) {
            moved = true
            if (!alive[dst]) continue // lost: the sender times out
            if (msg.type === 'shuffle-request') nodes[dst].handleShuffleRequest(t, i, msg.entries)
            else nodes[dst].handleShuffleResponse(t, i, msg.entries)
          }
          events[i].push(...nodes[i].pollEvents())
        }
      }
    }
  }
  return { nodes, alive, run, events }
}

function connected (nodes: Array<CyclonView<number>>, alive: boolean[]): boolean {
  const start = alive.indexOf(true)
  const seen = new Set([start]); const queue = [start]
  // undirected reachability over view edges among live nodes
  const adj = nodes.map(() => [] as number[])
  nodes.forEach((v, i) => { if (alive[i]) for (const p of v.peers()) if (alive[p]) { adj[i].push(p); adj[p].push(i) } })
  while (queue.length > 0) { const x = queue.pop()!; for (const y of adj[x]) if (!seen.has(y)) { seen.add(y); queue.push(y) } }
  return seen.size === alive.filter(Boolean).length
}

test('cyclon: views fill, stay valid, connected and balanced', () => {
  const { nodes, alive, run } = network(300, 1)
  run(0, 30 * PERIOD)
  for (const [i, v] of nodes.entries()) {
    const peers = v.peers()
    assert.is(peers.length, 8, `node ${i} view ${peers.length}`)
    assert.not.ok(peers.includes(i))
    assert.is(new Set(peers).size, peers.length)
    assert.ok(v.nextTimeout() > 30 * PERIOD)
  }
  assert.ok(connected(nodes, alive))
  const indeg = new Array(300).fill(0)
  for (const v of nodes) for (const p of v.peers()) indeg[p]++
  assert.ok(Math.max(...indeg) <= 20, `max in-degree ${Math.max(...indeg)}`)
  assert.ok(Math.min(...indeg) >= 1, `min in-degree ${Math.min(...indeg)}`)
})

test('cyclon: dead peers leave live views (liveness) and the rest stays connected', () => {
  const { nodes, alive, run, events } = network(200, 2)
  run(0, 20 * PERIOD)
  for (let i = 0; i < 200; i += 4) alive[i] = false
  run(20 * PERIOD + 50, 45 * PERIOD)
  let stale = 0
  nodes.forEach((v, i) => { if (alive[i]) stale += v.peers().filter(p => !alive[p]).length })
  assert.ok(stale <= 5, `${stale} dead entries remain in live views`)
  assert.ok(events.some(e => e.some(x => x.type === 'peer-removed' && x.reason === 'timeout')))
  assert.ok(connected(nodes, alive))
})

test('cyclon: the same seed gives the same views; peerFailed forgets a peer', () => {
  const a = network(50, 9); const b = network(50, 9)
  a.run(0, 10 * PERIOD); b.run(0, 10 * PERIOD)
  assert.equal(a.nodes.map(v => v.peers()), b.nodes.map(v => v.peers()))
  const v = a.nodes[0]; const p = v.peers()[0]
  v.pollEvents()
  v.peerFailed(0, p)
  assert.not.ok(v.has(p))
  assert.equal(v.pollEvents(), [{ type: 'peer-removed', peer: p, reason: 'failed' }])
  assert.not.ok(v.handleShuffleResponse(0, 12345, [{ peer: 7, age: 0 }]), 'unsolicited response ignored')
})

test('seen set is bounded and forgets the oldest', () => {
  const s = new SeenSet<string>(3)
  assert.ok(s.add('a')); assert.not.ok(s.add('a'))
  s.add('b'); s.add('c'); s.add('d')
  assert.is(s.size, 3)
  assert.not.ok(s.has('a'))
  assert.ok(s.has('d'))
})

test('gossip reaches (nearly) every node once, bounded by TTL, duplicates suppressed', () => {
  const { nodes, run } = network(300, 3)
  run(0, 20 * PERIOD)
  const rng = createRng(33)
  const gossip = nodes.map((v, i) => new Gossip<number, string>({ self: i, rng, samplePeers: (k, ex) => v.sample(k, ex), fanout: 4, maxTtl: 6 }))
  const delivered = new Array(300).fill(0)
  let duplicates = 0
  const now = 50_000
  gossip[0].publish(now, 'ann-1', 'hello')
  delivered[0] = 1
  let moved = true
  while (moved) {
    moved = false
    for (let i = 0; i < 300; i++) {
      for (const { to, item } of gossip[i].pollOutbound()) {
        moved = true
        const r = gossip[to].handle(now, i, item)
        if (r === 'deliver') delivered[to]++
        else if (r === 'duplicate') duplicates++
        else assert.unreachable(r)
      }
    }
  }
  const reached = delivered.filter(x => x > 0).length
  // push gossip misses about e^-fanout of the nodes (~2% at fanout 4)
  assert.ok(reached >= 285, `reached ${reached}/300`)
  assert.ok(delivered.every(x => x <= 1))
  assert.ok(duplicates > 0)
  assert.ok(duplicates < 300 * 4 * 2)
  // TTL 0 items are not forwarded; invalid and stale ones are refused
  assert.is(gossip[5].handle(now, 1, { id: 'x', origin: 1, ttl: 0, createdAt: now, body: '' }), 'deliver')
  assert.equal(gossip[5].pollOutbound(), [])
  assert.is(gossip[5].handle(now, 1, { id: 'y', origin: 1, ttl: 99, createdAt: now, body: '' }), 'invalid')
  assert.is(gossip[5].handle(now, 1, { id: 'z', origin: 1, ttl: 1, createdAt: now - 10 * 60_000, body: '' }), 'expired')
})

test('random walks find a rare resource, and time out when there is none', () => {
  const { nodes, run } = network(300, 4)
  run(0, 20 * PERIOD)
  const rng = createRng(44)
  const holders = new Set([17, 90, 150, 201, 260, 33, 120, 280, 5, 222])
  const walks = nodes.map((v, i) => new RandomWalks<number, string, string>({ self: i, rng, samplePeers: (k, ex) => v.sample(k, ex), maxTtl: 30, timeoutMs: 1000 }))
  const pump = (now: number, has: (node: number, q: string) => string[]): void => {
    let moved = true
    while (moved) {
      moved = false
      for (let i = 0; i < 300; i++) {
        for (const o of walks[i].pollOutbound()) {
          moved = true
          if (o.type === 'walk') walks[o.to].handleWalk(now, i, o.walk, has(o.to, o.walk.query))
          else walks[o.to].handleResult(now, i, o.id, o.results)
        }
      }
    }
  }
  walks[0].start(1000, 'w1', 'gpu:H100', { walkers: 4, want: 1 })
  pump(1000, (node, q) => holders.has(node) && q === 'gpu:H100' ? [`rec-${node}`] : [])
  const done = walks[0].pollEvents()
  assert.is(done.length, 1)
  assert.is(done[0].reason, 'enough')
  assert.ok(holders.has(Number(done[0].results[0].slice(4))))
  walks[0].start(2000, 'w2', 'gpu:none', { walkers: 2, ttl: 5 })
  pump(2000, () => [])
  assert.equal(walks[0].pollEvents(), [])
  assert.is(walks[0].nextTimeout(), 3000)
  walks[0].tick(3000)
  assert.equal(walks[0].pollEvents(), [{ type: 'walk-done', id: 'w2', results: [], reason: 'timeout' }])
  assert.is(walks[1].handleWalk(0, 2, { id: 'bad', origin: 2, ttl: 99, query: '' }, []), 'invalid')
})

test.run()
