// The submitter's provider reputation is kept for at most MAX_REPUTATION_RECORDS providers (a
// daemon that runs for months meets more; a peer can take leases under many ids), and fresh ids
// cannot push out the record that caught a provider lying.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ReputationBook, MAX_REPUTATION_RECORDS } from '../../../../src/core/scheduler/reputation.js'

test('bounded; a caught provider\'s record outlives a flood of fresh ids; a loaded book is bounded too', () => {
  const book = new ReputationBook()
  book.record('liar', 'wrong')
  book.caught('liar')
  book.record('good', 'agreed', 30)
  for (let i = 0; i < MAX_REPUTATION_RECORDS + 500; i++) book.record(`sybil-${i}`, 'timeout')
  assert.is(book.size, MAX_REPUTATION_RECORDS)
  assert.is(book.get('liar').caught, 1, 'the liar is still known as one')
  assert.ok(book.score('liar') < 0.5)
  assert.is(book.get('sybil-0').timeout, 0, 'the least recently seen clean records went')
  assert.is(book.get(`sybil-${MAX_REPUTATION_RECORDS + 499}`).timeout, 1)
  const loaded = ReputationBook.fromJSON({ ...book.toJSON(), ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`more-${i}`, { agreed: 1, wrong: 0, failed: 0, timeout: 0 }])) })
  assert.is(loaded.size, MAX_REPUTATION_RECORDS)
  assert.is(loaded.get('liar').caught, 1)
})

test('a book full of records with something against them still keeps a new provider\'s record (its oldest liar goes)', () => {
  const book = new ReputationBook()
  for (let i = 0; i < MAX_REPUTATION_RECORDS; i++) book.record(`liar-${i}`, 'wrong')
  for (let i = 0; i < 20; i++) book.record('honest', 'agreed')
  assert.is(book.get('honest').agreed, 20, 'its record was evicted as it was made (review18)')
  assert.ok(book.trusted('honest'))
  assert.is(book.size, MAX_REPUTATION_RECORDS)
  assert.is(book.get('liar-0').wrong, 0, 'the least recently seen liar went')
  assert.is(book.get(`liar-${MAX_REPUTATION_RECORDS - 1}`).wrong, 1)
})

test.run()
