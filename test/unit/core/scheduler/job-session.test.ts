// The job session's lease decisions with scripted rounds and explicit time (issue 15): the
// placement race of test/integration/jobs-busy.test.ts reproduced without daemons (a provider missing
// from the first round left a two-tile job queued behind one lease for good), `more` searches
// that never fail a task, and a provider that wins placement then refuses its lease as BUSY.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, placeTasks, placeRandomly, SEARCH_MORE_MAX_RETRY_MS, type SearchRound, type OfferView, type PlacementRequest, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const round = (r: Partial<SearchRound>): SearchRound => ({ offers: 0, refusals: [], leased: 0, liveLeases: 0, ...r })
const runs = (cmds: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cmds.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

function session (tasks: number, search = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, maxRetryMs: 2000, waitMs: 60_000 })): JobSession {
  const m = new JobMachine({ taskCount: tasks, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 1e9, leaseTimeoutMs: 1e9, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  return new JobSession(m, search, new BudgetLedger(undefined))
}

test('the race: one provider missing from the first round; the job asks again while its only lease is busy', () => {
  const s = session(2)
  const m = s.machine
  // job start: nothing leased, nothing running: a starved round at once
  assert.is(s.nextRoundAt(0), 0)
  assert.is(s.startRound(), 'starved')
  assert.is(s.nextRoundAt(1), undefined, 'no second round while one is out')
  // round 1: only p0 answered (p1's offer timed out); placement put both tiles on p0's one slot
  m.handleLease(5, { leaseId: 'L0', provider: 'p0', slots: 1 })
  s.handleRound(5, round({ offers: 1, leased: 1, liveLeases: 1 }))
  const first = m.pollCommands()
  assert.equal(runs(first).map(c => c.provider), ['p0'])
  // before the fix the job waited here for p0's slot: no command, no round, one provider for both tiles
  assert.ok(first.some(c => c.type === 'more-leases'), 'the machine asks for more leases')
  assert.is(m.leaseWant(), 'more')
  assert.is(s.nextRoundAt(6), 6, 'a `more` round at once')
  assert.is(s.startRound(), 'more')
  // round 2: p1 answers and is leased; the queued tile goes there
  m.handleLease(10, { leaseId: 'L1', provider: 'p1', slots: 1 })
  s.handleRound(10, round({ offers: 1, leased: 1, liveLeases: 2 }))
  assert.equal(runs(m.pollCommands()).map(c => [c.index, c.provider]), [[1, 'p1']])
  assert.is(m.leaseWant(), undefined)
  assert.is(s.nextRoundAt(11), undefined, 'nothing queued: no more rounds')
  assert.not.ok(s.search.active)
})

test('a `more` search backs off to its cap and never fails a task; when every copy ends it becomes starved', () => {
  const s = session(3)
  const m = s.machine
  s.nextRoundAt(0); s.startRound()
  m.handleLease(0, { leaseId: 'L0', provider: 'p0', slots: 1 })
  s.handleRound(0, round({ offers: 1, leased: 1, liveLeases: 1 }))
  const [c0] = runs(m.pollCommands())
  let now = 1
  const gaps: number[] = []
  for (let i = 0; i < 40; i++) {
    const at = s.nextRoundAt(now)!
    assert.ok(at >= now)
    gaps.push(at - now)
    now = at
    assert.is(s.startRound(), 'more')
    // nobody else answers, for a long time
    s.handleRound(now, round({ liveLeases: 1, unplaced: 'no-candidates' }))
  }
  assert.ok(now > 10 * 60_000, `searched ${now} ms`)
  assert.is(Math.max(...gaps), SEARCH_MORE_MAX_RETRY_MS, 'backoff capped')
  assert.is(m.progress().failed, 0, 'a `more` search fails nothing')
  assert.is(s.search.waiting(now), undefined, 'the job runs: it does not say it waits')
  // p0's copy ends and p0 may take the next: still `more`, as long as something runs
  m.handleResult(now, { index: c0.index, attempt: c0.attempt, ok: true, hash: 'h' })
  assert.is(runs(m.pollCommands()).length, 1)
  // the lease is lost with its copy: nothing runs, two tasks queued: starved, asked at once
  m.handleLeaseLost(now + 1, 'L0')
  m.pollCommands()
  assert.is(m.leaseWant(), 'starved')
  assert.is(s.nextRoundAt(now + 2), now + 2)
  assert.is(s.startRound(), 'starved')
  s.handleRound(now + 2, round({ unplaced: 'no-candidates' }))
  let at = s.nextRoundAt(now + 3)!
  while (at !== undefined) { s.startRound(); s.handleRound(at, round({ unplaced: 'no-candidates' })); at = s.nextRoundAt(at)! }
  assert.is(m.progress().failed, 2, 'a starved search gives the queued tasks up after giveUpMs')
  assert.ok(m.isFinished)
})

test('a provider that wins placement and refuses its lease BUSY: asked again at once, penalised while others exist', () => {
  const search = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, waitMs: 60_000 })
  const s = session(4, search)
  s.nextRoundAt(0); s.startRound()
  s.handleRound(0, round({ offers: 2, refusals: ['BUSY'], busyLeases: ['cheap'], unusedOffers: 1 }))
  assert.ok(search.penalised.has('cheap'))
  assert.is(s.nextRoundAt(1), 0, 'the next round at once (other offers were left unused)')
  s.startRound()
  // the same provider refusing again is no news: the usual backoff
  s.handleRound(3, round({ offers: 2, refusals: ['BUSY'], busyLeases: ['cheap'], unusedOffers: 1 }))
  assert.is(s.nextRoundAt(4), 3 + 250)
  // no other offer to take its share: the usual wait for busy providers
  // fresh identities that each win and refuse BUSY: at most one round at once per 250 ms
  const sybils = new LeaseSearch({ retryMs: 5000 })
  const ats = Array.from({ length: 4 }, (_, i) => sybils.handleRound(10, round({ offers: 2, refusals: ['BUSY'], busyLeases: [`sybil${i}`], unusedOffers: 1 })))
  assert.equal(ats.map(d => d.kind === 'retry' ? d.at : -1), [10, 260, 510, 760])
  const lone = new LeaseSearch({ retryMs: 250 })
  assert.equal(lone.handleRound(0, round({ refusals: ['BUSY'], busyLeases: ['only'] })), { kind: 'retry', at: 250 })

  const offer = (provider: string, price: number): OfferView => ({ offerId: provider, provider, slots: 4, priceGpuHour: 0, priceCpuHour: price, perfScore: 1, expiresAt: 1e12 })
  const req: PlacementRequest = { now: 0, taskCount: 8, copies: 1, expectedTaskMs: 1000, inputBytes: 0, gpuCount: 0, cores: 1, penalise: search.penalised }
  const offers = [offer('cheap', 0.01), offer('dear', 5)]
  assert.equal([...placeTasks({ ...req, penalise: undefined }, offers).tasksPerOffer], [8, 0], 'unpenalised, the cheap one takes all')
  assert.equal([...placeTasks(req, offers).tasksPerOffer], [0, 8], 'penalised: every task to the other offer')
  assert.equal([...placeTasks(req, [offers[0]]).tasksPerOffer], [8], 'alone, it is still used')
  assert.equal([...placeTasks({ ...req, copies: 2 }, offers).tasksPerOffer], [8, 8], 'a second distinct provider is needed: it is used')
  const rnd = placeRandomly(req, offers, createRng(7))
  assert.equal([...rnd.tasksPerOffer], [0, 8], 'random placement avoids it too')
})

