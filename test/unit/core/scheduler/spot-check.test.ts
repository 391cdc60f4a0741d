import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { simulate, truth, type FakeProvider } from './sim-driver.js'
import { JobMachine, ReputationBook, DEFAULT_SPOT_CHECKS, needsCheck, deferCheckTo, established, type JobPolicy, type JobEvent } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

// The default checks: redundancy 1, spot checks on (what a manifest with no verification section runs).
const checked: JobPolicy = { taskCount: 400, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 500, stragglerFactor: 0, spotChecks: { ...DEFAULT_SPOT_CHECKS } }
const ten = (f: (i: number) => Partial<FakeProvider> = () => ({})): FakeProvider[] => Array.from({ length: 10 }, (_, i) => ({ id: 'p' + i, taskMs: 10 + i, ...f(i) }))
const ev = <T extends JobEvent['type']>(r: { events: JobEvent[] }, type: T): Array<Extract<JobEvent, { type: T }>> => r.events.filter(e => e.type === type) as Array<Extract<JobEvent, { type: T }>>

/** Every task accepted with the true result; billed copies net of revocations never belong to a liar. */
function noWrongAccepted (r: ReturnType<typeof simulate>, n: number, liars: ReadonlySet<string>): void {
  assert.ok(r.m.isFinished, 'job finished')
  assert.is(r.m.progress().done, n, 'every task done')
  for (let i = 0; i < n; i++) assert.is(r.m.acceptedHash(i), truth(i), `task ${i}`)
  const billed = new Map<string, number>()
  for (const e of ev(r, 'copy-settled')) {
    const k = `${e.index}:${e.attempt}`
    if (e.billed) billed.set(k, 1)
    if (e.revoked === true) billed.delete(k)
    if (liars.has(e.provider) && billed.has(k)) {
      // a liar's copy may be billed only until it is caught (then revoked)
      assert.ok(ev(r, 'provider-caught').some(c => c.provider === e.provider), `${e.provider} billed and never caught`)
    }
  }
  for (const [k] of billed) {
    const [index, attempt] = k.split(':').map(Number)
    const c = r.m.copiesOf(index).find(x => x.attempt === attempt)!
    assert.not.ok(liars.has(c.provider), `liar ${c.provider} still billed for task ${index}`)
    assert.is(c.hash, truth(index))
  }
}

test('no verification section: 2 of 10 providers lie, no wrong result is accepted and both are caught', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const r = simulate(checked, ten(i => i === 3 || i === 7 ? { liar: true } : {}), { seed })
    noWrongAccepted(r, 400, new Set(['p3', 'p7']))
    const caught = ev(r, 'provider-caught').map(e => e.provider).sort()
    assert.equal(caught, ['p3', 'p7'], `seed ${seed}`)
    assert.ok(r.m.avoidedProviders.has('p3') && r.m.avoidedProviders.has('p7'))
    assert.is(r.rep.streak('p3'), 0)
    assert.ok(r.rep.score('p3') < 0.2, `caught provider's score ${r.rep.score('p3')}`)
  }
})

test('with honest providers, checks fall from every task to the spot-check share as records build up', () => {
  const rep = new ReputationBook()
  const first = simulate(checked, ten(), { reputation: rep })
  assert.is(first.m.progress().done, 400)
  const firstCopies = first.m.progress().copies / 400
  // each provider needs trustAfter confirmed results before its tasks are only spot-checked
  assert.ok(firstCopies > 1.2 && firstCopies <= 2, `first job: ${firstCopies} copies per task`)
  for (let i = 0; i < 10; i++) assert.ok(established(rep, 'p' + i, DEFAULT_SPOT_CHECKS), `p${i} established`)
  const second = simulate(checked, ten(), { reputation: rep, seed: 9 })
  const secondCopies = second.m.progress().copies / 400
  assert.ok(secondCopies > 1.03 && secondCopies < 1.2, `second job: ${secondCopies} copies per task (1 + rate = 1.1 expected)`)
  assert.is(ev(second, 'provider-caught').length, 0)
})

test('an established provider that starts lying is caught by a spot check; its unchecked results are re-run', () => {
  const rep = new ReputationBook()
  simulate(checked, ten(), { reputation: rep }) // every provider builds a record
  const r = simulate({ ...checked, taskCount: 600 }, ten(i => i === 0 ? { liesAfter: 5 } : {}), { reputation: rep, seed: 4 })
  assert.equal(ev(r, 'provider-caught').map(e => e.provider), ['p0'])
  const reopened = ev(r, 'task-reopened')
  assert.ok(reopened.length > 0, 'results accepted unchecked from p0 were reopened')
  noWrongAccepted(r, 600, new Set(['p0']))
  assert.ok(ev(r, 'copy-settled').some(e => e.revoked === true && e.provider === 'p0'), 'p0 billed copies revoked')
  assert.not.ok(established(rep, 'p0', DEFAULT_SPOT_CHECKS))
})

