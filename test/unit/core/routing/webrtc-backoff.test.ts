// Review s10 L2: a peer whose inbound WebRTC attempt ended without a connection waits before its
// next one (10 s, doubling in a row, at most 5 min); a connection clears it; the table is bounded.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { WebRTCBackoff } from '../../../../src/core/routing/webrtc-backoff.js'

test('a failed attempt makes its peer wait, doubling per failure in a row up to the ceiling; others are not held', () => {
  const b = new WebRTCBackoff()
  assert.is(b.waiting('a', 0), false)
  b.ended('a', 0, false)
  assert.is(b.waiting('a', 9_999), true)
  assert.is(b.waiting('b', 1), false, 'another peer is not held')
  assert.is(b.waiting('a', 10_000), false)
  b.ended('a', 10_000, false)
  assert.is(b.waiting('a', 29_999), true, '20 s after the second failure')
  assert.is(b.waiting('a', 30_000), false)
  for (let i = 0; i < 10; i++) b.ended('a', 100_000, false)
  assert.is(b.waiting('a', 399_999), true)
  assert.is(b.waiting('a', 400_000), false, 'never more than 5 min')
  assert.is(b.refused, 3)
})

test('a connection clears the backoff; the table keeps at most maxPeers', () => {
  const b = new WebRTCBackoff({ maxPeers: 3 })
  b.ended('a', 0, false)
  b.ended('a', 1, true)
  assert.is(b.waiting('a', 2), false)
  for (const p of ['p', 'q', 'r', 's']) b.ended(p, 0, false)
  assert.is(b.size, 3)
  assert.is(b.waiting('p', 1), false, 'the oldest was forgotten')
  assert.is(b.waiting('s', 1), true)
})

test.run()
