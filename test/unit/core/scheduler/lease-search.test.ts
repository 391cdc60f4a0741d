// The lease search's decisions with explicit time: waiting for busy providers (with backoff, up to
// task.waitS), giving up fast when no provider could ever take the tasks, refusal codes counted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LeaseSearch, refusalCode, rulesOutForGood, BudgetLedger, CodeCache, jobPolicyOf, leaseSearchPolicyOf, validateManifest, JobMachine, ReputationBook, type SearchRound } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const round = (r: Partial<SearchRound>): SearchRound => ({ offers: 0, refusals: [], leased: 0, liveLeases: 0, ...r })

test('refusal codes: CODE: text gives the code; text without one is REFUSED', () => {
  assert.is(refusalCode('BUSY: all slots for this shape are busy; ask again later'), 'BUSY')
  assert.is(refusalCode('NO_ESCROW: the job has no escrow on chain'), 'NO_ESCROW')
  assert.is(refusalCode('all slots busy'), 'REFUSED')
  assert.is(refusalCode(''), 'REFUSED')
  assert.ok(rulesOutForGood('over-budget'))
  assert.not.ok(rulesOutForGood('all-refused'))
  assert.not.ok(rulesOutForGood('not-enough-providers'))
})

test('busy providers: the search waits past giveUpMs, backing off, and succeeds when a lease opens', () => {
  const s = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, maxRetryMs: 2000, waitMs: 60_000 })
  s.begin(0)
  let now = 0
  const delays: number[] = []
  for (let i = 0; i < 20; i++) {
    const d = s.handleRound(now, round({ refusals: ['BUSY', 'BUSY', 'BUSY', 'BUSY'], unplaced: 'all-refused' }))
    assert.is(d.kind, 'retry', `round ${i} at ${now}`)
    if (d.kind !== 'retry') return
    delays.push(d.at - now)
    now = d.at
  }
  assert.ok(now > 10_000, `waited ${now} ms, far past giveUpMs`)
  assert.equal(delays.slice(0, 4), [250, 500, 1000, 2000])
  assert.ok(delays.every(x => x <= 2000), 'backoff is capped')
  assert.match(s.waiting(now) ?? '', /^waiting: 4 providers busy/)
  assert.equal(s.refusals(), { BUSY: 80 })
  assert.equal(s.handleRound(now, round({ offers: 1, leased: 1 })), { kind: 'leased' })
  assert.is(s.waiting(now), undefined)
  assert.not.ok(s.active)
})

test('busy providers past task.waitS: the unplaced tasks fail, saying why', () => {
  const s = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, waitMs: 5000 })
  let now = 0
  let d = s.handleRound(now, round({ refusals: ['BUSY'] }))
  while (d.kind === 'retry') { now = d.at; d = s.handleRound(now, round({ refusals: ['BUSY'] })) }
  assert.is(d.kind, 'give-up')
  assert.ok(now >= 5000 && now < 5000 + 5000, `gave up at ${now}`)
  if (d.kind === 'give-up') assert.match(d.reason, /no provider had a free slot within task\.waitS \(5 s; 1 busy\)/)
})

test('offers whose owner\'s stake could not be read (STAKE_UNKNOWN, review F4) are waited for like busy ones, and the wait says why', () => {
  const s = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, waitMs: 5000 })
  let now = 0
  let d = s.handleRound(now, round({ refusals: ['STAKE_UNKNOWN', 'STAKE_UNKNOWN'] }))
  assert.is(d.kind, 'retry', 'not given up after giveUpMs: the chain may answer')
  assert.match(s.waiting(now) ?? '', /^waiting: 2 offers whose owner's stake could not be read from the chain \(STAKE_UNKNOWN\); tasks fail if the chain does not answer within 5 s$/)
  while (d.kind === 'retry') { now = d.at; d = s.handleRound(now, round({ refusals: ['STAKE_UNKNOWN'] })) }
  assert.ok(now >= 5000, `waited task.waitS (${now})`)
  assert.is(d.kind, 'give-up')
  if (d.kind === 'give-up') assert.match(d.reason, /^not placed: the chain did not answer for the providers' stake within task\.waitS \(5 s; 1 offer whose owner's stake could not be read from the chain \(STAKE_UNKNOWN\)\); check the node's chain RPC/)
  // NOT_STAKED is no "not now": the search gives up at giveUpMs
  const t = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, waitMs: 5000 })
  now = 0
  let e = t.handleRound(now, round({ refusals: ['NOT_STAKED'], lastRefusal: 'NOT_STAKED: payout address 0xab has no stake on chain' }))
  while (e.kind === 'retry') { now = e.at; e = t.handleRound(now, round({ refusals: ['NOT_STAKED'], lastRefusal: 'NOT_STAKED: payout address 0xab has no stake on chain' })) }
  assert.ok(now <= 1000, `gave up at ${now}`)
  assert.is(e.kind, 'give-up')
  if (e.kind === 'give-up') assert.match(e.reason, /NOT_STAKED: payout address 0xab has no stake on chain/)
})

