// The job's lease cap counts slots (lease-cap.ts): a job holds 64 leases whatever their slots, and
// more, up to 256, while its leases hold fewer than 256 slots. Under load an offer often has 1
// slot free, and a cap of 64 leases alone held a loaded job to ~64 slots while capacity idled.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, JobSession, LeaseSearch, BudgetLedger, ReputationBook, mayLease, leasesLeft, leasesAllowed, leasesForRound, leaseCapOf, starvedExcess, MAX_LEASES, LEASE_SLOT_BUDGET } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const cap = { leases: MAX_LEASES, slots: LEASE_SLOT_BUDGET }

test('the cap: 64 leases whatever their slots, more while under 256 slots, never over 256 leases', () => {
  assert.is(MAX_LEASES, 64)
  assert.is(LEASE_SLOT_BUDGET, 256)
  assert.ok(mayLease(cap, 63, 10_000), 'under 64 leases: whatever their slots')
  assert.ok(mayLease(cap, 64, 64), '64 one-slot leases: under the slot budget')
  assert.not.ok(mayLease(cap, 64, 256), '64 leases holding 256 slots')
  assert.ok(mayLease(cap, 255, 255))
  assert.not.ok(mayLease(cap, 256, 0), 'the hard ceiling: 256 leases')
  // 64 one-slot leases held: 192 more one-slot offers, or 24 of 8 slots
  assert.is(leasesAllowed(cap, { leases: 64, slots: 64 }, new Array(300).fill(1)), 192)
  assert.is(leasesAllowed(cap, { leases: 64, slots: 64 }, new Array(300).fill(8)), 24)
  // nothing held: 64 offers of 64 slots (4,096 slots: the lease count binds first)
  assert.is(leasesAllowed(cap, { leases: 0, slots: 0 }, new Array(100).fill(64)), 64)
  assert.is(leasesLeft(cap, 64, 64), 192)
  assert.is(leasesLeft(cap, 64, 300), 0)
  assert.is(leasesLeft(cap, 10, 300), 54)
  // a hard cap of leases: the slot budget 0 (what an explicit maxLeases alone means)
  assert.is(leasesAllowed({ leases: 8, slots: 0 }, { leases: 0, slots: 0 }, new Array(20).fill(1)), 8)
  // a starved round leases anew up to 64 whatever their slots (the escrow reserves one task per offer its first round leases)
  assert.is(leasesForRound(cap, 'starved', { leases: 64, slots: 64 }, new Array(300).fill(1)), 64)
  assert.is(leasesForRound(cap, 'more', { leases: 64, slots: 64 }, new Array(300).fill(1)), 192)
  // ... but never past the ceiling of 256 leases in all (review s9 M2)
  assert.is(leasesForRound(cap, 'starved', { leases: 256, slots: 256 }, new Array(300).fill(1)), 0)
  assert.is(leasesForRound(cap, 'starved', { leases: 200, slots: 200 }, new Array(300).fill(1)), 56)
  assert.is(starvedExcess(cap, { leases: 256 }), 64, 'a starved job holding 256 leases releases 64 first')
  assert.is(starvedExcess(cap, { leases: 100 }), 0)
  assert.is(starvedExcess({ leases: 8, slots: 0 }, { leases: 8 }), 0, 'a hard cap of leases: as before')
  assert.equal(leaseCapOf({}), cap)
  assert.equal(leaseCapOf({ maxLeases: 8 }), { leases: 8, slots: 0 })
  assert.equal(leaseCapOf({ maxLeases: 8, maxLeaseSlots: 32 }), { leases: 8, slots: 32 })
})

test('a session past its lease count still asks for more leases while its leases hold few slots', () => {
  const m = new JobMachine({ taskCount: 10, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 1e9, leaseTimeoutMs: 1e9, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  const s = new JobSession(m, new LeaseSearch(), new BudgetLedger(undefined), { leases: 2, slots: 4 })
  for (let i = 0; i < 2; i++) m.handleLease(0, { leaseId: `L${i}`, provider: `p${i}`, slots: 1 })
  m.pollCommands()
  assert.is(m.leaseWant(), 'more')
  // before: a cap of 2 leases stopped here with 8 copies queued behind 2 slots
  assert.is(s.leasesLeft(), 2)
  assert.is(s.nextRoundAt(1), 1, 'a `more` round past 2 leases: they hold 2 slots of 4')
  for (let i = 2; i < 4; i++) m.handleLease(2, { leaseId: `L${i}`, provider: `p${i}`, slots: 1 })
  m.pollCommands()
  assert.is(s.leasesLeft(), 0)
  assert.is(s.nextRoundAt(3), undefined, 'four leases holding 4 slots: at the cap')
})

test('a starved job at the ceiling releases leases that can run nothing before its round, and stays within 256 leases (review s9 M2)', () => {
  const m = new JobMachine({ taskCount: 1000, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 1e9, leaseTimeoutMs: 2000, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  const s = new JobSession(m, new LeaseSearch(), new BudgetLedger(undefined), cap)
  for (let i = 0; i < 256; i++) m.handleLease(0, { leaseId: `L${i}`, provider: `p${i}`, slots: 1 })
  const runs = m.pollCommands().filter(c => c.type === 'run')
  assert.is(runs.length, 256)
  // every copy's route fails (no answer): each lease is suspended, its copy queued again
  for (const c of runs) if (c.type === 'run') m.handleResult(100, { index: c.index, attempt: c.attempt, ok: false, error: 'reset', unreachable: true })
  m.pollCommands()
  assert.is(m.leaseWant(), 'starved')
  assert.equal(m.leasesHeld(), { leases: 256, slots: 256 })
  s.makeRoom(101)
  const released = m.pollCommands().filter(c => c.type === 'release-lease')
  assert.is(released.length, 64, 'room for a starved round of 64 fresh leases')
  assert.is(m.leasesHeld().leases, 192)
  const round = leasesForRound(cap, 'starved', m.leasesHeld(), new Array(100).fill(1))
  assert.is(round, 64)
  assert.ok(m.leasesHeld().leases + round <= LEASE_SLOT_BUDGET, 'the job never holds more than 256 leases')
  // a job below the ceiling releases nothing when starved
  const m2 = new JobMachine({ taskCount: 100, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 1e9, leaseTimeoutMs: 2000, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  const s2 = new JobSession(m2, new LeaseSearch(), new BudgetLedger(undefined), cap)
  for (let i = 0; i < 10; i++) m2.handleLease(0, { leaseId: `L${i}`, provider: `p${i}`, slots: 1 })
  for (const c of m2.pollCommands()) if (c.type === 'run') m2.handleResult(100, { index: c.index, attempt: c.attempt, ok: false, error: 'reset', unreachable: true })
  m2.pollCommands()
  assert.is(m2.leaseWant(), 'starved')
  s2.makeRoom(101)
  assert.is(m2.pollCommands().filter(c => c.type === 'release-lease').length, 0)
})

test('a number is a hard cap of leases, as before the slot budget', () => {
  const m = new JobMachine({ taskCount: 10, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 1e9, leaseTimeoutMs: 1e9, stragglerFactor: 0 }, new ReputationBook(), createRng(1))
  const s = new JobSession(m, new LeaseSearch(), new BudgetLedger(undefined), 2)
  for (let i = 0; i < 2; i++) m.handleLease(0, { leaseId: `L${i}`, provider: `p${i}`, slots: 1 })
  m.pollCommands()
  assert.is(s.leasesLeft(), 0)
  assert.is(s.nextRoundAt(1), undefined)
})

test.run()
