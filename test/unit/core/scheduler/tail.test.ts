// A job's tail (issue 15): copies go to the free lease predicted fastest, not the first by its
// round's rank; a task whose twin went to a slot only somewhat faster may get a second twin
// against its soonest copy; a task waiting on two needed copies gets none; a round only to find
// a faster slot counts a past-due copy at half its elapsed time, as before.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, FASTER_ROUND_GAP_MS, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const policy = (taskCount: number, o: Partial<JobPolicy> = {}): JobPolicy => ({ taskCount, redundancy: 1, quorum: 1, maxAttempts: 3, taskTimeoutMs: 3_600_000, leaseTimeoutMs: 3_600_000, stragglerFactor: 3, ...o })
const machine = (taskCount: number, o: Partial<JobPolicy> = {}): JobMachine => new JobMachine(policy(taskCount, o), new ReputationBook(), createRng(1))
const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

test('a retry goes to the free lease predicted fastest, not the first by rank', () => {
  // no speculation: only the order the pump fills free leases in
  const m = machine(2, { stragglerFactor: 0 })
  m.handleLease(0, { leaseId: 'C', provider: 'c', slots: 1, rank: 2, runMs: 50_000 })
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, rank: 0, runMs: 100_000 })
  m.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, rank: 1, runMs: 10_000 })
  assert.equal(runs(m.pollCommands()).map(c => [c.index, c.provider]), [[0, 'c'], [1, 'a']])
  m.handleResult(100_000, { index: 1, attempt: 1, ok: true, hash: 'h1' })
  m.pollCommands()
  // task 0 fails on c: a and b are free; ranks restart each round, so a's rank 0 says nothing of its speed
  m.handleResult(101_000, { index: 0, attempt: 1, ok: false, error: 'boom' })
  const retry = runs(m.pollCommands())
  assert.equal(retry.map(c => [c.index, c.provider, c.reason]), [[0, 'b', 'retry']], 'b: 10 s a copy, against a\'s 100 s')
})

test('a task twinned on a somewhat faster slot gets a second twin on a far faster one, against its soonest copy', () => {
  const m = machine(1)
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 0, runMs: 1_000_000 })
  assert.equal(runs(m.pollCommands()).map(c => [c.provider, c.reason]), [['slow', 'initial']])
  // a lease 3.3x faster: a twin (1,000 s left against 300 s)
  m.handleLease(1_000, { leaseId: 'M', provider: 'medium', slots: 1, rank: 0, runMs: 300_000 })
  assert.equal(runs(m.pollCommands()).map(c => [c.provider, c.reason]), [['medium', 'speculative']])
  // a 10 s lease frees: the task ends with its twin at 301 s, 290 s away: a second twin
  m.handleLease(11_000, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: 10_000 })
  assert.equal(runs(m.pollCommands()).map(c => [c.provider, c.reason]), [['fast', 'speculative']], 'before: one twin per running copy pair, none here')
  // no third: two twins at most
  m.handleLease(12_000, { leaseId: 'G', provider: 'fast2', slots: 1, rank: 0, runMs: 1_000 })
  assert.equal(runs(m.pollCommands()), [])
})

test('a task waiting on two needed copies (quorum 2) gets no twin against the sooner one', () => {
  const m = machine(1, { redundancy: 2, quorum: 2 })
  m.handleLease(0, { leaseId: 'S1', provider: 's1', slots: 1, rank: 0, runMs: 1_000_000 })
  m.handleLease(0, { leaseId: 'S2', provider: 's2', slots: 1, rank: 1, runMs: 1_000_000 })
  assert.is(runs(m.pollCommands()).length, 2)
  m.handleLease(1_000, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: 10_000 })
  assert.equal(runs(m.pollCommands()), [])
})

test('a round only for a faster slot still counts a past-due copy as needing half its elapsed time again', () => {
  const m = machine(1)
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 0, runMs: 20_000 })
  m.pollCommands()
  m.noteFastest(0, 10_000)
  // at 30 s, 10 s past its predicted end: half of 30 s is 15 s more, under 3 x 10 s: no round
  // (at its whole elapsed time, 30 s, the default stream ran twice the lease rounds for no earlier end)
  m.handleTimeout(FASTER_ROUND_GAP_MS)
  assert.is(m.leaseWant(), undefined)
  m.handleTimeout(60_000)
  assert.is(m.leaseWant(), 'more', 'at 60 s: 30 s more')
})

test.run()
