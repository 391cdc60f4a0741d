// OutboundBudget (src/net/guard/outbound.ts), review s11 H2 and M2: the stream let past the budget
// keeps the way only while it is fast or nobody untried waits (a slow one is paused again, not
// charged, once per frame); while streams wait, a silent holder of part of a frame is cut; a stream
// that cannot be paused (WebRTC) is never paused (its cap: outbound-unpausable.test.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup } from './outbound-fake.js'

test('a slow stream let past the budget is paused again (not charged) and an untried waiting one goes; once per frame', () => {
  const { b, clock, charges, track } = setup({ exemptKeepBytesPerSec: 1000, frameDeadlineMs: 1e9 })
  const [fill, slow, honest] = [track(0), track(1), track(2)]
  fill.arrive(90, 500)
  slow.arrive(20, 500) // over: let through (the only waiter)
  honest.arrive(5, 500) // waits behind it
  assert.is(slow.paused, false)
  assert.ok(honest.paused)
  clock.t = 300; slow.arrive(100, 500)
  clock.t = 600
  b.sweep(clock.t) // 100 B in 600 ms: above the minimum (100 B/s), under the keep rate (1000 B/s), and honest waits untried
  assert.ok(slow.paused, 'the slow one waits again')
  assert.is(honest.paused, false, 'the untried one is let through')
  assert.is(charges.length, 0)
  assert.is(b.stats.takenBack, 1)
  honest.arrive(495, 500, true) // its frame is in: the slow one is let through again (nobody untried waits)
  fill.arrive(10, 500) // over: fill waits (untried), but the slow one already had its turn
  assert.is(slow.paused, false)
  assert.ok(fill.paused)
  clock.t = 700; slow.arrive(100, 500)
  clock.t = 1200
  b.sweep(clock.t) // still slow, but once per frame: it keeps the way (memory: at most one take-back per frame)
  assert.is(slow.paused, false)
  assert.ok(fill.paused)
  assert.is(b.stats.takenBack, 1)
  assert.is(charges.length, 0)
})

test('a fast stream let past the budget keeps the way', () => {
  const { b, clock, track } = setup({ exemptKeepBytesPerSec: 1000, frameDeadlineMs: 1e9 })
  const [fill, fast, other] = [track(0), track(1), track(2)]
  fill.arrive(90, 5000)
  fast.arrive(20, 5000)
  other.arrive(5, 5000)
  clock.t = 300; fast.arrive(700, 5000)
  clock.t = 600
  b.sweep(clock.t)
  assert.is(fast.paused, false)
  assert.ok(other.paused)
  assert.is(b.stats.takenBack, 0)
})

test('while streams wait, a holder of part of a frame that receives nothing for the silent period is cut and charged', () => {
  const { b, clock, charges, track } = setup({ exemptGraceMs: 1e9, frameDeadlineMs: 1e9, silentMs: 5000 })
  const [silent, through, waiter] = [track(0), track(1), track(2)]
  silent.arrive(90, 500) // under the budget, then nothing
  through.arrive(20, 500) // over: let through
  waiter.arrive(5, 500) // waits
  clock.t = 4900
  b.sweep(clock.t)
  assert.is(silent.failed, undefined)
  clock.t = 5000
  b.sweep(clock.t)
  assert.ok(silent.failed !== undefined, 'cut')
  assert.is(charges.length, 1)
  assert.match(charges[0], /sent 0 bytes/)
  assert.is(waiter.paused, false, 'the budget is free again')
  assert.is(through.failed, undefined)
})

test('nobody waiting: a silent holder keeps its frame deadline only', () => {
  const { b, clock, charges, track } = setup({ frameDeadlineMs: 1e9, silentMs: 5000 })
  const s = track(0)
  s.arrive(90, 500)
  clock.t = 60_000
  b.sweep(clock.t)
  assert.is(s.failed, undefined)
  assert.is(charges.length, 0)
})

test('a stream that cannot be paused (WebRTC) is never paused, neither for the node budget nor past its peer share (review s11 N3)', () => {
  const { b, track } = setup({ peerBytes: 150 })
  const a = track(0)
  a.arrive(90, 500)
  const w = track(1, false)
  w.arrive(100, 500) // 190 > 100: a pausable stream would stop here
  assert.is(w.paused, false)
  assert.is(b.stats.paused, 0)
  assert.is(b.bufferedBytes(), 190)
  const y = track(2)
  y.arrive(5, 500) // a pausable one still waits for the budget (and is let through, the only waiter)
  assert.is(b.stats.paused, 1)
  w.arrive(60, 500) // peer 1 holds 160 > 150: before s11 N3, paused here (and libp2p reset it past 4 MiB)
  assert.is(w.paused, false)
  // since review s12 L2 its slowest such stream is reset instead (not charged: it could finish in time)
  assert.match(w.failed?.message ?? '', /over its share 150/)
  const p1 = track(1)
  p1.arrive(151, 500) // a pausable stream of that peer still stops past its share
  assert.ok(p1.paused)
})

test.run()
