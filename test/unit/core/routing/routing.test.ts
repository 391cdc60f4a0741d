import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { choosePaths, MultipathDelivery, ReceiveWindow, decideRelay, PeerScoreBook, type SendCommand } from '../../../../src/core/routing/index.js'

test('choosePaths: direct first, then the fastest relays in distinct cells, spares after', () => {
  const { paths, spares } = choosePaths<string>({
    k: 3,
    direct: { predictedMs: 10 },
    candidates: [
      { peer: 'a', cell: 'r3:1:1', predictedMs: 12 },
      { peer: 'b', cell: 'r3:1:1', predictedMs: 11 },
      { peer: 'c', cell: 'r3:2:2', predictedMs: 30 },
      { peer: 'd', cell: 'r3:3:3', predictedMs: 20 },
      { peer: 'bad', cell: 'r3:4:4', predictedMs: 1 },
      { peer: 'e', cell: 'r3:5:5', predictedMs: NaN }
    ],
    exclude: ['bad']
  })
  assert.equal(paths.map(p => p.via ?? 'direct'), ['direct', 'b', 'd'])
  assert.equal(spares.map(p => p.via), ['c', 'a'])
  const noDirect = choosePaths<string>({ k: 2, candidates: [{ peer: 'a', cell: 'x', predictedMs: 5 }, { peer: 'b', cell: 'x', predictedMs: 6 }] })
  assert.equal(noDirect.paths.map(p => p.via), ['a', 'b'], 'same cell is used when nothing else is left')
  assert.equal(choosePaths<string>({ k: 2, candidates: [] }).paths, [])
})

function cmds (d: MultipathDelivery<string>): Array<SendCommand<string>> { return d.pollOutbound() }

test('delivery: k copies go out, the first ack settles, later acks are ignored', () => {
  const d = new MultipathDelivery<string>({ ackTimeoutMs: 100, hopLimit: 2 })
  const { paths, spares } = choosePaths<string>({ k: 2, direct: { predictedMs: 1 }, candidates: [{ peer: 'r1', cell: 'c1', predictedMs: 2 }, { peer: 'r2', cell: 'c2', predictedMs: 3 }] })
  assert.ok(d.send(1000, { id: 'm1', recipient: 'bob', expiresAt: 10_000 }, paths, spares))
  assert.not.ok(d.send(1000, { id: 'm1', recipient: 'bob', expiresAt: 10_000 }, paths, spares), 'same id twice')
  const out = cmds(d)
  assert.equal(out.map(c => [c.via, c.pathId, c.hopsLeft]), [[undefined, 0, 0], ['r1', 1, 2]])
  assert.is(d.nextTimeout(), 1100)
  assert.ok(d.handleAck(1005, 'm1', 1, 'ok'))
  assert.equal(d.pollEvents(), [{ type: 'delivered', id: 'm1', recipient: 'bob', pathId: 1, via: 'r1', latencyMs: 5, attempts: 2 }])
  assert.not.ok(d.handleAck(1006, 'm1', 0, 'duplicate'))
  assert.is(d.inFlight, 0)
  assert.is(d.nextTimeout(), Infinity)
})

test('delivery: a failed or silent path is retried over a spare, then over used paths, until attempts run out', () => {
  const d = new MultipathDelivery<string>({ ackTimeoutMs: 100, maxAttempts: 4 })
  d.send(0, { id: 'm', recipient: 'bob', expiresAt: 10_000 }, [{ via: 'r1', predictedMs: 1 }, { via: 'r2', predictedMs: 2 }], [{ via: 'r3', predictedMs: 3 }])
  cmds(d)
  d.pathFailed(10, 'm', 0) // r1's stream broke
  assert.equal(cmds(d).map(c => [c.via, c.pathId]), [['r3', 2]])
  d.handleAck(20, 'm', 1, 'unreachable') // r2 cannot reach bob
  assert.equal(cmds(d).map(c => [c.via, c.pathId]), [['r1', 3]], 'reuses the earliest path not in use')
  d.tick(200) // both silent
  assert.equal(cmds(d), [])
  assert.equal(d.pollEvents().map(e => [e.type, (e as { reason?: string }).reason]), [['failed', 'attempts-exhausted']])
})

