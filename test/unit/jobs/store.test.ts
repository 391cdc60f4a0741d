import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { JobStore, markRunningCopiesLost } from '../../../src/jobs/store.js'

function fresh (): JobStore {
  const s = new JobStore(openStore(':memory:'))
  s.createJob({ jobId: 'j', owner: new Uint8Array([1]), manifest: '{}', manifestHash: new Uint8Array(32), createdAt: 1, nonce: new Uint8Array(16), signature: new Uint8Array(64), status: 'running', taskCount: 3, updatedAt: 1 })
  return s
}

test('a task is accepted once; replays are ignored', () => {
  const s = fresh()
  assert.ok(s.acceptTask('j', 0, 'h', 1, new Uint8Array([1])))
  assert.not.ok(s.acceptTask('j', 0, 'other', 2, new Uint8Array([2])))
  assert.equal(s.results('j').map(r => [r.index, r.hash, r.attempt]), [[0, 'h', 1]])
})

test('billing is sticky and counted once; duplicates are tracked apart', () => {
  const s = fresh()
  s.copyStarted('j', { index: 0, attempt: 1, provider: 'p', leaseId: 'l', reason: 'initial', startedAt: 1 })
  s.copyResult('j', 0, 1, { outcome: 'agreed', hash: 'h', endedAt: 2, receipt: new Uint8Array([9]) })
  s.copySettled('j', 0, 1, 'agreed', true)
  s.copySettled('j', 0, 1, 'agreed', true)
  s.copySettled('j', 0, 1, 'wrong', false) // a late contradictory settle can not un-bill
  s.copyResult('j', 0, 1, { outcome: 'duplicate', endedAt: 3 })
  const acc = s.accounting('j')
  assert.is(acc.billed, 1)
  assert.is(acc.duplicates, 1)
  assert.is(s.copies('j', 0)[0].outcome, 'agreed')
  assert.equal(s.copies('j', 0)[0].receipt, new Uint8Array([9]))
})

test('restore: accepted, failed and in-progress tasks; running copies become lost', () => {
  const s = fresh()
  s.acceptTask('j', 0, 'h0', 1, new Uint8Array())
  s.failTask('j', 1, 'too many failures')
  s.copyStarted('j', { index: 2, attempt: 1, provider: 'a', leaseId: 'l', reason: 'initial', startedAt: 1 })
  s.copyStarted('j', { index: 2, attempt: 2, provider: 'b', leaseId: 'l', reason: 'redundant', startedAt: 1 })
  s.copyResult('j', 2, 1, { outcome: 'pending', hash: 'h2', endedAt: 2 })
  markRunningCopiesLost(s, 'j', 5)
  const r = s.restoreState('j')
  assert.is(r.get(0)?.accepted, 'h0')
  assert.is(r.get(1)?.failed, 'too many failures')
  assert.equal(r.get(2)?.copies.map(c => [c.attempt, c.outcome, c.hash ?? null]), [[1, 'pending', 'h2'], [2, 'lost', null]])
})

test.run()
