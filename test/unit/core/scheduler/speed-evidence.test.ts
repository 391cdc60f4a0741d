// Speculation on evidence, not on claims (speed-evidence.ts; review finding F2): an offer's
// perf_score is the provider's word. A lying fastest offer must not make a job at its lease cap
// shed its honest leases copy after copy, a measured copy time replaces a lease's claim, the
// fastest offer is the recent rounds' (not a lifetime minimum). And nextRoundAt is a pure query: releases come from makeRoom, before the poll (F9).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'
import { FASTEST_WINDOW_MS } from '../../../../src/core/scheduler/speed-evidence.js'

const policy = (taskCount: number): JobPolicy => ({ taskCount, redundancy: 1, quorum: 1, maxAttempts: 3, taskTimeoutMs: 3_600_000, leaseTimeoutMs: 3_600_000, stragglerFactor: 3 })
const machine = (taskCount: number): JobMachine => new JobMachine(policy(taskCount), new ReputationBook(), createRng(1))
const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

test('a lying fastest offer every round costs a job at its cap one release, not one per copy', () => {
  // 4 honest leases (60 s a copy) at a cap of 4, 100 tasks; every round reports an offer claiming
  // 5 ms whose provider then refuses its lease; released providers are leased again at once
  const m = machine(100)
  m.leaseCap = { leases: 4, slots: 0 }
  let leased = 0; let released = 0; let rounds = 0; let t = 0
  for (let i = 0; i < 4; i++) m.handleLease(0, { leaseId: `L${leased++}`, provider: `honest${i}`, slots: 1, rank: i, runMs: 60_000 })
  m.noteFastest(0, 5)
  const inflight: JobCommand[] = []
  const poll = (): void => { for (const c of m.pollCommands()) { if (c.type === 'release-lease' && c.reason !== 'job finished') released++; if (c.type === 'run') inflight.push(c) } }
  for (let step = 0; step < 40 && !m.isFinished; step++) {
    poll()
    t += 60_000
    for (const c of inflight.splice(0)) if (c.type === 'run') m.handleResult(t, { index: c.index, attempt: c.attempt, ok: true, hash: `h${c.index}` })
    poll()
    if (m.leaseWant() !== undefined && m.liveLeases().length < 4) {
      rounds++
      const live = new Set(m.liveLeases().map(l => l.provider))
      for (let i = 0; i < 4; i++) if (!live.has(`honest${i}`)) m.handleLease(t, { leaseId: `L${leased++}`, provider: `honest${i}`, slots: 1, rank: i, runMs: 60_000 })
      m.noteFastest(t, 5)
    }
  }
  assert.ok(m.isFinished)
  // before: 24 releases and 24 lease rounds (one per copy on each lease)
  assert.ok(released <= 1, `${released} leases released for the lie`)
  assert.ok(rounds <= 1, `${rounds} lease rounds`)
})

test('the fastest offer is the recent rounds\': a fast offer seen once and gone since releases nothing', () => {
  const m = machine(4)
  m.leaseCap = { leases: 2, slots: 0 }
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, rank: 0, runMs: 100_000 })
  m.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, rank: 1, runMs: 100_000 })
  m.pollCommands()
  m.noteFastest(0, 10_000)
  // rounds past the window saw no usable offer (the fast provider is busy): its figure is gone
  m.noteFastest(FASTEST_WINDOW_MS + 1, undefined)
  m.handleResult(FASTEST_WINDOW_MS + 2, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  const cs = m.pollCommands()
  assert.not.ok(cs.some(c => c.type === 'release-lease'), 'no release against a lifetime minimum')
  assert.equal(runs(cs).map(c => c.provider), ['a'], 'the lease is refilled')
})

test('a measured copy time replaces the lease\'s claim: no twin on a provider that claimed fast and ran slow', () => {
  const m = machine(3)
  m.handleLease(0, { leaseId: 'F', provider: 'claims-fast', slots: 1, rank: 0, runMs: 10_000 })
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 1, runMs: 200_000 })
  assert.equal(runs(m.pollCommands()).map(c => [c.index, c.provider]), [[0, 'claims-fast'], [1, 'slow']])
  // its copies take 60 s, not the 10 s it claimed
  m.handleResult(60_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  assert.equal(runs(m.pollCommands()).map(c => c.index), [2])
  m.handleResult(120_000, { index: 2, attempt: 1, ok: true, hash: 'h2' })
  // task 1 needs 80 s more on `slow`; at 60 s a copy (measured), a twin is not 3x sooner (at 10 s it would be)
  assert.equal(runs(m.pollCommands()), [])
})

test('nextRoundAt releases nothing; makeRoom does, before the commands are polled (F9)', () => {
  const m = machine(1)
  const s = new JobSession(m, new LeaseSearch(), new BudgetLedger(undefined), 2)
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, rank: 0, runMs: 100_000 })
  m.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, rank: 1, runMs: 100_000 })
  m.pollCommands()
  s.handleRound(0, { offers: 1, refusals: [], leased: 0, liveLeases: 2, fastestRunMs: 10_000 })
  m.handleTimeout(30_000)
  m.pollCommands()
  assert.is(m.leaseWant(), 'more', 'task 0 would gain from the fast offer')
  assert.is(s.nextRoundAt(30_000), undefined, 'at the cap: no round yet')
  assert.equal(m.pollCommands(), [], 'a query pushes no command')
  s.makeRoom(30_000)
  const cs = m.pollCommands()
  assert.equal(cs.map(c => [c.type, c.type === 'release-lease' ? c.leaseId : '']), [['release-lease', 'B']], 'the idle slow lease goes in this poll')
  assert.is(s.nextRoundAt(30_000), 30_000, 'and the round that lease made room for may run')
})

test.run()
