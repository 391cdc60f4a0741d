// Copies sent ahead of a lease's slots (tiny tasks, job-dispatch.ts): they wait at the provider for
// a slot, so their timeout counts the copies ahead of them, and a copy that ran long ends read-ahead
// on its lease (review s7 L1: a mispredicted task timed honest providers out for the wait).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const policy: JobPolicy = { taskCount: 100, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 60_000, stragglerFactor: 0 }
const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

test('a copy sent ahead of the slots is not timed out for its wait; a long copy ends read-ahead', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'L', provider: 'p', slots: 1, runMs: 5, readAhead: 2 })
  const first = runs(m.pollCommands())
  assert.is(first.length, 3, 'one copy per slot and two ahead')
  // the task was mispredicted: the running copy takes 4.5 s, so the copies ahead wait that long
  m.handleResult(4500, { index: first[0].index, attempt: first[0].attempt, ok: true, hash: 'h' })
  m.handleTimeout(5001)
  assert.equal(m.copiesOf(first[1].index).map(c => c.outcome), ['running'], 'the copy that waited for the slot is not timed out at the task timeout')
  // its lease sends nothing ahead any more: two copies are out for its one slot, so none follows
  // (with read-ahead still on, a third would go to keep slots + 2 out)
  assert.is(runs(m.pollCommands()).length, 0, 'no new copy ahead of the slot')
  m.handleTimeout(5000 * 2 + 1)
  assert.equal(m.copiesOf(first[1].index).map(c => c.outcome), ['timeout'], 'it still times out once its own wait and run are over')
})

test('under spot checks only an established provider gets copies ahead of its slots', () => {
  const checked: JobPolicy = { ...policy, taskCount: 200, spotChecks: { rate: 0.1, trustAfter: 10 } }
  const rep = new ReputationBook()
  for (let i = 0; i < 10; i++) rep.confirmed('known')
  const m = new JobMachine(checked, rep, createRng(1))
  m.handleLease(0, { leaseId: 'N', provider: 'newcomer', slots: 2, runMs: 5, readAhead: 6 })
  m.handleLease(0, { leaseId: 'K', provider: 'known', slots: 2, runMs: 5, readAhead: 6 })
  const sent = runs(m.pollCommands())
  const on = (p: string): number => sent.filter(c => c.provider === p).length
  assert.is(on('newcomer'), 2, 'a newcomer (every copy of it checked) gets its slots only')
  assert.is(on('known'), 8, 'an established provider gets its slots and 6 ahead')
})

test('progress counts copies sent ahead apart: running is at most each lease\'s slots (user walks s13/s14: "16 running" on 4 slots)', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'L', provider: 'p', slots: 1, runMs: 5, readAhead: 2 })
  m.handleLease(0, { leaseId: 'M', provider: 'q', slots: 2, runMs: 5 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 5, '3 on L (1 slot, 2 ahead), 2 on M')
  const p = m.progress()
  assert.is(p.running, 3, 'one on L\'s slot, two on M\'s')
  assert.is(p.ahead, 2)
  // the copy on L's slot ends: one sent ahead takes the slot, and L's read-ahead refills (or not): never more than 1 running on L
  const onL = sent.filter(c => c.leaseId === 'L')
  m.handleResult(10, { index: onL[0].index, attempt: onL[0].attempt, ok: true, hash: 'h' })
  m.pollCommands()
  const q = m.progress()
  assert.ok(q.running <= 3, `running ${q.running}`)
  assert.is(q.running + (q.ahead ?? 0), m.liveLeases().reduce((n, l) => n + l.running, 0), 'running + ahead = every copy out')
})

test.run()