test('maxLeases: a `more` search stops at the job\'s lease cap; a starved one still runs', () => {
  const m = new JobMachine({ taskCount: 3, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 1e9, leaseTimeoutMs: 1e9, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  const s = new JobSession(m, new LeaseSearch(), new BudgetLedger(undefined), 1)
  assert.is(s.leasesLeft(), 1)
  m.handleLease(0, { leaseId: 'L0', provider: 'p0', slots: 1 })
  m.pollCommands()
  assert.is(m.leaseWant(), 'more')
  assert.is(s.leasesLeft(), 0)
  assert.is(s.nextRoundAt(1), undefined, 'at the cap: no `more` round')
})

test('a lease opened mid-round while the search was `more`: copies go to it; a stale queue asks for nothing', () => {
  const s = session(2)
  const m = s.machine
  m.handleLease(0, { leaseId: 'L0', provider: 'p0', slots: 1 })
  const [c0] = runs(m.pollCommands())
  assert.is(m.leaseWant(), 'more')
  // the running copy's task is the only one left once the other is accepted elsewhere... here: both end on p0
  m.handleResult(1, { index: c0.index, attempt: c0.attempt, ok: true, hash: 'a' })
  const [c1] = runs(m.pollCommands())
  assert.is(m.leaseWant(), undefined, 'the last task runs: nothing queued')
  m.handleResult(2, { index: c1.index, attempt: c1.attempt, ok: true, hash: 'b' })
  assert.ok(m.isFinished)
  assert.is(s.nextRoundAt(3), undefined)
})

test.run()
