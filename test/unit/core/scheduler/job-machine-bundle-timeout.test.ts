// review18 F2: the copies of a lease with TaskBundles all go out with the task's timeout, but the
// provider runs a bundle's tasks one after another in ONE slot and writes their results together
// when the bundle ends (task-lease-stream.ts), cutting it only at TASK_BUNDLE_CUT_MS: an honest
// bundle answers up to TASK_BUNDLE_CUT_MS + the task timeout after it starts. A job whose tasks
// have a timeout under that (tiny tasks, a tight manifest task.timeoutMs) timed out every copy of
// an honest provider's bundle (a reputation 'timeout' each, a failure counted per task) while its
// results were on their way.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

test('an honest bundle slower in total than one task\'s timeout: its copies are not timed out before the provider may answer', () => {
  const policy: JobPolicy = { taskCount: 64, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 200, leaseTimeoutMs: 60_000, stragglerFactor: 0 }
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'B', provider: 'p', slots: 1, runMs: 1, bundle: 16 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 16)
  // the provider runs the 16 one after another, 15 ms each (each well inside its 200 ms timeout):
  // the bundle ends at 240 ms, under its 1 s cut, and its 16 results go out together then
  m.handleTimeout(239)
  const timedOut = sent.filter(c => m.copiesOf(c.index).find(x => x.attempt === c.attempt)?.outcome === 'timeout')
  assert.is(timedOut.length, 0, `${timedOut.length} copies of an honest bundle timed out before it could answer`)
  for (const c of sent) m.handleResult(240, { index: c.index, attempt: c.attempt, ok: true, hash: 'h' })
  assert.ok(sent.every(c => m.copiesOf(c.index).find(x => x.attempt === c.attempt)?.outcome === 'agreed'), 'each copy ended by its result')
})

test('a lease without bundles keeps the task timeout for the copies in its slots', () => {
  const policy: JobPolicy = { taskCount: 200, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 60_000, stragglerFactor: 0 }
  const o = new JobMachine(policy, new ReputationBook(), createRng(1))
  o.handleLease(0, { leaseId: 'O', provider: 'old', slots: 2, runMs: 5 })
  const plain = runs(o.pollCommands())
  assert.is(plain.length, 2)
  assert.ok(plain.every(c => o.copiesOf(c.index).find(x => x.attempt === c.attempt)?.timeoutMs === undefined))
})

test.run()
