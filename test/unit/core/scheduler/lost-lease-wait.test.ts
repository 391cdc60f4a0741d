// A relay killed mid-job (issue 14): every lease dies with it, and for a while only providers
// that will never take the tasks answer (over-priced relays: OVER_PRICE, a "never" refusal) while
// the NATed providers re-reserve on another relay. A provider whose lease was just lost to a route
// failure is "not now", like a busy one: the job waits up to task.waitS for it instead of failing
// its tasks "not placed" after the 10 s give-up (what the quick NAT relay test saw: 4 of 16 failed).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, type SearchRound, type JobCommand, type JobEvent } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

type Run = Extract<JobCommand, { type: 'run' }>
const round = (r: Partial<SearchRound>): SearchRound => ({ offers: 0, refusals: [], leased: 0, liveLeases: 0, ...r })
const runs = (cmds: JobCommand[]): Run[] => cmds.filter((c): c is Run => c.type === 'run')
// only the relays answer, and refuse for good
const relaysOnly = (): SearchRound => round({ refusals: ['OVER_PRICE', 'OVER_PRICE'], unplaced: 'all-refused', lastRefusal: 'OVER_PRICE: price 100000 per slot-hour is above the requester\'s maximum 200', answered: ['relay1', 'relay2'] })

function session (tasks: number, waitMs = 600_000): JobSession {
  const m = new JobMachine({ taskCount: tasks, redundancy: 1, quorum: 1, maxAttempts: 8, taskTimeoutMs: 1e9, leaseTimeoutMs: 2000, stragglerFactor: 0, maxProviderFailures: 3 }, new ReputationBook(), createRng(1))
  return new JobSession(m, new LeaseSearch({ giveUpMs: 10_000, retryMs: 250, maxRetryMs: 5000, waitMs }), new BudgetLedger(undefined))
}

/** Runs search rounds from `now` until `until`, each answered by `answer`; returns the time reached (events go to `seen`). */
function searchUntil (s: JobSession, now: number, until: number, answer: (at: number) => SearchRound, seen: JobEvent[] = []): number {
  for (let at = s.nextRoundAt(now); at !== undefined && at < until; at = s.nextRoundAt(now)) {
    now = Math.max(now, at)
    s.startRound()
    s.handleRound(now, answer(now))
    seen.push(...s.pollEvents(now))
  }
  return now
}

/** Two providers leased with four slots each, 16 tasks: 8 copies out when the relay dies. */
function leasedAndRunning (s: JobSession): Run[] {
  const m = s.machine
  assert.is(s.nextRoundAt(0), 0)
  s.startRound()
  m.handleLease(100, { leaseId: 'La', provider: 'provider-a', slots: 4 })
  m.handleLease(100, { leaseId: 'Lb', provider: 'provider-b', slots: 4 })
  s.handleRound(100, round({ offers: 2, leased: 2, liveLeases: 2, answered: ['provider-a', 'provider-b'] }))
  const out = runs(m.pollCommands())
  s.pollEvents(100)
  assert.is(out.length, 8)
  return out
}

/** relay1 dies at 1000: every copy's stream resets (no answer), then both leases miss their heartbeats. */
function relayKilled (s: JobSession, out: Run[]): void {
  for (const [i, c] of out.entries()) s.handleAnswer(1000 + i, c, c.index * 65536 + c.attempt, { ok: false, error: 'stream reset', unreachable: true })
  s.machine.handleTimeout(3200)
  s.pollEvents(3200)
  s.machine.pollCommands()
}

