import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { simulate, truth, type FakeProvider } from './sim-driver.js'
import { JobMachine, ReputationBook, type JobPolicy } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const base: JobPolicy = { taskCount: 200, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 500, stragglerFactor: 0 }
const eight = (f: (i: number) => Partial<FakeProvider> = () => ({})): FakeProvider[] => Array.from({ length: 8 }, (_, i) => ({ id: 'p' + i, taskMs: 10 + i, ...f(i) }))

function checkAllCorrect (r: ReturnType<typeof simulate>, n: number): void {
  assert.ok(r.m.isFinished, 'job finished')
  for (let i = 0; i < n; i++) assert.is(r.m.acceptedHash(i), truth(i), `task ${i}`)
  const accepted = r.events.filter(e => e.type === 'accepted').map(e => (e as { index: number }).index)
  assert.is(accepted.length, n, 'each task accepted exactly once')
  assert.is(new Set(accepted).size, n)
}

test('all tasks complete with honest providers, each accepted once and billed once', () => {
  const r = simulate(base, eight())
  checkAllCorrect(r, 200)
  const billed = r.events.filter(e => e.type === 'copy-settled' && e.billed)
  assert.is(billed.length, 200)
})

test('30% of providers die mid-job: leases are lost, tasks reassigned, all correct', () => {
  const r = simulate(base, eight(i => i < 3 ? { diesAt: 100 } : {}))
  checkAllCorrect(r, 200)
  assert.is(r.events.filter(e => e.type === 'lease-lost').length, 3)
  assert.ok(r.m.progress().copies > 200, 'some copies were re-run')
})

test('failing tasks are retried elsewhere; a provider failing repeatedly is avoided', () => {
  const r = simulate({ ...base, maxProviderFailures: 3 }, eight(i => i === 0 ? { failEvery: 1 } : {}))
  checkAllCorrect(r, 200)
  assert.ok(r.m.avoidedProviders.has('p0'))
  assert.ok(r.m.progress().retries >= 3)
})

test('redundancy 3 / quorum 2 with 2 of 8 liars: no wrong result is accepted; liars are avoided', () => {
  const r = simulate({ ...base, redundancy: 3, quorum: 2 }, eight(i => i < 2 ? { liar: true } : {}))
  checkAllCorrect(r, 200)
  const wrong = r.events.filter(e => e.type === 'copy-settled' && e.outcome === 'wrong')
  assert.ok(wrong.length > 0)
  assert.ok(wrong.every(e => (e as { provider: string }).provider === 'p0' || (e as { provider: string }).provider === 'p1'))
  assert.ok(r.events.filter(e => e.type === 'copy-settled' && e.billed).every(e => (e as { provider: string }).provider !== 'p0' && (e as { provider: string }).provider !== 'p1'))
  assert.ok(r.rep.score('p0') < r.rep.score('p5'))
})

test('disagreement with redundancy 2 / quorum 2 adds tie-break copies', () => {
  const r = simulate({ ...base, taskCount: 50, redundancy: 2, quorum: 2 }, eight(i => i === 0 ? { liar: true } : {}))
  checkAllCorrect(r, 50)
  assert.ok(r.m.copiesOf(0).length >= 2)
  const tieBreaks = Array.from({ length: 50 }, (_, i) => r.m.copiesOf(i)).flat().filter(c => c.reason === 'tie-break')
  assert.ok(tieBreaks.length > 0)
})

test('a straggler gets a speculative copy and the job ends sooner', () => {
  const providers = eight(i => i === 0 ? { stallEvery: 7 } : {})
  const slow = simulate({ ...base, taskTimeoutMs: 100_000 }, providers)
  const fast = simulate({ ...base, taskTimeoutMs: 100_000, stragglerFactor: 3, stragglerMinSamples: 5 }, providers)
  checkAllCorrect(fast, 200)
  assert.ok(fast.m.progress().speculative > 0)
  assert.ok(fast.now < slow.now, `${fast.now} < ${slow.now}`)
})

