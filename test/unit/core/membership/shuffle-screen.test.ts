// A shuffle's descriptors are screened before anything about them is stored: too many refuse the
// message whole; otherwise self, duplicates and bad ages are dropped and at most shuffleLength kept.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { screenShuffle, shuffleEntryLimit } from '../../../../src/core/membership/index.js'

test('a 256-descriptor shuffle is refused whole', () => {
  const entries = Array.from({ length: 256 }, (_, i) => ({ peer: `p${i}`, age: 0 }))
  assert.is(screenShuffle('me', entries, 6), undefined)
  assert.is(shuffleEntryLimit(6), 12)
  assert.ok(screenShuffle('me', entries.slice(0, 12), 6) !== undefined)
})

test('self, duplicates, negative and non-finite ages are dropped; at most shuffleLength are kept', () => {
  const entries = [
    { peer: 'me', age: 0 }, { peer: 'a', age: 1 }, { peer: 'a', age: 0 }, { peer: 'b', age: -1 },
    { peer: 'c', age: Number.NaN }, { peer: 'd', age: 2 }, { peer: 'e', age: 0 }, { peer: 'f', age: 0 }
  ]
  assert.equal(screenShuffle('me', entries, 4)?.map(e => e.peer), ['a', 'd', 'e', 'f'])
  assert.equal(screenShuffle('me', entries.slice(0, 7), 4)?.map(e => e.peer), ['a', 'd', 'e'])
})

test.run()