test('delivery: expiry and rejection end a message', () => {
  const d = new MultipathDelivery<string>({ ackTimeoutMs: 1000 })
  d.send(0, { id: 'a', recipient: 'bob', expiresAt: 500 }, [{ predictedMs: 1 }])
  d.send(0, { id: 'b', recipient: 'bob', expiresAt: 5000 }, [{ predictedMs: 1 }, { via: 'r', predictedMs: 1 }])
  assert.is(d.nextTimeout(), 500)
  d.tick(500)
  d.handleAck(600, 'b', 0, 'rejected', 'forged')
  assert.equal(d.pollEvents().map(e => [e.id, (e as { reason?: string }).reason]), [['a', 'expired'], ['b', 'rejected']])
  const small = new MultipathDelivery<string>({ maxInFlight: 1 })
  assert.ok(small.send(0, { id: 'x', recipient: 'b', expiresAt: 9 }, [{ predictedMs: 1 }]))
  assert.not.ok(small.send(0, { id: 'y', recipient: 'b', expiresAt: 9 }, [{ predictedMs: 1 }]))
  assert.not.ok(small.send(0, { id: 'z', recipient: 'b', expiresAt: 9 }, []))
})

test('receive window: exactly once, duplicates across paths, replays by the same neighbour, bounded', () => {
  const w = new ReceiveWindow<string>(3)
  assert.is(w.check(0, 'alice/m1', 1000, 'alice'), 'new')
  assert.is(w.check(1, 'alice/m1', 1000, 'relay1'), 'duplicate')
  assert.is(w.check(2, 'alice/m1', 1000, 'relay1'), 'replayed')
  w.check(3, 'alice/m2', 2000, 'alice'); w.check(4, 'alice/m3', 3000, 'alice')
  // full: m1 is evicted (not expired), so anything expiring by 1000 can no longer be judged
  assert.is(w.check(5, 'alice/m4', 4000, 'alice'), 'new')
  assert.is(w.size, 3)
  assert.is(w.check(6, 'alice/m1', 1000, 'alice'), 'replayed')
  assert.is(w.check(7, 'alice/m0', 900, 'x'), 'replayed')
  assert.is(w.prune(2500), 1)
  assert.is(w.check(2600, 'alice/m5', 5000, 'alice'), 'new')
})

test('receive window: every neighbour a copy came from is remembered (up to 8), a replay by any of them is caught', () => {
  const w = new ReceiveWindow<string>(16)
  assert.is(w.check(0, 'alice/m1', 1000, 'alice/1'), 'new')
  for (let i = 2; i <= 8; i++) assert.is(w.check(i, 'alice/m1', 1000, `relay${i}/${i}`), 'duplicate')
  assert.is(w.check(9, 'alice/m1', 1000, 'alice/1'), 'replayed')
  for (let i = 2; i <= 8; i++) assert.is(w.check(10 + i, 'alice/m1', 1000, `relay${i}/${i}`), 'replayed', `via ${i}`)
  // beyond 8 neighbours the ninth is not remembered: its second copy is a duplicate, never delivered again
  assert.is(w.check(30, 'alice/m1', 1000, 'relay9/9'), 'duplicate')
  assert.is(w.check(31, 'alice/m1', 1000, 'relay9/9'), 'duplicate')
  assert.is(w.size, 1)
})

test('receive window: one message id from two senders is two messages (a peer can pick any id); eviction and expiry handle both', () => {
  const w = new ReceiveWindow<string>(4)
  assert.is(w.check(0, 'm1', 1000, 'alice/1', 'alice'), 'new')
  assert.is(w.check(1, 'm1', 3000, 'mallory/1', 'mallory'), 'new', 'a colliding id does not suppress another sender\'s message')
  assert.is(w.check(2, 'm1', 1000, 'relay/2', 'alice'), 'duplicate')
  assert.is(w.check(3, 'm1', 3000, 'mallory/1', 'mallory'), 'replayed')
  assert.is(w.check(4, 'm1', 1000, 'alice/1', 'alice'), 'replayed')
  assert.ok(w.has('m1', 'alice') && w.has('m1', 'mallory') && !w.has('m1', 'bob'))
  assert.is(w.size, 2)
  // alice's copy expires, mallory's lives on under the same id
  assert.is(w.prune(1500), 1)
  assert.ok(!w.has('m1', 'alice') && w.has('m1', 'mallory'))
  assert.is(w.check(1600, 'm1', 3000, 'mallory/1', 'mallory'), 'replayed')
  // full: the oldest id goes with every sender's entry under it, and its expiry becomes the low-water mark
  w.check(1700, 'm2', 4000, 'a', 'alice'); w.check(1701, 'm3', 4000, 'a', 'alice'); w.check(1702, 'm4', 4000, 'a', 'alice')
  assert.is(w.check(1703, 'm5', 5000, 'a', 'alice'), 'new')
  assert.is(w.size, 4)
  assert.ok(!w.has('m1', 'mallory'))
  assert.is(w.check(1704, 'm1', 3000, 'mallory/1', 'mallory'), 'replayed', 'evicted: refused by the low-water mark')
})

