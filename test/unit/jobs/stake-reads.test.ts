// The submitter's stake reads (src/jobs/stake-reads.ts, review F4): one chain read per owner and
// TTL, bounded, a round never waits past waitMs, the last figure serves while the chain is down.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { StakeReads } from '../../../src/jobs/stake-reads.js'
import type { StakeFigure } from '../../../src/core/settlement/stake-check.js'

const owner = (i: number): string => `0x${i.toString(16).padStart(40, '0')}`

function setup (read: (o: string) => Promise<StakeFigure>, init: Partial<ConstructorParameters<typeof StakeReads>[0]> = {}): { r: StakeReads, clock: { t: number } } {
  const clock = { t: 1_000_000 }
  return { r: new StakeReads({ read, now: () => clock.t, ...init }), clock }
}

test('one read per owner for many offers and rounds within the TTL; read again after it (an unstaked one sooner)', async () => {
  const calls: string[] = []
  const { r, clock } = setup(async (o) => { calls.push(o); return { gpus: o === owner(1) ? 2 : 0 } }, { ttlMs: 60_000, unstakedTtlMs: 5_000 })
  for (let round = 0; round < 10; round++) {
    const m = await r.stakesOf([owner(1), owner(1), owner(2), owner(1).toUpperCase().replace('0X', '0x')])
    assert.equal([m.get(owner(1))?.gpus, m.get(owner(2))?.gpus], [2, 0])
  }
  assert.is(calls.length, 2, '2 owners, 40 offers over 10 rounds: 2 reads')
  clock.t += 6_000
  await r.stakesOf([owner(1), owner(2)])
  assert.is(calls.length, 3, 'the unstaked owner is read again after 5 s (it may be staking), the staked one not')
  clock.t += 60_000
  await r.stakesOf([owner(1)])
  assert.is(calls.length, 4)
})

test('concurrent rounds share one read in flight', async () => {
  let calls = 0
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  const { r } = setup(async () => { calls++; await gate; return { gpus: 1 } }, { waitMs: 10_000 })
  const rounds = [r.stakesOf([owner(1)]), r.stakesOf([owner(1)]), r.stakesOf([owner(1)])]
  release()
  const ms = await Promise.all(rounds)
  assert.is(calls, 1)
  assert.ok(ms.every(m => m.get(owner(1))?.gpus === 1))
})

test('chain unreachable: never read -> undefined (STAKE_UNKNOWN); read before -> the last figure, up to maxStaleMs', async () => {
  let down = false
  const errors: string[] = []
  const { r, clock } = setup(async () => { if (down) throw new Error('ECONNREFUSED'); return { gpus: 3 } }, { ttlMs: 1_000, maxStaleMs: 60_000, onError: (e) => { errors.push(e.message) } })
  assert.is((await r.stakesOf([owner(1)])).get(owner(1))?.gpus, 3)
  down = true
  clock.t += 2_000
  const m = await r.stakesOf([owner(1), owner(2)])
  assert.is(m.get(owner(1))?.gpus, 3, 'a failed refresh keeps the last figure')
  assert.is(m.has(owner(2)), true)
  assert.is(m.get(owner(2)), undefined, 'an owner never read is unknown')
  assert.equal(errors, ['ECONNREFUSED', 'ECONNREFUSED'])
  clock.t += 60_000
  assert.is((await r.stakesOf([owner(1)])).get(owner(1)), undefined, 'too old to trust')
})

test('a slow chain: the round gets what it has after waitMs, and the late answer serves the next round', async () => {
  let release!: () => void
  const gate = new Promise<void>(resolve => { release = resolve })
  let calls = 0
  const { r } = setup(async () => { calls++; await gate; return { gpus: 1 } }, { waitMs: 5 })
  assert.is((await r.stakesOf([owner(1)])).get(owner(1)), undefined, 'not waited for past waitMs')
  release()
  await gate
  await new Promise(resolve => setImmediate(resolve))
  assert.is((await r.stakesOf([owner(1)])).get(owner(1))?.gpus, 1)
  assert.is(calls, 1, 'the late read filled the cache: no second read')
})

test('bounded: at most maxOwners kept, at most maxReads in flight', async () => {
  let calls = 0
  const { r } = setup(async () => { calls++; return { gpus: 1 } }, { maxOwners: 10, maxReads: 4, waitMs: 1_000 })
  const m = await r.stakesOf(Array.from({ length: 6 }, (_, i) => owner(i)))
  assert.is(calls, 3, 'reads past maxReads, less the one kept for owners read staked before, wait for a later round')
  assert.is([...m.values()].filter(x => x !== undefined).length, 3)
  for (let i = 0; i < 30; i++) await r.stakesOf([owner(100 + i)])
  calls = 0
  await r.stakesOf([owner(0)])
  assert.is(calls, 1, 'the oldest owner was evicted (10 kept), so it is read again')
})

test('a slow chain and a stranger\'s fresh owners holding every read for new owners: an owner read staked before is still refreshed (review16a L2)', async () => {
  const slow = new Set<string>()
  let calls = 0
  const gates: Array<() => void> = []
  const { r, clock } = setup(async (o) => {
    calls++
    if (slow.has(o)) await new Promise<void>(resolve => { gates.push(resolve) })
    return { gpus: 1 }
  }, { maxReads: 8, ttlMs: 60_000, waitMs: 10 })
  // the honest owner is read staked once, while the chain is quick
  assert.is((await r.stakesOf([owner(1)])).get(owner(1))?.gpus, 1)
  // then the chain slows down and a stranger's fresh owners come in, more than the cap
  const strangers = Array.from({ length: 20 }, (_, i) => owner(1000 + i))
  for (const s of strangers) slow.add(s)
  await r.stakesOf(strangers)
  assert.is(calls, 1 + 6, 'new owners hold at most maxReads less the kept quarter (8 - 2)')
  // the honest owner's figure is due for a refresh: it gets one of the kept reads
  clock.t += 61_000
  const m = await r.stakesOf([owner(1), owner(2000)])
  assert.is(calls, 1 + 6 + 1, 'the known owner is read again; another new owner is not (no read left for new owners)')
  assert.is(m.get(owner(1))?.gpus, 1)
  assert.is(m.get(owner(2000)), undefined)
  for (const g of gates) g()
})

test('fresh unstaked owners (payout keys are free) do not push a staked figure out: it still serves while the chain is down (review16a)', async () => {
  let down = false
  const { r, clock } = setup(async (o) => { if (down) throw new Error('ECONNREFUSED'); return { gpus: o === owner(1) ? 2 : 0 } }, { maxOwners: 10, maxUnstakedOwners: 5, ttlMs: 1_000, maxStaleMs: 600_000 })
  assert.is((await r.stakesOf([owner(1)])).get(owner(1))?.gpus, 2)
  // a stranger's offers, each under a new unstaked payout key, round after round
  for (let i = 0; i < 50; i++) assert.is((await r.stakesOf([owner(1000 + i)])).get(owner(1000 + i))?.gpus, 0)
  down = true
  clock.t += 2_000
  assert.is((await r.stakesOf([owner(1)])).get(owner(1))?.gpus, 2, 'the honest owner\'s figure was evicted by unstaked strangers: its offers wait (STAKE_UNKNOWN)')
})

test.run()
