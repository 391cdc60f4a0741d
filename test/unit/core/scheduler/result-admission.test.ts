// Copies whose results come back on streams that cannot be paused (WebRTC) are admitted before they
// go out: the result bounds in flight stay under the node's cap (result-admission.ts), so an honest
// result never passes the cap the guard resets at; a copy that waited is timed from when it went out
// (JobMachine.handleCopyAdmitted), so the provider is not timed out for our wait; while it waits its
// deadline does not run at all (handleCopyWaiting).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ResultAdmission } from '../../../../src/core/scheduler/result-admission.js'
import { JobMachine, ReputationBook, type JobPolicy, type JobCommand } from '../../../../src/core/scheduler/index.js'
import { createRng } from '../../../../src/core/rng.js'

const MiB = 1024 * 1024
const tick = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

test('N copies whose bounds do not fit the cap together: those that fit go, the rest wait in order and go as others end', async () => {
  const a = new ResultAdmission(64 * MiB)
  const order: number[] = []
  const releases: Array<() => void> = []
  const all = Array.from({ length: 6 }, async (_, i) => { const r = await a.take(16 * MiB); order.push(i); releases[i] = r })
  await tick()
  assert.equal(order, [0, 1, 2, 3], 'four 16 MiB bounds fit 64 MiB')
  assert.is(a.heldBytes, 64 * MiB)
  assert.is(a.waiting, 2)
  assert.is(a.waited, 2)
  releases[1]()
  releases[1]() // a second release of the same copy frees nothing more
  await tick()
  assert.equal(order, [0, 1, 2, 3, 4])
  assert.is(a.heldBytes, 64 * MiB, 'never above the cap')
  releases[0](); await tick()
  assert.equal(order, [0, 1, 2, 3, 4, 5])
  await Promise.all(all)
  for (const r of releases) r()
  assert.is(a.heldBytes, 0)
  assert.is(a.copies, 0)
})

test('small bounds: many copies at once; a large one waiting is not overtaken by small ones behind it', async () => {
  const a = new ResultAdmission(64 * MiB)
  const small = Array.from({ length: 60 }, () => a.tryTake(MiB))
  assert.ok(small.every(r => r !== undefined), '60 copies of 1 MiB go at once (16 MiB bounds: 4)')
  let bigIn = false
  const big = a.take(16 * MiB).then(r => { bigIn = true; return r })
  assert.is(a.tryTake(MiB), undefined, 'a small copy behind the waiting large one waits too')
  for (let i = 0; i < 12; i++) small[i]!()
  await tick()
  assert.ok(bigIn, 'the large one goes once 16 MiB are free')
  ;(await big)()
})

test('a bound above the whole cap goes alone; an aborted wait leaves the line', async () => {
  const a = new ResultAdmission(8 * MiB)
  const alone = a.tryTake(16 * MiB)
  assert.ok(alone !== undefined, 'nothing in flight: it goes (it would never fit otherwise)')
  assert.is(a.tryTake(1), undefined)
  const ac = new AbortController()
  const waiting = a.take(MiB, ac.signal)
  ac.abort(new Error('copy cancelled'))
  assert.match(await waiting.then(() => 'admitted', (err: Error) => err.message), /copy cancelled/)
  assert.is(a.waiting, 0)
  alone()
  assert.ok(a.tryTake(MiB) !== undefined)
})

