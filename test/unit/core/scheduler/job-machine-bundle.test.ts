// A lease with TaskBundles (job-dispatch.ts, LeaseGrant.bundle): it holds slots x bundle copies in
// flight, each run command names the bundle the transport may group it in, the copies within
// slots x bundle get no extra timeout waves (only TASK_BUNDLE_CUT_MS, where a provider cuts a bundle), the
// lease cap and the progress's `running` still count real slots, and an older provider's offer
// (no bundle_max) gives a lease of one copy per slot, as before; under the default checks only an
// established provider gets them.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { offerView, offerBundleOf, TASK_BUNDLE_MAX, TASK_BUNDLE_CUT_MS } from '../../../../src/core/scheduler/ports.js'
import { createRng } from '../../../../src/core/rng.js'

const policy: JobPolicy = { taskCount: 200, redundancy: 1, quorum: 1, maxAttempts: 5, taskTimeoutMs: 5000, leaseTimeoutMs: 60_000, stragglerFactor: 0 }
const runs = (cs: JobCommand[]): Array<Extract<JobCommand, { type: 'run' }>> => cs.filter((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')

test('a lease with bundles holds slots x bundle copies; its run commands name the bundle', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'B', provider: 'p', slots: 2, runMs: 5, bundle: 8 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 16, '2 slots x 8')
  assert.ok(sent.every(c => c.bundle === 8))
  // a result frees one place: one copy follows (the lease stays at slots x bundle)
  m.handleResult(10, { index: sent[0].index, attempt: sent[0].attempt, ok: true, hash: 'h' })
  assert.is(runs(m.pollCommands()).length, 1)
  assert.equal(m.liveLeases(), [{ leaseId: 'B', provider: 'p', slots: 2, running: 16, bundle: 8 }])
})

test('the lease cap counts real slots; progress shows at most the slots running, the rest ahead', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'B', provider: 'p', slots: 2, runMs: 5, bundle: 8, readAhead: 6 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 16 + 6, 'slots x bundle, and read-ahead while a long queue waits')
  assert.equal(m.leasesHeld(), { leases: 1, slots: 2 })
  const p = m.progress()
  assert.is(p.running, 2)
  assert.is(p.ahead, 20)
})

test('copies within slots x bundle get no extra timeout waves (only the bundle\'s cut on top); those past it do', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'B', provider: 'p', slots: 2, runMs: 5, bundle: 4, readAhead: 2 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 10)
  const timeouts = sent.map(c => m.copiesOf(c.index).find(x => x.attempt === c.attempt)?.timeoutMs ?? policy.taskTimeoutMs)
  const unit = 5000 + TASK_BUNDLE_CUT_MS
  assert.equal(timeouts, [...Array(8).fill(unit), 2 * unit, 2 * unit], 'the 8 in the bundles answer by the cut and the task timeout; the 2 read ahead wait one wave of that')
})

test('an older provider\'s offer (no bundle_max) gives no bundles: one copy per slot', () => {
  assert.is(offerView({ slots: 2 }, 'p').bundleMax, 1)
  assert.is(offerView({ slots: 2, bundleMax: 1 }, 'p').bundleMax, 1)
  assert.is(offerView({ slots: 2, bundleMax: 9 }, 'p').bundleMax, 9)
  assert.is(offerBundleOf(1e9), TASK_BUNDLE_MAX, 'a huge claim is clamped')
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'O', provider: 'old', slots: 2, runMs: 5 })
  m.handleLease(0, { leaseId: 'X', provider: 'odd', slots: 2, runMs: 5, bundle: 1 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 4, 'two per lease')
  assert.ok(sent.every(c => c.bundle === undefined))
})

test('under the default checks only an established provider gets bundles (as read-ahead)', () => {
  const checked: JobPolicy = { ...policy, spotChecks: { rate: 0.1, trustAfter: 10 } }
  const rep = new ReputationBook()
  for (let i = 0; i < 10; i++) rep.confirmed('known')
  const m = new JobMachine(checked, rep, createRng(1))
  m.handleLease(0, { leaseId: 'N', provider: 'newcomer', slots: 2, runMs: 5, bundle: 8 })
  m.handleLease(0, { leaseId: 'K', provider: 'known', slots: 2, runMs: 5, bundle: 8 })
  const sent = runs(m.pollCommands())
  const on = (p: string): typeof sent => sent.filter(c => c.provider === p)
  assert.is(on('newcomer').length, 2, 'a newcomer (every copy of it checked) gets its slots only')
  assert.ok(on('newcomer').every(c => c.bundle === undefined), 'and no bundle: its copies of a turn would share one slot')
  assert.is(on('known').length, 16)
  assert.ok(on('known').every(c => c.bundle === 8))
})

