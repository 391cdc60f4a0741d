// Review s12 L11: RESULT_TOO_LARGE (the task's result is above the job's declared
// task.maxResultBytes) counted as an ordinary failed copy, so a job that under-declared its bound had
// up to maxAttempts providers compute the task unpaid, each counted a failure against it, and the
// task ended "5 copies failed". Now from two distinct providers the task fails at once, naming the
// bound, when the job declared one and one of them delivered an agreed result in this job (review s13
// M1: the claim cannot be checked, and two fresh identities answering it to every copy failed any
// task); one provider alone cannot (it is still a failure of its copy).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand, type JobEvent } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const policy: JobPolicy = { taskCount: 1, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 60_000, leaseTimeoutMs: 600_000, stragglerFactor: 0, declaredResultBound: true }
type Run = Extract<JobCommand, { type: 'run' }>
const runs = (m: JobMachine): Run[] => m.pollCommands().filter((c): c is Run => c.type === 'run')
const TOO_LARGE = { ok: false as const, error: 'RESULT_TOO_LARGE: above the bound', code: 'RESULT_TOO_LARGE' }

function machine (providers: string[], p: Partial<JobPolicy> = {}): JobMachine {
  const m = new JobMachine({ ...policy, ...p }, new ReputationBook(), createRng(7))
  providers.forEach((p, i) => { m.handleLease(0, { leaseId: `l${i}`, provider: p, slots: 1, rank: i }) })
  return m
}

test('RESULT_TOO_LARGE from two distinct providers, one with an agreed result in the job, fails the task at once, naming task.maxResultBytes', () => {
  const m = machine(['p1', 'p2'], { taskCount: 2 })
  const events: JobEvent[] = []
  const onTask1 = new Set<string>()
  let now = 1
  for (let i = 0; i < 10; i++) {
    const rs = runs(m)
    if (rs.length === 0) break
    for (const r of rs) {
      if (r.index === 0) m.handleResult(now++, { index: 0, attempt: r.attempt, ok: true, hash: 'aa' })
      else { onTask1.add(r.provider); m.handleResult(now++, { index: 1, attempt: r.attempt, ...TOO_LARGE }) }
    }
    events.push(...m.pollEvents())
  }
  const failed = events.find((e): e is Extract<JobEvent, { type: 'task-failed' }> => e.type === 'task-failed')
  assert.ok(failed !== undefined, 'task 1 failed')
  assert.is(onTask1.size, 2, `two providers computed it, not ${onTask1.size}`)
  assert.match(failed.reason, /task\.maxResultBytes/)
  assert.is(m.taskStatus(0), 'done')
})

test('two identities that answer RESULT_TOO_LARGE to every copy, with no agreed result, cannot fail a task: honest providers finish it', () => {
  for (const declared of [true, false]) {
    const m = machine(['s1', 's2', 'h1', 'h2'], { declaredResultBound: declared })
    let now = 1
    for (let i = 0; i < 10 && m.taskStatus(0) !== 'done' && m.taskStatus(0) !== 'failed'; i++) {
      for (const r of runs(m)) m.handleResult(now++, r.provider.startsWith('s') ? { index: r.index, attempt: r.attempt, ...TOO_LARGE } : { index: r.index, attempt: r.attempt, ok: true, hash: 'aa' })
    }
    assert.is(m.taskStatus(0), 'done', `declared bound ${String(declared)}`)
  }
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
