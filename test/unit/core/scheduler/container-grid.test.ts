// The container grid test's CI failure (test/containers/grid.test.ts, 2 cores under load)
// replayed through the job session in virtual time: 9 tasks with the default checks over 3
// providers. Podman under load lost a quick container's stdout and the executor returned the empty
// output as an ok result: its task's copies disagreed, needed 3 agreeing copies, got the third
// provider's, and failed when no fourth existed (copies 19, retries 0, 8 done, as in CI) with a
// reason that blamed the leases. The reason now says what happened; an executor that reports the
// lost output as a failure (src/compute/executors/docker.ts) gets the task retried and done.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, DEFAULT_SPOT_CHECKS, type SearchRound, type JobEvent } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

interface Answer { ok: boolean, hash?: string, error?: string }
type Script = (provider: string, index: number, attempt: number) => Answer | undefined

/** Runs the job: `providers` answer a round each while unleased; copies take their provider's ms. */
function run (providers: Array<{ id: string, ms: number }>, script: Script): { s: JobSession, events: JobEvent[], now: number } {
  const m = new JobMachine({ taskCount: 9, redundancy: 1, quorum: 1, maxAttempts: 4, taskTimeoutMs: 60_000, leaseTimeoutMs: 1e9, stragglerFactor: 3, spotChecks: DEFAULT_SPOT_CHECKS }, new ReputationBook(), createRng(1))
  const s = new JobSession(m, new LeaseSearch({ giveUpMs: 10_000 }), new BudgetLedger(undefined), 64)
  const events: JobEvent[] = []
  const answers: Array<{ at: number, index: number, attempt: number, a: Answer }> = []
  const leased = new Set<string>()
  let now = 0
  for (let step = 0; step < 10_000 && !m.isFinished; step++) {
    s.makeRoom(now)
    for (const c of m.pollCommands()) {
      if (c.type === 'release-lease') leased.delete(c.provider)
      if (c.type !== 'run') continue
      const p = providers.find(x => x.id === c.provider)!
      answers.push({ at: now + p.ms, index: c.index, attempt: c.attempt, a: script(c.provider, c.index, c.attempt) ?? { ok: true, hash: `h${c.index}` } })
    }
    events.push(...s.pollEvents(now))
    const roundAt = s.nextRoundAt(now)
    if (roundAt !== undefined && roundAt <= now) {
      s.startRound()
      let opened = 0
      for (const p of providers) {
        if (leased.has(p.id) || m.avoidedProviders.has(p.id)) continue
        leased.add(p.id)
        m.handleLease(now, { leaseId: `L-${p.id}-${now}`, provider: p.id, slots: 3, runMs: p.ms })
        opened++
      }
      const r: SearchRound = { offers: opened, refusals: [], leased: opened, liveLeases: m.liveLeases().length, ...(opened === 0 ? { unplaced: 'no-candidates' as const } : {}) }
      s.handleRound(now, r)
      continue
    }
    answers.sort((a, b) => a.at - b.at)
    const next = Math.min(answers[0]?.at ?? Infinity, roundAt ?? Infinity, m.nextTimeout() ?? Infinity)
    if (next === Infinity) break
    now = Math.max(now, next)
    while (answers.length > 0 && answers[0].at <= now) {
      const x = answers.shift()!
      s.handleAnswer(now, { index: x.index, attempt: x.attempt }, x.index * 100 + x.attempt, x.a)
    }
    m.handleTimeout(now)
  }
  events.push(...s.pollEvents(now))
  return { s, events, now }
}

const three = [{ id: 'p0', ms: 1800 }, { id: 'p1', ms: 2000 }, { id: 'p2', ms: 2600 }]
const failures = (events: JobEvent[]): Array<{ index: number, reason: string }> =>
  events.filter((e): e is Extract<JobEvent, { type: 'task-failed' }> => e.type === 'task-failed').map(e => ({ index: e.index, reason: e.reason }))

test('an empty output taken as ok (the lost container stdout): the task fails as in CI, and its reason says its copies disagree', () => {
  // task 3's checking copy (its second) comes back empty, as the executor returned it before the fix
  const { s, events } = run(three, (_p, index, attempt) => index === 3 && attempt === 2 ? { ok: true, hash: 'empty' } : undefined)
  const p = s.machine.progress()
  assert.equal({ done: p.done, failed: p.failed, copies: p.copies, retries: p.retries, checks: p.checks, billed: p.billed }, { done: 8, failed: 1, copies: 19, retries: 0, checks: 9, billed: 16 }, 'the CI run\'s figures')
  const f = failures(events)
  assert.is(f.length, 1)
  assert.is(f[0].index, 3)
  assert.match(f[0].reason, /^its copies disagree \(2 different outputs; 2 agree, 3 needed\) and no provider may run another: of the job's 3 leased providers, 3 hold a copy already; no other provider offered$/)
})

test('the same lost output reported as a failure (the fixed executor): the task is retried on the third provider and the job finishes', () => {
  const { s, events } = run(three, (_p, index, attempt) => index === 3 && attempt === 2 ? { ok: false, error: 'EXECUTOR_UNAVAILABLE: the engine did not deliver the container\'s whole output' } : undefined)
  const p = s.machine.progress()
  assert.equal(failures(events), [])
  assert.equal({ done: p.done, failed: p.failed, retries: p.retries }, { done: 9, failed: 0, retries: 1 })
  assert.ok(s.machine.isFinished)
})

test('a task whose every leased provider holds or failed a copy fails saying so, with the last error, not blaming the leases alone', () => {
  const two = three.slice(0, 2)
  // on two providers, task 5's checking copy fails: its retry may run on neither
  const { s, events } = run(two, (_p, index, attempt) => index === 5 && attempt === 2 ? { ok: false, error: 'boom' } : undefined)
  const f = failures(events)
  assert.equal(f.map(x => x.index), [5])
  assert.is(f[0].reason, 'no provider may run another copy (1 of 4 attempts failed): of the job\'s 2 leased providers, 1 holds a copy already and 1 failed it (last: boom); no other provider offered')
  assert.is(s.machine.progress().done, 8)
})

test.run()
