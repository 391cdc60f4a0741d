// Speculation against the predicted time on a faster slot (speculation.ts, the job machine's use
// of it): a copy on a slow lease gets a twin on a free fast lease when the twin is predicted to
// end within 1/SPECULATION_GAIN of its remaining time; the job asks for a faster slot when only
// offers it saw would do; at its lease cap it gives back an idle slow lease to make room.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, pickTwins, wantsFasterSlot, SPECULATION_GAIN, MIN_TWIN_SAVING_MS, FASTER_ROUND_GAP_MS, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const policy = (taskCount: number, o: Partial<JobPolicy> = {}): JobPolicy => ({ taskCount, redundancy: 1, quorum: 1, maxAttempts: 3, taskTimeoutMs: 3_600_000, leaseTimeoutMs: 3_600_000, stragglerFactor: 3, ...o })
const machine = (taskCount: number, o: Partial<JobPolicy> = {}): JobMachine => new JobMachine(policy(taskCount, o), new ReputationBook(), createRng(1))
const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

test('pickTwins: the latest straggler first, on the fastest free lease, only with the gain', () => {
  const leases = [{ leaseId: 'slow', runMs: 50_000, free: 1 }, { leaseId: 'fast', runMs: 10_000, free: 1 }]
  const twins = pickTwins(0, [{ index: 1, endsAt: 40_000 }, { index: 2, endsAt: 100_000 }], leases, () => true)
  // task 2 (ends at 100 s) gets the fast lease; task 1 (40 s left) is not 3x over the slow one (50 s)
  assert.equal(twins, [{ index: 2, leaseId: 'fast' }])
  assert.equal(pickTwins(0, [{ index: 1, endsAt: 3 * 10_000 - 1 }], leases, () => true), [], 'under the gain: no twin')
  assert.equal(pickTwins(0, [{ index: 1, endsAt: 100_000 }], leases, (_, id) => id !== 'fast'), [], 'a lease the task may not use')
  // 4x faster but saving under MIN_TWIN_SAVING_MS: short tasks keep their placement
  assert.equal(pickTwins(0, [{ index: 1, endsAt: 12_000 }], [{ leaseId: 'f', runMs: 3_000, free: 1 }], () => true), [])
  assert.ok(MIN_TWIN_SAVING_MS > 9_000)
  assert.ok(wantsFasterSlot(0, [{ index: 1, endsAt: 100_000 }], 20_000) && !wantsFasterSlot(0, [{ index: 1, endsAt: 100_000 }], 40_000))
  assert.is(SPECULATION_GAIN, 3)
})

test('a copy on a slow lease gets a twin on a fast free lease; the first answer wins, the other is cancelled', () => {
  const m = machine(2)
  m.handleLease(0, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: 10_000 })
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 1, runMs: 100_000 })
  const first = runs(m.pollCommands())
  assert.equal(first.map(c => [c.index, c.provider]), [[0, 'fast'], [1, 'slow']])
  m.handleResult(10_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  // task 1 ends at 100 s on the slow lease (90 s left); on the fast one a copy takes 10 s: 9x sooner
  const twin = runs(m.pollCommands())
  assert.equal(twin.map(c => [c.index, c.provider, c.reason]), [[1, 'fast', 'speculative']])
  m.handleResult(20_000, { index: 1, attempt: twin[0].attempt, ok: true, hash: 'h1' })
  const after = m.pollCommands()
  assert.ok(after.some(c => c.type === 'cancel' && c.index === 1 && c.provider === 'slow'), 'the slow copy is cancelled')
  assert.ok(m.isFinished)
  assert.is(m.progress().speculative, 1)
})

test('a failed twin does not fail its task while the original copy still runs', () => {
  // maxAttempts 1: before, the twin's failure (a liar claiming speed, say) failed the task at once
  const m = machine(2, { maxAttempts: 1 })
  m.handleLease(0, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: 10_000 })
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 1, runMs: 100_000 })
  m.pollCommands()
  m.handleResult(10_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  const twin = runs(m.pollCommands())
  assert.equal(twin.map(c => [c.index, c.provider, c.reason]), [[1, 'fast', 'speculative']])
  m.handleResult(12_000, { index: 1, attempt: twin[0].attempt, ok: false, error: 'boom' })
  m.pollCommands()
  assert.not.ok(m.isFinished, 'the slow copy still runs')
  m.handleResult(100_000, { index: 1, attempt: 1, ok: true, hash: 'h1' })
  m.pollCommands()
  assert.ok(m.isFinished)
  assert.is(m.progress().failed, 0)
  assert.is(m.progress().done, 2)
})

