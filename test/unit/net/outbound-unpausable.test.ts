// OutboundBudget (src/net/guard/outbound.ts), review s11 N2 and N4. N2: streams that cannot be paused
// (WebRTC) were bounded only by their peer's share, so sybil peers held (peers x 32 MiB); now all of
// them together hold at most OUTBOUND_UNPAUSABLE_BYTES: past it the slowest is reset, charged only
// when it is under the minimum rate. N4: while streams wait for the budget, a holder of part of a
// frame that drips (1 byte every 4 s) without being paused (a WebRTC stream) is cut like a silent
// one: each window it must receive the progress minimum; nobody waiting, a slow link keeps its
// frame deadline.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup } from './outbound-fake.js'

test('streams that cannot be paused hold at most their cap together: past it the slowest is reset, charged when under the minimum rate (N2)', () => {
  // node budget 100 B (irrelevant to them), peer share 1000 B, their cap 300 B; minimum rate 100 B/s,
  // frame deadline 1 s + length at it (11 s for 1000 B): charged only when it cannot make that at its rate
  const { b, clock, charges, track } = setup({ unpausableBytes: 300 } as never)
  const [slow, fast1, fast2, last] = [track(0, false), track(1, false), track(2, false), track(0, false)]
  slow.arrive(10, 1000) // frame begins at 0
  clock.t = 1900
  fast1.arrive(10, 1000); fast2.arrive(10, 1000)
  clock.t = 2000
  slow.arrive(90, 1000) // 90 B in 2 s: 45 B/s, under the minimum
  fast1.arrive(90, 1000) // 900 B/s
  fast2.arrive(90, 1000)
  assert.is(b.bufferedBytes(), 300)
  assert.equal([slow.failed, fast1.failed, fast2.failed], [undefined, undefined, undefined], 'at the cap: nobody reset')
  last.arrive(50, 1000) // 350 > 300: the slowest goes
  assert.ok(slow.failed !== undefined, 'the slowest is reset')
  assert.equal([fast1.failed, fast2.failed, last.failed], [undefined, undefined, undefined])
  assert.ok(b.bufferedBytes() <= 300, `held ${b.bufferedBytes()}`)
  assert.is(charges.length, 1, 'under the minimum rate: charged')
  assert.match(charges[0], /cannot be paused/)
  assert.is(b.stats.paused, 0, 'none of them was paused')
})

test('past the cap, the slowest is reset: charged under the minimum rate, not charged above it', () => {
  const { b, clock, charges, track } = setup({ unpausableBytes: 200 } as never)
  const [a, c] = [track(0, false), track(1, false)]
  a.arrive(1, 1000); c.arrive(1, 1000)
  clock.t = 1000
  a.arrive(149, 1000) // 149 B/s
  c.arrive(59, 1000) // 59 B/s; 210 B held > 200: c, the slowest, goes, charged (under 100 B/s)
  assert.ok(c.failed !== undefined)
  assert.is(a.failed, undefined)
  assert.is(charges.length, 1)
  const d = track(2, false)
  d.arrive(1, 1000)
  clock.t = 2000
  d.arrive(180, 1000) // 180 B/s; a is at 74.5 B/s now: a goes, charged
  assert.ok(a.failed !== undefined)
  assert.is(d.failed, undefined)
  assert.is(charges.length, 2)
  const e = track(0, false)
  e.arrive(1, 1000)
  clock.t = 2500
  e.arrive(100, 1000) // e 200 B/s, d 120 B/s: d is the slowest, above the minimum: reset, not charged
  assert.ok(d.failed !== undefined)
  assert.is(e.failed, undefined)
  assert.is(charges.length, 2, 'not charged')
  assert.is(b.stats.unpausableCut, 3)
  assert.ok(b.bufferedBytes() <= 200)
})

test('past the cap, the frame that would take longest to finish goes, not the one with the lowest rate', () => {
  const { b, clock, charges, track } = setup({ unpausableBytes: 200 } as never)
  const [near, far] = [track(0, false), track(1, false)]
  near.arrive(1, 200); far.arrive(1, 100_000)
  clock.t = 2000
  near.arrive(149, 200) // 75 B/s, 50 B left: done in under a second
  far.arrive(239, 100_000) // 120 B/s, ~99,760 B left: 390 B held > 200
  assert.is(near.failed, undefined, 'the nearly finished one stays')
  assert.ok(far.failed !== undefined)
  assert.is(charges.length, 0, 'above the minimum rate: not charged')
  near.arrive(50, 200, true)
  assert.is(b.bufferedBytes(), 0)
})

