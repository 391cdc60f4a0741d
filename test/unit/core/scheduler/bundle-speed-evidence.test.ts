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
  const policy: JobPolicy = { taskCount: 48, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 60_000, stragglerFactor: 3, stragglerMinSamples: 4 }
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'A', provider: 'a', slots: 1, runMs: 2, bundle: 16 })
  m.handleLease(0, { leaseId: 'B', provider: 'b', slots: 1, runMs: 2, bundle: 16 })
  const first = runs(m.pollCommands())
  assert.is(first.filter(c => c.leaseId === 'A').length, 16)
  assert.is(first.filter(c => c.leaseId === 'B').length, 16)
  // A's bundle of 16 x 2 ms answers at 32 ms; the job's last 16 copies then go to A one at a time
  // (a job's tail is not bundled), 2 ms each, while B's bundle has not answered yet: up to 64 ms for
  // its 16 copies, 4 ms a copy, no straggler against the 2 ms mean (3 x 2 ms a copy is)
  let now = 32
  let commands: JobCommand[]
  for (const c of first.filter(c => c.leaseId === 'A')) m.handleResult(now, { index: c.index, attempt: c.attempt, ok: true, hash: 'h' })
  const twins: string[] = []
  for (let guard = 0; guard < 100; guard++) {
    commands = m.pollCommands()
    twins.push(...runs(commands).filter(c => c.reason === 'speculative').map(c => `${c.index}@${c.leaseId}`))
    twins.push(...commands.filter(c => c.type === 'more-leases').map(c => (c as { reason: string }).reason))
    const onA = runs(commands).filter(c => c.leaseId === 'A' && c.reason !== 'speculative')
    if (onA.length === 0) break
    now += 2 * onA.length
    for (const c of onA) m.handleResult(now, { index: c.index, attempt: c.attempt, ok: true, hash: 'h' })
  }
  // B's bundle took no more than 4 ms a copy so far (under 3 x the 2 ms mean)
  assert.ok(now <= 64, `the test's tail ran to ${now} ms`)
  assert.equal(twins, [], 'the copies of a bundle running at its pace were twinned as stragglers')
})

test.run()