test('colluding liars (same wrong value) among established honest providers: checks go to the established ones; no wrong result', () => {
  const rep = new ReputationBook()
  simulate(checked, ten(), { reputation: rep })
  // two newcomers that agree with each other on every lie
  const ps = [...ten(), { id: 'x1', taskMs: 5, colluder: true }, { id: 'x2', taskMs: 5, colluder: true }]
  for (const seed of [1, 2, 3]) {
    const r = simulate(checked, ps, { reputation: ReputationBook.fromJSON(rep.toJSON()), seed })
    noWrongAccepted(r, 400, new Set(['x1', 'x2']))
    assert.equal(ev(r, 'provider-caught').map(e => e.provider).sort(), ['x1', 'x2'])
  }
})

test('colluding liars and no one established yet: a pair that agreed is undone once either is caught', () => {
  let held = 0
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    const r = simulate(checked, ten(i => i < 2 ? { colluder: true } : {}), { seed })
    const wrong = Array.from({ length: 400 }, (_, i) => i).filter(i => r.m.acceptedHash(i) !== truth(i))
    if (wrong.length === 0) held++
    assert.equal(ev(r, 'provider-caught').map(e => e.provider).sort(), ['p0', 'p1'], `seed ${seed}: both colluders caught, no honest provider`)
  }
  // not a guarantee before anyone is established (README: known limits), but it holds here
  assert.is(held, 6, `${held}/6 seeds with no wrong result`)
})

test('a colluding pair that agrees on one task and then goes away: the job audits that task before it ends', () => {
  let audited = 0
  for (let seed = 1; seed <= 30; seed++) {
    // p0 and p1 return the same wrong value and stop after their first results: nothing they ran
    // disagrees with an honest copy, so neither is ever caught
    const r = simulate({ ...checked, taskCount: 100 }, ten(i => i < 2 ? { colluder: true, diesAt: 12 } : {}), { seed })
    assert.ok(r.m.isFinished, `seed ${seed}: finished`)
    for (let i = 0; i < 100; i++) assert.is(r.m.acceptedHash(i), truth(i), `seed ${seed}: task ${i}`)
    if (ev(r, 'task-reopened').some(e => e.reason.includes('not established'))) audited++
  }
  assert.ok(audited > 0, 'some seed paired the two on a task (the audit ran)')
})

test('verification off (the explicit opt-out): a liar with redundancy 1 is believed', () => {
  const { spotChecks: _, ...off } = checked
  const r = simulate(off, ten(i => i === 0 ? { liar: true } : {}))
  assert.ok(r.m.isFinished)
  assert.ok(Array.from({ length: 400 }, (_, i) => i).some(i => r.m.acceptedHash(i) !== truth(i)), 'wrong results accepted')
  assert.is(r.m.progress().copies, 400)
})

test('one provider only: a task that needs a check is not accepted on a single copy', () => {
  const r = simulate({ ...checked, taskCount: 5 }, [{ id: 'solo', taskMs: 10 }], { untilMs: 5000 })
  assert.not.ok(r.m.isFinished)
  assert.match(r.m.whyNotRunning(0) ?? '', /already holds a copy/)
  for (let i = 0; i < 5; i++) assert.is(r.m.acceptedHash(i), undefined, `task ${i} accepted on one copy`)
  assert.ok(r.events.some(e => e.type === 'copy-settled') === false, 'its copies wait for a second opinion')
})

test('restore: with the default checks a single pending copy from before the restart is checked, not accepted', () => {
  const restored = new Map([[0, { copies: [{ attempt: 1, provider: 'p0', outcome: 'pending' as const, hash: 'h0' }] }]])
  const m = new JobMachine({ ...checked, taskCount: 1 }, new ReputationBook(), createRng(1), restored)
  assert.is.not(m.taskStatus(0), 'done')
  m.handleLease(0, { leaseId: 'L1', provider: 'p1', slots: 2 })
  const run = m.pollCommands().find(c => c.type === 'run') as { index: number, attempt: number, reason: string }
  assert.is(run.attempt, 2)
  m.handleResult(1, { index: 0, attempt: 2, ok: true, hash: 'h0' })
  assert.is(m.acceptedHash(0), 'h0')
  // the output kept is the copy that answered in this run (the restored one's output is gone)
  const acc = m.pollEvents().find(e => e.type === 'accepted') as { attempt: number }
  assert.is(acc.attempt, 2)
})

test('sans-IO rules: new providers are always checked, established ones at the rate; checks wait for an established provider', () => {
  const rep = new ReputationBook()
  const p = { rate: 0.25, trustAfter: 3 }
  const rng = createRng(7)
  assert.ok(needsCheck(rep, 'a', p, rng))
  for (let i = 0; i < 3; i++) rep.confirmed('a')
  assert.ok(established(rep, 'a', p))
  let n = 0
  for (let i = 0; i < 4000; i++) if (needsCheck(rep, 'a', p, rng)) n++
  assert.ok(n > 850 && n < 1150, `${n} of 4000 checked at rate 0.25`)
  assert.ok(deferCheckTo(rep, 'b', p, ['a', 'b']), 'new b defers to established a')
  assert.not.ok(deferCheckTo(rep, 'a', p, ['a']), 'an established provider runs it')
  assert.not.ok(deferCheckTo(rep, 'b', p, ['b', 'c']), 'no one established: run it')
  rep.caught('a')
  assert.not.ok(established(rep, 'a', p), 'caught: the record is gone')
  assert.is(rep.get('a').caught, 1)
})

test.run()
