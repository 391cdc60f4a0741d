import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { MAX_ROUNDS_SAT_OUT, RoundCoordinator, type CoordinatorOutput, type RoundReport } from '../../../../src/core/training/coordinator.js'
import { DEFAULT_DEADLINE_POLICY, INITIAL_DEADLINE_STATE, observeRoundTime, roundDeadline } from '../../../../src/core/training/deadline.js'

const report = (round: number, extra: Partial<RoundReport> = {}): RoundReport => ({ round, loss: 1, accuracy: NaN, computeMs: 10, samples: 32, timedOut: false, dropped: [], bytesSent: 100, ...extra })
const of = <K extends CoordinatorOutput['kind']>(out: CoordinatorOutput[], kind: K) => out.filter(o => o.kind === kind) as Array<Extract<CoordinatorOutput, { kind: K }>>

test('deadline follows the EWMA of round times × factor + margin, clamped', () => {
  const p = { ...DEFAULT_DEADLINE_POLICY, initialMs: 5000, factor: 2, marginMs: 100, alpha: 0.5, minMs: 300, maxMs: 10_000 }
  let s = INITIAL_DEADLINE_STATE
  assert.is(roundDeadline(s, p), 5000)
  s = observeRoundTime(s, 400, p)
  assert.is(roundDeadline(s, p), 900)
  s = observeRoundTime(s, 800, p)
  assert.is(roundDeadline(s, p), 1300) // ewma 600
  s = observeRoundTime(s, 100_000, p)
  assert.is(roundDeadline(s, p), 10_000)
  s = observeRoundTime(INITIAL_DEADLINE_STATE, 1, p)
  assert.is(roundDeadline(s, p), 300)
})

test('rounds advance when every member reports; deadlines adapt to the measured times', () => {
  const c = new RoundCoordinator({ members: ['a', 'b'], rounds: 3, deadline: { initialMs: 10_000, factor: 2, marginMs: 0, alpha: 1 } })
  c.start(0)
  let out = c.poll()
  assert.equal(of(out, 'roundStart')[0], { kind: 'roundStart', to: ['a', 'b'], round: 0, members: ['a', 'b'], deadlineMs: 10_000 })
  c.handleReport(200, 'a', report(0))
  c.handleReport(400, 'b', report(0, { accuracy: 0.5 }))
  out = c.poll()
  assert.is(of(out, 'metered').length, 2)
  assert.is(of(out, 'progress')[0].roundMs, 400)
  assert.is(of(out, 'progress')[0].accuracy, 0.5)
  assert.is(of(out, 'roundStart')[0].deadlineMs, 800)
  c.handleReport(500, 'a', report(1)); c.handleReport(700, 'b', report(1))
  c.handleReport(800, 'a', report(2)); c.handleReport(900, 'b', report(2))
  out = c.poll()
  assert.equal(of(out, 'finish')[0], { kind: 'finish', to: ['a', 'b'], round: 2, modelFrom: 'a' })
  assert.ok(c.done)
})

test('a silent member is dropped at the deadline; a slow round does not stretch later deadlines', () => {
  const c = new RoundCoordinator({ members: ['a', 'b', 'c'], rounds: 5, reportGraceMs: 100, deadline: { initialMs: 1000, factor: 2, marginMs: 0, alpha: 1 } })
  c.start(0)
  c.poll()
  for (const p of ['a', 'b', 'c']) c.handleReport(300, p, report(0))
  assert.is(of(c.poll(), 'roundStart')[0].deadlineMs, 600)
  c.handleReport(900, 'a', report(1, { timedOut: true, dropped: ['c'] }))
  c.handleReport(900, 'b', report(1, { timedOut: true, dropped: ['c'] }))
  assert.is(c.nextTimeout(), 300 + 600 + 100)
  c.handleTimeout(1000)
  const out = c.poll()
  assert.equal(of(out, 'progress')[0].dropped, ['c'])
  const next = of(out, 'roundStart')[0]
  assert.equal(next.members, ['a', 'b'])
  assert.is(next.deadlineMs, 600)
})

