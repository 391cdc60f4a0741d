// Review s14 (cheat) F3: two peers whose payout address is one key's (each offer carries that key's
// PayoutBinding over its peer: the payer knows them as one account, shares their voucher and their
// forfeit) are one provider for a task's copies. Before, the machine kept copies apart by peer id
// only, so one operator running two peer ids could hold both copies of a redundancy-2 task and
// agree with itself: a wrong result accepted, at no cost beyond a second identity (one stake, one
// payout address; nothing checks either at placement).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook } from '../../../../src/core/scheduler/index.js'
import { DEFAULT_SPOT_CHECKS } from '../../../../src/core/scheduler/spot-check.js'
import { createRng } from '../../../../src/core/rng.js'

const policy = { taskCount: 1, redundancy: 2, quorum: 2, maxAttempts: 4, taskTimeoutMs: 60_000, leaseTimeoutMs: 1e9, stragglerFactor: 0 }
const A = '0x' + 'aa'.repeat(20)
const C = '0x' + 'cc'.repeat(20)

test('copies of one task go to peers of distinct payout owners, not to two peers of one owner', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'La', provider: 'a', slots: 1, owner: A })
  m.handleLease(0, { leaseId: 'Lb', provider: 'b', slots: 1, owner: A })
  const first = m.pollCommands().filter(c => c.type === 'run')
  assert.is(first.length, 1, `one copy on a peer of owner A, not both: ${JSON.stringify(first)}`)
  const holder = (first[0] as { provider: string }).provider
  // a peer of another owner takes the second copy
  m.handleLease(1, { leaseId: 'Lc', provider: 'c', slots: 1, owner: C })
  const second = m.pollCommands().filter(c => c.type === 'run')
  assert.equal(second.map(c => (c as { provider: string }).provider), ['c'])
  // both copies answer the same: accepted from two owners
  m.handleResult(2, { index: 0, attempt: (first[0] as { attempt: number }).attempt, ok: true, hash: 'h' })
  m.handleResult(2, { index: 0, attempt: (second[0] as { attempt: number }).attempt, ok: true, hash: 'h' })
  assert.is(m.acceptedHash(0), 'h')
  assert.ok(holder === 'a' || holder === 'b')
})

test('a caught peer\'s owner is caught with it: its other peers are avoided too', () => {
  const m = new JobMachine({ ...policy, taskCount: 40, redundancy: 1, quorum: 1, spotChecks: DEFAULT_SPOT_CHECKS }, new ReputationBook(), createRng(1))
  const D = '0x' + 'dd'.repeat(20)
  // default checks (a new provider's results are checked): a lies and is caught; b, its owner's other peer, answers right
  m.handleLease(0, { leaseId: 'La', provider: 'a', slots: 4, owner: A })
  m.handleLease(0, { leaseId: 'Lb', provider: 'b', slots: 4, owner: A })
  m.handleLease(0, { leaseId: 'Lc', provider: 'c', slots: 4, owner: C })
  m.handleLease(0, { leaseId: 'Ld', provider: 'd', slots: 4, owner: D })
  // a disagreement needs 3 agreeing copies from distinct owners: b (a's owner) is not one of them
  m.handleLease(0, { leaseId: 'Le', provider: 'e', slots: 4, owner: '0x' + 'ee'.repeat(20) })
  let now = 1
  for (let step = 0; step < 500; step++) {
    const runs = m.pollCommands().filter(c => c.type === 'run') as Array<{ index: number, attempt: number, provider: string }>
    if (runs.length === 0) break
    for (const c of runs) m.handleResult(now++, { index: c.index, attempt: c.attempt, ok: true, hash: c.provider === 'a' ? 'evil' : `h${c.index}` })
  }
  assert.ok(m.avoidedProviders.has('a'), 'the liar is caught')
  assert.ok(m.avoidedProviders.has('b'), 'and its owner\'s other peer with it')
  assert.not.ok(m.avoidedProviders.has('c') || m.avoidedProviders.has('d') || m.avoidedProviders.has('e'))
  for (let i = 0; i < 40; i++) assert.is(m.acceptedHash(i), `h${i}`)
})

test('peers with no owner named (unpaid jobs) are told apart by peer id, as before', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'La', provider: 'a', slots: 1 })
  m.handleLease(0, { leaseId: 'Lb', provider: 'b', slots: 1 })
  assert.equal(m.pollCommands().filter(c => c.type === 'run').map(c => (c as { provider: string }).provider).sort(), ['a', 'b'])
})

test.run()
