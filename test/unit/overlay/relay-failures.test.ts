// RelayFailureBook (src/net/overlay/relay-failures.ts): failures per (relay, sender) pair, a
// mute after the limit that ends, old failures forgotten, and a bounded, LRU-ordered map.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RelayFailureBook, RELAY_PAIR_MAX_FAILURES, RELAY_PAIR_MUTE_MS } from '../../../src/net/overlay/relay-failures.js'

test('a pair is muted on its limit-th failure, for the mute time; other pairs are not', () => {
  const b = new RelayFailureBook()
  for (let i = 1; i < RELAY_PAIR_MAX_FAILURES; i++) assert.is(b.fail(i, 'R', 'S'), false)
  assert.is(b.muted(100, 'R', 'S'), false)
  assert.is(b.fail(100, 'R', 'S'), true)
  assert.ok(b.muted(101, 'R', 'S'))
  assert.is(b.muted(101, 'R', 'T'), false)
  assert.is(b.muted(101, 'Q', 'S'), false)
  assert.ok(b.muted(100 + RELAY_PAIR_MUTE_MS - 1, 'R', 'S'))
  assert.is(b.muted(100 + RELAY_PAIR_MUTE_MS, 'R', 'S'), false)
  // after the mute the count starts over
  assert.is(b.fail(100 + RELAY_PAIR_MUTE_MS, 'R', 'S'), false)
  assert.is(b.muted(100 + RELAY_PAIR_MUTE_MS + 1, 'R', 'S'), false)
})

test('rare failures do not add up forever', () => {
  const b = new RelayFailureBook()
  let t = 0
  for (let i = 0; i < RELAY_PAIR_MAX_FAILURES * 3; i++) { t += RELAY_PAIR_MUTE_MS / 2; b.fail(t, 'R', 'S') }
  assert.is(b.muted(t, 'R', 'S'), false)
})

test('bounded: the least recently failed pair is forgotten first', () => {
  const b = new RelayFailureBook({ maxPairs: 3, maxFailures: 2 })
  b.fail(0, 'R', 'a'); b.fail(0, 'R', 'b'); b.fail(0, 'R', 'c')
  b.fail(1, 'R', 'a') // a: muted, and most recent
  b.fail(2, 'R', 'd') // b goes
  assert.is(b.size, 3)
  assert.ok(b.muted(3, 'R', 'a'))
  assert.is(b.fail(3, 'R', 'c'), true, 'c kept its first failure')
  assert.is(b.fail(4, 'R', 'b'), false, 'b was forgotten: this is its first again')
})

test.run()
