// Review s12 L11: RESULT_TOO_LARGE (the task's result is above the job's declared
// task.maxResultBytes) counted as an ordinary failed copy, so a job that under-declared its bound had
// up to maxAttempts providers compute the task unpaid, each counted a failure against it, and the
// task ended "5 copies failed". Now from two distinct providers the task fails at once, naming the
// bound; one provider alone cannot (its claim cannot be checked: it is still a failure of its copy).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand, type JobEvent } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const policy: JobPolicy = { taskCount: 1, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 60_000, leaseTimeoutMs: 600_000, stragglerFactor: 0 }
type Run = Extract<JobCommand, { type: 'run' }>
const runs = (m: JobMachine): Run[] => m.pollCommands().filter((c): c is Run => c.type === 'run')

function machine (providers: string[]): JobMachine {
  const m = new JobMachine(policy, new ReputationBook(), createRng(7))
  providers.forEach((p, i) => { m.handleLease(0, { leaseId: `l${i}`, provider: p, slots: 1 }) })
  return m
}

test('RESULT_TOO_LARGE from two distinct providers fails the task at once, naming task.maxResultBytes', () => {
  const m = machine(['p1', 'p2', 'p3', 'p4', 'p5'])
  const seen = new Set<string>()
  let now = 1
  let run = runs(m)[0]
  const events: JobEvent[] = []
  for (let i = 0; i < 5 && run !== undefined; i++) {
    seen.add(run.provider)
    m.handleResult(now++, { index: run.index, attempt: run.attempt, ok: false, error: 'RESULT_TOO_LARGE: above the bound', code: 'RESULT_TOO_LARGE' })
    events.push(...m.pollEvents())
    run = runs(m)[0]
  }
  const failed = events.find((e): e is Extract<JobEvent, { type: 'task-failed' }> => e.type === 'task-failed')
  assert.ok(failed !== undefined, 'the task failed')
  assert.is(seen.size, 2, `two providers computed it, not ${seen.size}`)
  assert.match(failed.reason, /task\.maxResultBytes/)
})

test('one provider answering RESULT_TOO_LARGE alone does not fail the task: another runs it', () => {
  const m = machine(['p1', 'p2'])
  const first = runs(m)[0]
  m.handleResult(1, { index: first.index, attempt: first.attempt, ok: false, error: 'RESULT_TOO_LARGE', code: 'RESULT_TOO_LARGE' })
  const second = runs(m)[0]
  assert.ok(second !== undefined, 'retried')
  assert.is.not(second.provider, first.provider)
  m.handleResult(2, { index: second.index, attempt: second.attempt, ok: true, hash: 'aa' })
  assert.is(m.taskStatus(0), 'done')
})

test.run()