test('permanent refusals: give up after giveUpMs with the placement reason (no waiting)', () => {
  const s = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, waitMs: 600_000 })
  let now = 0
  let d = s.handleRound(now, round({ refusals: ['NO_CAPACITY', 'REFUSED'], unplaced: 'all-refused', lastRefusal: 'NO_CAPACITY: this peer cannot run tasks needing 64 CPU(s)' }))
  // while it keeps looking, job status says what the providers said and when the tasks fail (user walk s14: 10 s of nothing)
  assert.match(s.waiting(now) ?? '', /^searching: not placed: every provider asked refused.*NO_CAPACITY: this peer cannot run tasks needing 64 CPU\(s\).*; the tasks fail in 1 s unless a provider that can take them answers$/)
  while (d.kind === 'retry') { now = d.at; d = s.handleRound(now, round({ refusals: ['NO_CAPACITY', 'REFUSED'], unplaced: 'all-refused', lastRefusal: 'NO_CAPACITY: x' })) }
  assert.is(d.kind, 'give-up')
  assert.ok(now >= 1000 && now <= 1250, `gave up at ${now}`)
  if (d.kind === 'give-up') assert.match(d.reason, /not placed: every provider asked refused.*NO_CAPACITY/)
  assert.is(s.waiting(now), undefined)
  // no candidates at all
  const e = new LeaseSearch({ giveUpMs: 0 })
  const g = e.handleRound(5, round({ unplaced: 'no-candidates' }))
  assert.is(g.kind, 'give-up')
  if (g.kind === 'give-up') assert.match(g.reason, /no candidates/)
})

test('a provider busy a moment ago keeps the search going for giveUpMs after it', () => {
  const s = new LeaseSearch({ giveUpMs: 1000, retryMs: 100, waitMs: 600_000 })
  assert.is(s.handleRound(0, round({})).kind, 'retry')
  assert.is(s.handleRound(900, round({ refusals: ['BUSY'] })).kind, 'retry')
  // then it goes quiet (e.g. unreachable): the search keeps going until 1 s after the busy answer
  assert.is(s.handleRound(1500, round({})).kind, 'retry')
  assert.is(s.handleRound(1850, round({})).kind, 'retry')
  const d = s.handleRound(2100, round({ error: 'dial failed' }))
  assert.is(d.kind, 'give-up')
  if (d.kind === 'give-up') assert.match(d.reason, /looking for providers failed: dial failed/)
})

test('task.waitS from the manifest, validated; 0 waits not at all', () => {
  const m = (task: Record<string, unknown>): ReturnType<typeof validateManifest> => validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { list: [1] }, task })
  const ok = m({ waitS: 30 })
  assert.ok(ok.ok)
  if (ok.ok) assert.is(leaseSearchPolicyOf(ok.manifest).waitMs, 30_000)
  const dflt = m({})
  if (dflt.ok) { assert.is(leaseSearchPolicyOf(dflt.manifest).waitMs, 600_000); assert.is(leaseSearchPolicyOf(dflt.manifest, { waitMs: 5 }).waitMs, 5); assert.is(jobPolicyOf(dflt.manifest, 1).taskCount, 1) }
  assert.not.ok(m({ waitS: -1 }).ok)
  assert.not.ok(m({ waitS: 1.5 }).ok)
  assert.not.ok(m({ waitS: 10 * 24 * 3600 }).ok)
  const zero = new LeaseSearch({ waitMs: 0, giveUpMs: 1000 })
  assert.is(zero.handleRound(0, round({ refusals: ['BUSY'] })).kind, 'give-up')
})

test('budget ledger: predicted while out, billed once back, spent once', () => {
  const b = new BudgetLedger(1)
  assert.is(b.copySent(1, 0.4), undefined)
  assert.is(b.copySent(2, 0.4), undefined)
  assert.is(b.copyReturned(1, 0.1), undefined) // billed less than predicted: room again
  assert.is(b.copySent(3, 0.4), undefined)
  assert.is(Math.round(b.committed * 10), 9)
  assert.match(b.copySent(4, 0.4) ?? '', /budget\.total \(1\) is spent/)
  assert.is(b.copySent(5, 0.4), undefined, 'said once')
  assert.is(b.copyReturned(2, undefined), undefined) // no receipt: bills nothing
  assert.is(Math.round(b.metered * 10), 1)
  assert.is(Math.round(b.spent * 10), 20)
  assert.is(new BudgetLedger(undefined).copySent(1, 1e9), undefined)
})

