// A copy whose route failed (stream reset, relay killed) is lost, not failed: the provider may run
// the task again (a relay kill once failed tasks with "no leased provider may run it"), but a
// provider that never answers is avoided and a task cannot lose copies for ever.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const policy: JobPolicy = { taskCount: 1, redundancy: 1, quorum: 1, maxAttempts: 2, taskTimeoutMs: 60_000, leaseTimeoutMs: 600_000, stragglerFactor: 0, maxProviderFailures: 100 }
type Run = Extract<JobCommand, { type: 'run' }>
const runs = (m: JobMachine): Run[] => m.pollCommands().filter((c): c is Run => c.type === 'run')

test('a copy with no answer is re-run on the same provider once a heartbeat shows its route works, and the task completes', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  let r = runs(m)
  assert.is(r.length, 1)
  for (let i = 1; i <= 4; i++) {
    m.handleResult(i, { index: 0, attempt: r[0].attempt, ok: false, error: 'stream reset', unreachable: true })
    // the lease is suspended: a dead route would lose every copy sent on it, one after another
    assert.is(runs(m).length, 0, 'nothing goes out on the lease before a heartbeat')
    assert.not.ok(m.handleHeartbeat(i, 'l1'), 'a heartbeat as old as the loss proves nothing')
    assert.ok(m.handleHeartbeat(i + 0.5, 'l1'), 'a later heartbeat resumes the lease')
    r = runs(m)
    assert.is(r.length, 1, `copy ${i + 1} goes out again`)
    assert.is(r[0].provider, 'p1')
  }
  assert.is(m.handleResult(10, { index: 0, attempt: r[0].attempt, ok: true, hash: 'aa' }), 'agreed')
  assert.is(m.taskStatus(0), 'done')
})

test('a failed copy (the provider answered an error) still bars the provider from the task', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  const r = runs(m)
  m.handleResult(1, { index: 0, attempt: r[0].attempt, ok: false, error: 'TASK_FAILED: trap' })
  assert.is(runs(m).length, 0, 'no second copy on p1')
})

test('losses are bounded: a task fails after 3 x maxAttempts lost copies; a provider losing them in a row is avoided', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  let r = runs(m)
  let n = 0
  while (r.length > 0 && n < 50) {
    m.handleResult(n + 1, { index: 0, attempt: r[0].attempt, ok: false, error: 'stream reset', unreachable: true })
    m.handleHeartbeat(n + 1.5, 'l1')
    r = runs(m); n++
  }
  assert.is(n, 6, 'six copies lost (3 x maxAttempts 2)')
  assert.is(m.taskStatus(0), 'failed')

  const m2 = new JobMachine({ ...policy, maxProviderFailures: 3 }, new ReputationBook(), createRng(1))
  m2.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  r = runs(m2)
  for (let i = 0; i < 3 && r.length > 0; i++) { m2.handleResult(i + 1, { index: 0, attempt: r[0].attempt, ok: false, error: 'reset', unreachable: true }); m2.handleHeartbeat(i + 1.5, 'l1'); r = runs(m2) }
  assert.ok(m2.avoidedProviders.has('p1'), 'p1 avoided after 3 losses in a row')
})

test('copies out together when a route breaks are one failure; their late "no answer" keeps them lost', () => {
  const m = new JobMachine({ ...policy, taskCount: 6, maxProviderFailures: 3 }, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 6 })
  const r = runs(m)
  assert.is(r.length, 6)
  // the relay dies: every stream resets
  for (const [i, c] of r.entries()) m.handleResult(10 + i, { index: c.index, attempt: c.attempt, ok: false, error: 'stream reset', unreachable: true })
  assert.not.ok(m.avoidedProviders.has('p1'), 'six copies lost in one outage: one failure, not six')
  assert.is(runs(m).length, 0, 'the lease is suspended')
  // the lease times out with no heartbeat: lost; a copy's "no answer" arriving after that keeps it lost
  m.handleLease(20, { leaseId: 'l2', provider: 'p1', slots: 1 })
  const [c] = runs(m)
  m.handleLeaseLost(30, 'l2', 'no heartbeat')
  assert.is(m.handleResult(31, { index: c.index, attempt: c.attempt, ok: false, error: 'stream reset', unreachable: true }), 'lost')
  assert.is(m.copiesOf(c.index).find(x => x.attempt === c.attempt)?.outcome, 'lost', 'not failed: p1 may still run the task')
})

test.run()