test('leases lost with a relay, only never-refusals for 15 s, the providers come back: every task placed, none failed', () => {
  const s = session(16)
  const m = s.machine
  relayKilled(s, leasedAndRunning(s))
  assert.is(m.liveLeases().length, 0, 'both leases died with the relay')
  assert.is(m.leaseWant(), 'starved')
  assert.equal(m.avoidedProviders, new Set(), 'eight copies lost in one outage are one failure per provider, not eight')
  // 15 s of rounds where only the over-priced relays answer (the old give-up was 10 s)
  const now = searchUntil(s, 3200, 18_200, relaysOnly)
  assert.ok(now >= 15_000, `searched until ${now}`)
  assert.is(m.progress().failed, 0, 'nothing failed while the lost providers may come back')
  assert.match(s.search.waiting(now) ?? '', /^waiting: 2 providers unreachable since their leases were lost/)
  assert.equal(s.search.refusals(), { OVER_PRICE: s.search.refusals().OVER_PRICE })
  // provider-a is reachable again (re-reserved on relay2) and offers: leased, the tasks run
  const at = s.nextRoundAt(now)!
  s.startRound()
  m.handleLease(at, { leaseId: 'La2', provider: 'provider-a', slots: 4 })
  s.handleRound(at, round({ offers: 1, refusals: ['OVER_PRICE', 'OVER_PRICE'], leased: 1, liveLeases: 1, answered: ['relay1', 'relay2', 'provider-a'] }))
  let cmds = m.pollCommands()
  let t = at
  // every copy that goes out answers; the job finishes on provider-a alone
  while (runs(cmds).length > 0) {
    for (const c of runs(cmds)) s.handleAnswer(++t, c, c.index * 65536 + c.attempt, { ok: true, hash: `h${c.index}` })
    s.pollEvents(t)
    cmds = m.pollCommands()
  }
  assert.is(m.progress().failed, 0)
  assert.is(m.progress().done, 16)
  assert.ok(m.isFinished)
})

test('a lost provider that never comes back: the tasks fail after task.waitS, saying so; one that answers "never" is not waited for', () => {
  const s = session(4, 60_000)
  const m = s.machine
  assert.is(s.nextRoundAt(0), 0)
  s.startRound()
  m.handleLease(100, { leaseId: 'L', provider: 'gone', slots: 4 })
  s.handleRound(100, round({ offers: 1, leased: 1, liveLeases: 1, answered: ['gone'] }))
  const out = runs(m.pollCommands())
  m.handleLeaseLost(1000, 'L', 'no heartbeat')
  s.pollEvents(1000)
  assert.is(out.length, 4)
  let now = searchUntil(s, 1000, 55_000, relaysOnly)
  assert.is(m.progress().failed, 0, 'still waiting at 55 s')
  const seen: JobEvent[] = []
  now = searchUntil(s, now, 200_000, relaysOnly, seen)
  assert.is(m.progress().failed, 4, 'failed once task.waitS passed')
  assert.ok(now >= 60_000 && now < 60_000 + 10_000, `gave up at ${now}`)
  assert.ok(m.isFinished)
  assert.match(JSON.stringify(seen.filter(e => e.type === 'task-failed')), /not placed: no provider had a free slot within task\.waitS \(60 s; 0 busy, 1 unreachable since its lease was lost\)/)

  // the lost provider answers again, refusing for good: no more waiting, the usual 10 s give-up
  const s2 = session(1)
  s2.nextRoundAt(0); s2.startRound()
  s2.machine.handleLease(0, { leaseId: 'L', provider: 'p', slots: 1 })
  s2.handleRound(0, round({ offers: 1, leased: 1, liveLeases: 1 }))
  s2.machine.pollCommands()
  s2.machine.handleLeaseLost(500, 'L', 'no heartbeat')
  s2.pollEvents(500)
  const end = searchUntil(s2, 500, 600_000, () => round({ refusals: ['NO_CAPACITY'], unplaced: 'all-refused', lastRefusal: 'NO_CAPACITY: x', answered: ['p'] }))
  assert.ok(s2.machine.isFinished)
  assert.ok(end < 500 + 10_000 + 1000, `gave up at ${end}`)
})

test('copies lost one after another on a provider still count as failures in a row (it is avoided)', () => {
  const s = session(1)
  const m = s.machine
  s.nextRoundAt(0); s.startRound()
  m.handleLease(0, { leaseId: 'L', provider: 'p', slots: 1 })
  s.handleRound(0, round({ offers: 1, leased: 1, liveLeases: 1 }))
  let r = runs(m.pollCommands())
  for (let i = 1; i <= 3 && r.length > 0; i++) {
    s.handleAnswer(i * 10, r[0], r[0].index * 65536 + r[0].attempt, { ok: false, error: 'reset', unreachable: true })
    m.handleHeartbeat(i * 10 + 5, 'L')
    r = runs(m.pollCommands())
  }
  assert.ok(m.avoidedProviders.has('p'), 'three losses in a row, each after the last: avoided')
  // an avoided provider is not waited for
  s.startRound()
  s.handleRound(40, relaysOnly())
  assert.not.ok(s.search.lostProviders.has('p'))
})

test.run()