test('adaptive verification: trusted providers get fewer copies', () => {
  const rep = new ReputationBook({ trustAfter: 5 })
  for (let i = 0; i < 8; i++) rep.record('p' + i, 'agreed', 50)
  const full = simulate({ ...base, redundancy: 3, quorum: 2 }, eight())
  const adaptive = simulate({ ...base, redundancy: 3, quorum: 2, adaptive: true, spotCheckRate: 0.1 }, eight(), { reputation: rep })
  checkAllCorrect(adaptive, 200)
  assert.ok(adaptive.m.progress().copies < full.m.progress().copies * 0.6, `${adaptive.m.progress().copies} vs ${full.m.progress().copies}`)
})

test('duplicate and unknown results are not counted', () => {
  const r = simulate({ ...base, taskCount: 5 }, eight())
  const c = r.m.copiesOf(0).find(x => x.outcome === 'agreed')!
  assert.is(r.m.handleResult(r.now, { index: 0, attempt: c.attempt, ok: true, hash: truth(0) }), 'duplicate')
  assert.is(r.m.handleResult(r.now, { index: 0, attempt: 99, ok: true, hash: truth(0) }), 'unknown')
  assert.is(r.m.progress().billed, 5)
})

test('no live lease: the machine asks for more leases and explains why a task waits', () => {
  const r = simulate({ ...base, taskCount: 20 }, eight(() => ({ diesAt: 0 })), { untilMs: 5000 })
  assert.not.ok(r.m.isFinished)
  assert.match(r.m.whyNotRunning(0) ?? '', /no live lease/)
  r.m.handleGiveUp(r.now, 'no providers')
  assert.ok(r.m.isFinished)
  assert.is(r.m.progress().failed, 20)
})

test('restore: accepted tasks stay done, pending votes count, lost copies are re-run', () => {
  const restored = new Map([
    [0, { accepted: 'h0', copies: [{ attempt: 1, provider: 'p0', outcome: 'agreed' as const, hash: 'h0' }] }],
    [1, { copies: [{ attempt: 1, provider: 'p0', outcome: 'pending' as const, hash: 'h1' }, { attempt: 2, provider: 'p1', outcome: 'running' as const }] }]
  ])
  const m = new JobMachine({ ...base, taskCount: 3, redundancy: 2, quorum: 2 }, new ReputationBook(), createRng(1), restored)
  assert.is(m.taskStatus(0), 'done')
  m.handleLease(0, { leaseId: 'L2', provider: 'p2', slots: 4 })
  const runs = m.pollCommands().filter(c => c.type === 'run') as Array<{ index: number, attempt: number }>
  assert.not.ok(runs.some(r => r.index === 0), 'done task not re-run')
  const t1 = runs.find(r => r.index === 1)!
  assert.is(t1.attempt, 3, 'attempt numbers continue after the restart')
  m.handleResult(1, { index: 1, attempt: 3, ok: true, hash: 'h1' })
  assert.is(m.acceptedHash(1), 'h1', 'the vote from before the restart counted')
})

test('copies that never agree: the task fails after maxCopies, nothing is billed', () => {
  const r = simulate({ ...base, taskCount: 3, redundancy: 2, quorum: 2, maxCopies: 4 }, eight(() => ({ liar: true })))
  assert.ok(r.m.isFinished)
  assert.is(r.m.progress().failed, 3)
  assert.is(r.m.progress().billed, 0)
  for (let i = 0; i < 3; i++) assert.ok(r.m.copiesOf(i).length <= 4)
  assert.ok(r.events.some(e => e.type === 'task-failed' && /agree/.test(e.reason)))
})

test('reputation lowers redundancy over time: a second job with the same book sends fewer copies', () => {
  const rep = new ReputationBook({ trustAfter: 20 })
  const policy = { ...base, redundancy: 3, quorum: 2, adaptive: true, spotCheckRate: 0.1 }
  const first = simulate(policy, eight(), { reputation: rep })
  const second = simulate(policy, eight(), { reputation: rep })
  checkAllCorrect(second, 200)
  const full = simulate({ ...policy, adaptive: false }, eight())
  assert.is(full.m.progress().copies, 600)
  // Trust builds up during the first job already, and carries over to the next.
  assert.ok(first.m.progress().copies < 600, `first job: ${first.m.progress().copies} copies`)
  assert.ok(second.m.progress().copies < 0.75 * first.m.progress().copies, `${second.m.progress().copies} vs ${first.m.progress().copies}`)
  assert.ok(second.m.progress().copies >= 200)
})

test.run()
