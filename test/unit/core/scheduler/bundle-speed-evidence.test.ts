import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'
const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')
// review18 F3: a bundle's results come back together when it ends, so each copy's time to its
// answer is its bundle's; the job machine must reckon the lease per copy (copyShare), and must not
// take every copy of a bundle for a straggler.
test('a bundled lease measured per copy', () => {
  const policy: JobPolicy = { taskCount: 400, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 60_000, stragglerFactor: 3 }
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, runMs: 2, bundle: 16 })
  const sent = runs(m.pollCommands())
  // the provider runs the 16 in 2 ms each and writes the 16 results together at the bundle's end
  for (const c of sent) m.handleResult(32, { index: c.index, attempt: c.attempt, ok: true, hash: 'h' })
  const a = (m as any).leases.get('A')
  assert.ok(a.runMs <= 4, `lease A is reckoned at ${a.runMs} ms a copy`)
})

test('copies of a bundle are not stragglers while it runs at the measured pace', () => {
  const policy: JobPolicy = { taskCount: 32, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 60_000, stragglerFactor: 3, stragglerMinSamples: 4 }
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, runMs: 2, bundle: 16 })
  m.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, runMs: 2, bundle: 16 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 32)
  // A's bundle of 16 x 2 ms answers at 32 ms; B's, as fast, is still running then: its copies have
  // taken 2 ms each so far, no straggler, and A's free slot gets no twin of them
  for (const c of sent.filter(c => c.leaseId === 'A')) m.handleResult(32, { index: c.index, attempt: c.attempt, ok: true, hash: 'h' })
  const next = m.pollCommands()
  assert.is(runs(next).filter(c => c.reason === 'speculative').length, 0, 'the copies of a bundle running at its pace were twinned as stragglers')
  // (twins queued behind busy leases ask for more leases)
  assert.equal(next.filter(c => c.type === 'more-leases'), [], 'twins of the copies of a bundle running at its pace were queued')
})

test.run()