test('JobMachine: a copy admitted late is timed from its admission, not from its dispatch', () => {
  const policy: JobPolicy = { taskCount: 1, redundancy: 1, quorum: 1, maxAttempts: 3, taskTimeoutMs: 1000, leaseTimeoutMs: 600_000, stragglerFactor: 0 }
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  const run = m.pollCommands().find((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')!
  m.handleCopyAdmitted(900, run.index, run.attempt)
  m.handleTimeout(1500)
  assert.is(m.progress().running, 1, 'not timed out 1500 ms after dispatch: it went out at 900')
  // without the admission the same copy times out at 1000
  const m2 = new JobMachine(policy, new ReputationBook(), createRng(1))
  m2.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  m2.pollCommands()
  m2.handleTimeout(1500)
  assert.is(m2.progress().running, 0, 'timed out at 1000')
  m.handleTimeout(1900)
  assert.is(m.progress().running, 0, 'and an admitted copy still times out, from its admission')
})

test('JobMachine: a copy waiting for admission does not time out while it waits, however long (review s12 M2)', () => {
  const policy: JobPolicy = { taskCount: 1, redundancy: 1, quorum: 1, maxAttempts: 3, taskTimeoutMs: 1000, leaseTimeoutMs: 600_000, stragglerFactor: 0 }
  const m = new JobMachine(policy, new ReputationBook(), createRng(1))
  m.handleLease(0, { leaseId: 'l1', provider: 'p1', slots: 1 })
  const run = m.pollCommands().find((c): c is Extract<JobCommand, { type: 'run' }> => c.type === 'run')!
  m.handleCopyWaiting(run.index, run.attempt)
  m.handleTimeout(5000)
  assert.is(m.progress().running, 1, 'still waiting at 5 s (its deadline was 1 s after dispatch): not timed out, nobody blamed')
  m.handleCopyAdmitted(6000, run.index, run.attempt)
  m.handleTimeout(6900)
  assert.is(m.progress().running, 1)
  m.handleTimeout(7000)
  assert.is(m.progress().running, 0, 'timed out 1 s after it went out')
})

test('one provider holds at most its share: its copies past it wait, another provider\'s copy goes (review s12 M2 residual)', async () => {
  // the shipped ratio: cap 64 MiB, a provider's share 32 MiB (OUTBOUND_PEER_READ_BYTES), 16 MiB bounds
  const a = new ResultAdmission(64 * MiB, 32 * MiB)
  const silent = [a.tryTake(16 * MiB, 'p1'), a.tryTake(16 * MiB, 'p1')]
  assert.ok(silent.every(r => r !== undefined), 'two copies of p1 go')
  assert.is(a.tryTake(16 * MiB, 'p1'), undefined, 'a third copy of p1 waits: p1 holds its share')
  let p1third = false
  const third = a.take(16 * MiB, undefined, 'p1').then(r => { p1third = true; return r })
  // before: p1's 4 copies held the whole cap until their timeouts and every other provider's copy waited behind them
  const other = a.tryTake(16 * MiB, 'p2')
  assert.ok(other !== undefined, 'p2 goes at once, with p1\'s copy waiting ahead of it in line')
  let p2more = false
  const more = a.take(16 * MiB, undefined, 'p2').then(r => { p2more = true; return r })
  await tick()
  assert.ok(p2more, 'a second copy of p2 goes too (the line skips a waiter held back by its own share only)')
  assert.not.ok(p1third)
  assert.is(a.heldBytes, 64 * MiB)
  assert.is(a.tryTake(MiB, 'p3'), undefined, 'the cap still holds for everyone')
  silent[0]!()
  await tick()
  assert.ok(p1third, 'p1\'s waiting copy goes when one of its own ends')
  ;(await third)(); (await more)(); silent[1]!(); other!()
  assert.is(a.heldBytes, 0)
})

test('a bound above the share goes when its provider holds nothing; the global line is not overtaken', async () => {
  const a = new ResultAdmission(64 * MiB, 32 * MiB)
  const big = a.tryTake(40 * MiB, 'p1')
  assert.ok(big !== undefined, 'p1 holds nothing: a 40 MiB bound goes (it could never fit the share)')
  assert.is(a.tryTake(MiB, 'p1'), undefined, 'p1 is past its share')
  let largeIn = false
  const large = a.take(30 * MiB, undefined, 'p2').then(r => { largeIn = true; return r })
  assert.is(a.tryTake(MiB, 'p3'), undefined, 'p3\'s small copy does not overtake p2\'s large one waiting for room')
  big!(); await tick()
  assert.ok(largeIn)
  ;(await large)()
})

test.run()
