// OutboundBudget (src/net/guard/outbound.ts) against fake streams: bytes held, not announced; past
// the node budget or a peer's share a stream stops reading and resumes first-paused-first; when
// streams wait, the longest waiting one mid-frame finishes its frame past the budget, and must keep
// its bytes coming; time paused does not count toward a frame's deadline.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup } from './outbound-fake.js'

test('counts bytes held, not announced: a prefix of a large frame holds nothing and pauses nothing', () => {
  const { b, track } = setup()
  const s = track(0)
  s.arrive(0, 1_000_000)
  assert.is(b.bufferedBytes(), 0)
  assert.is(s.paused, false)
})

test('past the node budget a stream stops reading; it resumes when the budget frees', () => {
  const { b, track } = setup()
  const [x, y, z] = [track(0), track(1), track(2)]
  x.arrive(50, 200)
  y.arrive(55, 200) // 105 > 100: y stops, and as the only waiter mid-frame it is let through to finish its frame
  assert.is(y.paused, false)
  assert.is(b.stats.paused, 1)
  z.arrive(10, 200) // z stops and waits (y holds the way past the budget)
  assert.ok(z.paused)
  assert.is(b.waiting, 1)
  x.arrive(150, 200, true) // x's frame is read: 50 bytes free, z reads again
  assert.is(z.paused, false)
  assert.is(b.waiting, 0)
  assert.is(b.bufferedBytes(), 65)
})

test('a peer past its share stops reading while others go on', () => {
  const { b, track } = setup({ nodeBytes: 1000, peerBytes: 60 })
  const x = track(1)
  x.arrive(70, 100) // peer 1 past its share of 60: waits, and is let through (the only waiter)
  assert.is(x.paused, false)
  const [a1, a2, c] = [track(0), track(0), track(2)]
  a1.arrive(40, 100)
  a2.arrive(30, 100) // peer 0 holds 70 > 60: a2 stops (x holds the way past the budget)
  assert.ok(a2.paused)
  c.arrive(20, 100) // another peer goes on
  assert.is(c.paused, false)
  a1.arrive(60, 100, true) // a1's frame is read: peer 0 holds 30, a2 reads again
  assert.is(a2.paused, false)
  assert.is(b.waiting, 0)
})

test('only one stream at a time reads past the budget', () => {
  const { b, track } = setup({ peerBytes: 65 })
  const s = [track(0), track(1), track(2), track(0)]
  s[0].arrive(60, 500)
  s[1].arrive(50, 500) // over: waits, then let through (the only waiter)
  s[2].arrive(10, 500) // over: waits
  s[3].arrive(10, 500) // over: waits
  assert.is(s.filter(x => !x.paused).length, 2) // s[0] read under the budget, s[1] let through
  assert.is(b.waiting, 2)
  s[1].arrive(400, 500) // still mid-frame: it keeps reading, the others still wait
  assert.is(b.waiting, 2)
  assert.is(b.bufferedBytes(), 530)
  s[1].arrive(50, 500, true) // its frame is in (80 held): s[2] fits and reads; s[3]'s peer is past its share (70 > 65), so s[3] is let through next
  assert.is(s[2].paused, false)
  assert.is(s[3].paused, false)
  assert.is(b.stats.exempted, 2)
})

test('the stream let through must keep its bytes coming: a stall is cut and charged, the next one goes', () => {
  const { b, clock, charges, track } = setup()
  const s = [track(0), track(1), track(2)]
  s[0].arrive(90, 500)
  s[1].arrive(20, 500) // over: let through
  s[2].arrive(5, 500) // waits
  assert.is(s[1].paused, false)
  assert.ok(s[2].paused)
  clock.t = 600
  b.sweep(clock.t) // s[1] sent nothing in 600 ms (> 500 ms grace, < 100 B/s): cut
  assert.ok(s[1].failed !== undefined)
  assert.is(charges.length, 1)
  assert.is(s[2].paused, false)
})

test('time paused by the budget does not count toward a frame\'s deadline; time reading does', () => {
  const { b, clock, charges, track } = setup({ exemptGraceMs: 1e9, silentMs: 1e9 }) // a holds part of a frame silently while c waits: not cut for that here
  const a = track(0)
  const w = track(1)
  const c = track(2)
  a.arrive(90, 1000)
  w.arrive(20, 100) // over: let through (exempt)
  c.arrive(20, 100) // waits: deadline 1000 + 100 * 1000 / 100 = 2000 ms of reading
  clock.t = 5000
  b.sweep(clock.t)
  // a and w read for 5 s: a's 1000-byte frame allows 11 s, w's 100-byte frame 2 s
  assert.ok(w.failed !== undefined, 'w missed its deadline')
  assert.is(a.failed, undefined)
  assert.is(c.failed, undefined, 'c was paused all along')
  assert.is(c.paused, false) // resumed once w was cut (let through in its place)
  clock.t = 6500
  b.sweep(clock.t)
  assert.is(c.failed, undefined) // 1.5 s of reading
  clock.t = 7100
  b.sweep(clock.t)
  assert.ok(c.failed !== undefined)
  assert.is(charges.length, 2)
})

test('a stream waiting for the budget, or receiving a frame, counts as alive at each sweep; an idle one does not', () => {
  const { b, clock, track, alive } = setup({ exemptGraceMs: 1e9 })
  const [idle, big, w1, w2] = [track(0), track(1), track(2), track(0)]
  big.arrive(90, 1000)
  w1.arrive(20, 100) // over: let through
  w2.arrive(20, 100) // waits
  assert.ok(w2.paused)
  clock.t = 100
  b.sweep(clock.t)
  assert.equal(alive, [0, 1, 1, 1])
  big.arrive(10, 1000) // progress
  clock.t = 200
  b.sweep(clock.t)
  assert.equal(alive, [0, 2, 1, 2]) // w1 sent nothing since: its heartbeats are not stuck behind us
  assert.is(idle.paused, false)
})

test.run()