test('past the cap, a stream holding whole frames nobody reads goes first (not charged), before any frame in arrival', async () => {
  const K = 64 * 1024
  const { b, clock, charges, track } = setup({ frameDeadlineMs: 1e9, unpausableBytes: 200 * K, peerBytes: 1000 * K } as never)
  const [stuffed, honest] = [track(0, false), track(1, false)]
  // a request stream whose answer was read and which then got a 9.4 MiB frame (150 K) nobody reads
  stuffed.framesDecoded++; stuffed.held = 150 * K; stuffed.meter?.held(150 * K)
  honest.arrive(1, 1000 * K)
  clock.t = 10_000
  honest.arrive(99 * K, 1000 * K) // 250 K held > 200 K: the stuffed one goes, not the frame in arrival
  await new Promise(resolve => setImmediate(resolve)) // (once the event loop has moved on and it still holds them: review s12 L5)
  assert.ok(stuffed.failed !== undefined)
  assert.is(honest.failed, undefined)
  assert.is(charges.length, 0)
  assert.is(b.bufferedBytes(), 99 * K + 1)
})

test('streams that cannot be paused, under their cap, are never reset whatever the node budget (a 1 B node budget)', () => {
  const { b, clock, charges, track } = setup({ nodeBytes: 1, frameDeadlineMs: 1e9, unpausableBytes: 300 } as never)
  const s = [track(0, false), track(1, false), track(2, false)]
  for (const x of s) x.arrive(99, 1000)
  clock.t = 60_000
  b.sweep(clock.t)
  assert.equal(s.map(x => x.failed), [undefined, undefined, undefined])
  assert.is(charges.length, 0)
})

// a holder that is not paused while the budget is full: one that cannot be paused (a pausable
// one's drip past the budget pauses it, and when its turn past the budget comes it must keep the
// minimum rate: charged within a grace period or two)
test('while streams wait, a holder of part of a frame that drips 1 byte every 4 s is cut at the end of its window (N4)', () => {
  const { b, clock, charges, track } = setup({ exemptGraceMs: 1e9, frameDeadlineMs: 1e9, silentMs: 5000, silentMinBytes: 20 } as never)
  const [drip, through, waiter] = [track(0, false), track(1), track(2)]
  drip.arrive(90, 500)
  through.arrive(20, 500) // over: let through
  waiter.arrive(5, 500) // waits
  for (let t = 1000; t <= 12_000; t += 1000) {
    clock.t = t
    if (t % 4000 === 0) drip.arrive(1, 500)
    b.sweep(t)
    if (drip.failed !== undefined) break
  }
  assert.ok(drip.failed !== undefined, 'the dripper is cut')
  assert.ok(clock.t <= 10_000, `cut within two windows (at ${clock.t} ms)`)
  assert.is(charges.length, 1)
  assert.match(charges[0], /under 20/)
  assert.is(through.failed, undefined)
  assert.is(b.stats.silentCut, 1)
})

test('a holder making the progress minimum in each window is not cut while others wait; nobody waiting, a dripper is not cut', () => {
  const { b, clock, charges, track } = setup({ exemptGraceMs: 1e9, frameDeadlineMs: 1e9, silentMs: 5000, silentMinBytes: 20 } as never)
  const [steady, through, waiter] = [track(0, false), track(1), track(2)]
  steady.arrive(60, 5000)
  through.arrive(50, 5000)
  waiter.arrive(5, 5000)
  for (let t = 1000; t <= 30_000; t += 1000) { clock.t = t; steady.arrive(5, 5000); b.sweep(t) } // 25 B per 5 s window
  assert.is(steady.failed, undefined)
  assert.is(charges.length, 0)
  const alone = setup({ frameDeadlineMs: 1e9, silentMs: 5000, silentMinBytes: 20 } as never)
  const d = alone.track(0)
  d.arrive(50, 5000)
  for (let t = 1000; t <= 60_000; t += 1000) { alone.clock.t = t; if (t % 4000 === 0) d.arrive(1, 5000); alone.b.sweep(t) }
  assert.is(d.failed, undefined, 'nobody waits: only its frame deadline')
  assert.is(alone.charges.length, 0)
})

test.run()