test('a copy that ran past READ_AHEAD_MAX_COPY_MS ends the lease\'s bundles (the tasks are not tiny)', () => {
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'B', provider: 'p', slots: 1, runMs: 5, bundle: 4 })
  const sent = runs(m.pollCommands())
  assert.is(sent.length, 4)
  for (const c of sent) m.handleResult(2000, { index: c.index, attempt: c.attempt, ok: true, hash: 'h' })
  const next = runs(m.pollCommands())
  assert.is(next.length, 1, 'one copy per slot again')
  assert.is(next[0].bundle, undefined)
})

test('a short job is not bundled onto its first lease: it spreads over the leases as single copies do', () => {
  const m = new JobMachine({ ...policy, taskCount: 40 }, new ReputationBook(), createRng(1))
  for (const p of ['a', 'b', 'c', 'd']) m.handleLease(0, { leaseId: p, provider: p, slots: 2, runMs: 5, bundle: 16 })
  const sent = runs(m.pollCommands())
  const by = new Map<string, number>()
  for (const c of sent) by.set(c.provider, (by.get(c.provider) ?? 0) + 1)
  assert.is(by.size, 4, `the copies went to ${JSON.stringify([...by])}`)
  // and each goes alone, in a slot of its own (a bundle of them would run in one slot while the other idled)
  assert.ok(sent.every(c => c.bundle === undefined), 'copies outside bundles carry no bundle')
  // a long queue is bundled: the first lease takes slots x bundle
  const long = new JobMachine({ ...policy, taskCount: 400 }, new ReputationBook(), createRng(1))
  long.handleLease(0, { leaseId: 'a', provider: 'a', slots: 2, runMs: 5, bundle: 16 })
  const bundled = runs(long.pollCommands())
  assert.is(bundled.length, 32)
  assert.ok(bundled.every(c => c.bundle === 16))
})

test('a long job\'s tail leaves in bundles of its share per open slot, not one copy per slot per round trip', () => {
  const m = new JobMachine({ ...policy, taskCount: 400 }, new ReputationBook(), createRng(1))
  for (const p of ['a', 'b', 'c', 'd']) m.handleLease(0, { leaseId: p, provider: p, slots: 2, runMs: 5, bundle: 16 })
  // every copy answered before the next pump: a round is one round trip to the providers
  const rounds: Array<Array<Extract<JobCommand, { type: 'run' }>>> = []
  for (let t = 0; rounds.length < 50; t += 10) {
    const sent = runs(m.pollCommands())
    if (sent.length === 0) break
    rounds.push(sent)
    for (const c of sent) m.handleResult(t + 5, { index: c.index, attempt: c.attempt, ok: true, hash: `h${c.index}` })
  }
  assert.is(rounds.flat().length, 400)
  // one copy per slot per round trip at the tail took 11 rounds here (128, 128, 83, then 8 a round);
  // the tail's share per open slot (bundles of 2 to 15) leaves it in 4 after the first three
  assert.ok(rounds.length <= 7, `rounds ${JSON.stringify(rounds.map(r => r.length))}`)
  const tail = rounds.slice(3).flat()
  const bundled = tail.filter(c => c.bundle !== undefined)
  assert.ok(bundled.length >= tail.length / 2, `tail bundles ${JSON.stringify(tail.map(c => c.bundle))}`)
  assert.ok(bundled.every(c => c.bundle! >= 2 && c.bundle! < 16), 'smaller bundles than the lease\'s 16')
  assert.is(new Set(rounds[3].map(c => c.provider)).size, 4, 'shared over the leases')
  // a bundled tail copy's speed evidence counts its bundle's share (CopyRecord.batch, copyShare)
  const c = bundled[0]
  assert.equal(m.copiesOf(c.index).find(x => x.attempt === c.attempt)?.batch?.bundle, c.bundle)
})

test.run()