test('no twin without predictions (the job mean rule needs samples) or under the gain', () => {
  for (const fastMs of [undefined, 40_000]) {
    const m = machine(2)
    m.handleLease(0, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: fastMs })
    m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 1, runMs: fastMs === undefined ? undefined : 100_000 })
    m.pollCommands()
    // the fast copy takes what its lease said (a measured time replaces the claim: speed-evidence.ts)
    m.handleResult(fastMs ?? 10_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
    assert.equal(runs(m.pollCommands()), [], `fast lease ${fastMs ?? 'unpredicted'}`)
  }
})

test('a copy past its predicted end counts as needing its whole elapsed time again', () => {
  const m = machine(2)
  m.handleLease(0, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: 10_000 })
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 1, runMs: 20_000 })
  m.pollCommands()
  // at 10 s the slow copy needs 10 s more: no twin (3 x 10 s > 10 s)
  m.handleResult(10_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  assert.equal(runs(m.pollCommands()), [])
  // at 25 s, 5 s past its predicted end: taken to need 25 s more (< 3 x 10 s): no twin
  m.handleTimeout(25_000)
  assert.equal(runs(m.pollCommands()), [])
  // at 40 s: taken to need 40 s more (3 x 10 s <= 40 s): a twin (at half the elapsed time, 20 s, none until 60 s)
  m.handleTimeout(40_000)
  assert.equal(runs(m.pollCommands()).map(c => [c.index, c.reason]), [[1, 'speculative']])
})

test('with only slow leases the job asks for a faster slot (a `more` round) once a round saw one, then waits between rounds', () => {
  const m = machine(1)
  m.handleLease(0, { leaseId: 'S', provider: 'slow', slots: 1, rank: 0, runMs: 600_000 })
  m.pollCommands()
  assert.is(m.leaseWant(), undefined, 'no faster offer seen yet')
  m.noteFastest(10, 10_000)
  assert.is(m.leaseWant(), undefined, 'a round just ran')
  assert.is(m.nextTimeout(), 10 + FASTER_ROUND_GAP_MS, 'the next round for a faster slot is a timeout')
  m.handleTimeout(10 + FASTER_ROUND_GAP_MS)
  assert.is(m.leaseWant(), 'more')
  // the round leases a fast provider: the twin goes there
  m.handleLease(10 + FASTER_ROUND_GAP_MS, { leaseId: 'F', provider: 'fast', slots: 1, rank: 0, runMs: 10_000 })
  assert.equal(runs(m.pollCommands()).map(c => [c.provider, c.reason]), [['fast', 'speculative']])
  m.noteFastest(10 + FASTER_ROUND_GAP_MS, 10_000)
  assert.is(m.leaseWant(), undefined, 'its one copy has a twin: nothing more to gain')
})

test('at the lease cap with copies queued, an idle lease far slower than offers seen is given back', () => {
  const m = machine(4)
  const s = new JobSession(m, new LeaseSearch(), new BudgetLedger(undefined), 2)
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, rank: 0, runMs: 100_000 })
  m.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, rank: 1, runMs: 100_000 })
  m.pollCommands()
  assert.is(s.nextRoundAt(0), undefined, 'at the cap: no round')
  s.handleRound(0, { offers: 1, refusals: [], leased: 0, liveLeases: 2, fastestRunMs: 10_000 })
  m.handleResult(100_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  const cs = m.pollCommands()
  assert.ok(cs.some(c => c.type === 'release-lease' && c.leaseId === 'A'), 'the idle slow lease is given back')
  assert.equal(runs(cs), [], 'no queued copy is committed to it')
  assert.is(s.nextRoundAt(100_000) !== undefined, true, 'a round may now lease a faster provider')
  // below the cap (or with no faster offer seen) the same lease is refilled as before
  const m2 = machine(4)
  const s2 = new JobSession(m2, new LeaseSearch(), new BudgetLedger(undefined), 3)
  m2.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, rank: 0, runMs: 100_000 })
  m2.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, rank: 1, runMs: 100_000 })
  m2.pollCommands()
  s2.handleRound(0, { offers: 1, refusals: [], leased: 0, liveLeases: 2, fastestRunMs: 10_000 })
  m2.handleResult(100_000, { index: 0, attempt: 1, ok: true, hash: 'h0' })
  assert.equal(runs(m2.pollCommands()).map(c => c.provider), ['a'])
})

test.run()