test('code cache: inline first, by hash after; CODE_MISSING resends once with the code', () => {
  const c = new CodeCache()
  assert.ok(c.sendCode('p'))
  assert.is(c.handleResult('p', true, true), undefined)
  assert.not.ok(c.sendCode('p'))
  assert.is(c.handleResult('p', false, false, 'CODE_MISSING'), 'resend')
  assert.ok(c.sendCode('p'))
  assert.is(c.handleResult('p', true, false, 'CODE_MISSING'), undefined, 'sent with the code: no second resend')
  assert.is(c.handleResult('p', true, false, 'TRAP'), undefined)
  assert.ok(c.sendCode('p'))
})

test('a lost lease re-queues its copy and asks for leases; a search that gives up fails the tasks and the job ends', () => {
  const m = new JobMachine({ taskCount: 2, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 10_000, leaseTimeoutMs: 1e9, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  assert.equal(m.pollCommands(), [], 'no lease yet: nothing asked before the first pump')
  m.handleLease(0, { leaseId: 'L', provider: 'p', slots: 1 })
  const run = m.pollCommands().find(c => c.type === 'run')
  assert.ok(run !== undefined && run.type === 'run')
  m.handleLeaseLost(1, 'L', 'gone') // its copy is lost and re-queued; no lease left
  assert.ok(m.pollCommands().some(c => c.type === 'need-leases'))
  m.handleGiveUp(2, 'not placed: x') // the search gave up: both tasks (no copy out) fail
  assert.is(m.progress().failed, 2)
  assert.ok(m.isFinished)
})

test('a job holding leases with too few distinct providers for its redundancy waits up to waitMs, saying why, then fails', () => {
  // one of two providers stopped: the other is leased, placement finds no second distinct one
  const s = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, maxRetryMs: 2000, waitMs: 60_000 })
  s.begin(0)
  const short = round({ liveLeases: 1, unplaced: 'not-enough-providers' })
  let now = 0
  for (let d = s.handleRound(now, short); d.kind === 'retry' && now < 50_000; d = s.handleRound(now, short)) now = d.at
  assert.ok(now >= 50_000, `still waiting at ${now} ms, past giveUpMs`)
  assert.match(s.waiting(now) ?? '', /^waiting: fewer distinct providers than verification\.redundancy copies .*; tasks fail if none appears within \d+ s$/)
  let d = s.handleRound(now, short)
  while (d.kind === 'retry') { now = d.at; d = s.handleRound(now, short) }
  assert.is(d.kind, 'give-up')
  assert.ok(now >= 60_000 && now < 62_000, `gave up at ${now}`)
  if (d.kind === 'give-up') assert.match(d.reason, /within task\.waitS \(60 s; 0 busy, fewer distinct providers/)
  // a job holding no lease at all (the network has too few providers): the usual fast give-up
  const s2 = new LeaseSearch({ giveUpMs: 1000, retryMs: 250, maxRetryMs: 2000, waitMs: 60_000 })
  s2.begin(0)
  let t = 0
  let d2 = s2.handleRound(t, round({ offers: 1, unplaced: 'not-enough-providers' }))
  while (d2.kind === 'retry') { t = d2.at; d2 = s2.handleRound(t, round({ offers: 1, unplaced: 'not-enough-providers' })) }
  assert.ok(t < 2000, `gave up at ${t}`)
})

test('refusals that do not change (a disabled executor) are asked again less and less often, not every 250 ms, and still give up at giveUpMs', () => {
  const s = new LeaseSearch({})
  let now = 0
  let rounds = 1
  const refused = (): ReturnType<typeof round> => round({ refusals: ['EXECUTOR_DISABLED', 'EXECUTOR_DISABLED'], unplaced: 'all-refused', lastRefusal: 'EXECUTOR_DISABLED: x' })
  let d = s.handleRound(now, refused())
  while (d.kind === 'retry') { now = d.at; rounds++; d = s.handleRound(now, refused()) }
  assert.is(d.kind, 'give-up')
  assert.is(now, 10_000, 'the last round lands at the give-up time')
  // 0, 0.25, 0.75, 1.75, 3.75, 5.75, 7.75, 9.75, 10 s (41 rounds at a fixed 250 ms)
  assert.ok(rounds <= 10, `${rounds} rounds in 10 s`)
})

test.run()