test('receive window: many senders on one id: a bounded chain, the rest under keys of their own, replays caught after the chain is gone', () => {
  const w = new ReceiveWindow<string>(100)
  // the first 8 owners expire at 1000, the next 4 (beyond the chain) live to 5000
  for (let i = 0; i < 12; i++) assert.is(w.check(i, 'm', i < 8 ? 1000 : 5000, `v${i}`, `peer${i}`), 'new', `owner ${i}`)
  assert.is(w.size, 12)
  for (let i = 0; i < 12; i++) assert.is(w.check(20 + i, 'm', i < 8 ? 1000 : 5000, `v${i}`, `peer${i}`), 'replayed', `replay of owner ${i}`)
  assert.is(w.check(40, 'm', 5000, 'other', 'peer11'), 'duplicate')
  assert.is(w.prune(2000), 8)
  assert.not.ok(w.has('m', 'peer0'))
  for (let i = 8; i < 12; i++) {
    assert.ok(w.has('m', `peer${i}`), `owner ${i} still known with the chain gone`)
    assert.is(w.check(2100 + i, 'm', 5000, `v${i}`, `peer${i}`), 'replayed', `replay of owner ${i} after the chain expired`)
  }
  assert.is(w.check(2200, 'm', 5000, 'v', 'newcomer'), 'new')
  assert.is(w.prune(6000), 5)
  assert.is(w.size, 0)
  assert.is(w.check(6001, 'm', 9000, 'v8', 'peer8'), 'new', 'expired entries are forgotten, their ids free again')
})

test('receive window under steady traffic holds about the live messages and never refuses a fresh one', () => {
  const w = new ReceiveWindow<string>(1000)
  // 100 messages per second, each alive 2 s: about 200 are alive at any time
  for (let i = 0; i < 20_000; i++) {
    const now = i * 10
    assert.is(w.check(now, `s/${i}`, now + 2000, 's'), 'new')
  }
  assert.ok(w.size <= 205, `window holds ${w.size} entries, expected about the 200 live ones`)
  // a replay of a live message is still caught
  assert.is(w.check(199_990, 's/19999', 201_990, 's'), 'replayed')
})

test('relay decision honours the hop limit', () => {
  assert.is(decideRelay({ recipientIsSelf: true, hopsLeft: 0, recipientReachable: false }), 'deliver')
  assert.is(decideRelay({ recipientIsSelf: false, hopsLeft: 0, recipientReachable: true }), 'hop-limit')
  assert.is(decideRelay({ recipientIsSelf: false, hopsLeft: 1, recipientReachable: true }), 'forward')
  assert.is(decideRelay({ recipientIsSelf: false, hopsLeft: 2, recipientReachable: false }), 'unreachable')
})

test('score book: penalties add up to a disconnect, decay restores the peer', () => {
  const s = new PeerScoreBook<string>({ threshold: -100, halfLifeMs: 60_000 })
  assert.is(s.penalize(0, 'eve', 'forged').disconnect, false)
  assert.is(s.score(0, 'eve'), -50)
  const r = s.penalize(0, 'eve', 'forged')
  assert.ok(r.disconnect)
  assert.ok(s.isBanned(0, 'eve'))
  assert.ok(Math.abs(s.score(60_000, 'eve') + 50) < 1e-9, 'halves in one half-life')
  assert.not.ok(s.isBanned(60_000, 'eve'))
  for (let i = 0; i < 100; i++) s.reward(0, 'bob')
  assert.is(s.score(0, 'bob'), 20, 'rewards are capped')
  const small = new PeerScoreBook<string>({ maxPeers: 2 })
  small.penalize(0, 'a', 'expired'); small.penalize(0, 'b', 'forged'); small.penalize(0, 'c', 'forged')
  assert.is(small.size, 2)
  assert.is(small.score(0, 'a'), 0, 'the most neutral peer is forgotten first')
})

test.run()