test('a late or replacement peer joins at the next round; too few members fail the job', () => {
  const c = new RoundCoordinator({ members: ['a', 'b'], rounds: 10, minMembers: 2, reportGraceMs: 0, deadline: { initialMs: 1000 } })
  c.start(0)
  c.poll()
  c.handleJoin(10, 'z')
  c.handleReport(100, 'a', report(0)); c.handleReport(100, 'b', report(0))
  assert.equal(of(c.poll(), 'roundStart')[0].members, ['a', 'b', 'z'])
  c.handleReport(200, 'a', report(1))
  c.handleTimeout(10_000)
  const out = c.poll()
  assert.is(of(out, 'failed').length, 1)
  assert.ok(c.done)
})

test('a member that sits a round out and asks again stays in for the next round; a silent one is dropped', () => {
  const c = new RoundCoordinator({ members: ['a', 'b', 'z'], rounds: 10, minMembers: 2, reportGraceMs: 0, deadline: { initialMs: 1000 } })
  c.start(0)
  c.poll()
  c.handleJoin(10, 'a') // a member that already reported, or is fine, gains nothing from asking
  c.handleReport(50, 'a', report(0))
  c.handleJoin(60, 'a')
  c.handleJoin(70, 'z') // z could not load the state: it sits round 0 out and asks to be in round 1
  c.handleReport(100, 'b', report(0))
  c.handleTimeout(2000)
  let out = c.poll()
  assert.equal(of(out, 'progress')[0].dropped, ['z'])
  assert.equal(of(out, 'roundStart')[0].members, ['a', 'b', 'z'])
  c.handleReport(2100, 'a', report(1)); c.handleReport(2100, 'b', report(1))
  c.handleTimeout(10_000) // z silent and did not ask: out
  out = c.poll()
  assert.equal(of(out, 'roundStart')[0].members, ['a', 'b'])
})

test('a member that sits out more than MAX_ROUNDS_SAT_OUT rounds in a row is let go', () => {
  const c = new RoundCoordinator({ members: ['a', 'b', 'z'], rounds: 100, minMembers: 2, reportGraceMs: 0, deadline: { initialMs: 1000 } })
  c.start(0)
  c.poll()
  let now = 0
  const rounds: string[][] = []
  for (let r = 0; r <= MAX_ROUNDS_SAT_OUT; r++) {
    c.handleJoin(now + 1, 'z')
    c.handleReport(now + 2, 'a', report(r)); c.handleReport(now + 2, 'b', report(r))
    now += 2000
    c.handleTimeout(now)
    rounds.push(of(c.poll(), 'roundStart')[0]?.members ?? [])
  }
  assert.equal(rounds[MAX_ROUNDS_SAT_OUT - 1], ['a', 'b', 'z'])
  assert.equal(rounds[MAX_ROUNDS_SAT_OUT], ['a', 'b'])
  // asking again once let go does not start the count over
  c.handleJoin(now + 1, 'z')
  c.handleReport(now + 2, 'a', report(MAX_ROUNDS_SAT_OUT + 1)); c.handleReport(now + 2, 'b', report(MAX_ROUNDS_SAT_OUT + 1))
  assert.equal(of(c.poll(), 'roundStart')[0].members, ['a', 'b'])
})

test('a member\'s report names only round members as dropped: junk and strangers in its list are ignored (review s13 M3)', () => {
  const c = new RoundCoordinator({ members: ['a', 'b', 'c'], rounds: 3, deadline: { initialMs: 10_000 } })
  c.start(0)
  c.poll()
  const junk = Array.from({ length: 100_000 }, (_, i) => `\u001b[2J${i}`)
  c.handleReport(100, 'a', report(0, { dropped: [...junk, 'stranger', 'b'] }))
  c.handleReport(110, 'b', report(0))
  c.handleReport(120, 'c', report(0, { dropped: ['c', 'a'] }))
  const progress = of(c.poll(), 'progress')[0]
  assert.equal([...progress.dropped].sort(), ['a', 'c'])
})

test.run()
