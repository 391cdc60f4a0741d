// The stake rule the submitter applies to offers (core/settlement/stake-check.ts, review F4).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checkStakes, type StakeFigure } from '../../../../src/core/settlement/stake-check.js'

const A = '0x' + 'a'.repeat(40)
const B = '0x' + 'b'.repeat(40)
const stakes = (m: Record<string, number | undefined>): Map<string, StakeFigure | undefined> => new Map(Object.entries(m).map(([k, g]) => [k, g === undefined ? undefined : { gpus: g }]))

test('no stake: NOT_STAKED; unknown: STAKE_UNKNOWN; a CPU task needs only a stake', () => {
  const v = checkStakes({ gpusPerTask: 0, candidates: [{ owner: A, slots: 8 }, { owner: B, slots: 8 }, { owner: '0xc', slots: 1 }], stakes: stakes({ [A]: 0, [B]: 1, '0xc': undefined }) })
  assert.equal(v.map(x => x.ok ? `ok ${x.slots}` : x.code), ['NOT_STAKED', 'ok 8', 'STAKE_UNKNOWN'])
  assert.match((v[0] as { reason: string }).reason, /^NOT_STAKED: payout address 0xa+ has no stake on chain/)
})

test('GPU tasks: each slot needs the task\'s GPUs staked; one owner\'s offers and held leases share its stake', () => {
  const v = checkStakes({
    gpusPerTask: 2,
    candidates: [{ owner: A, slots: 4 }, { owner: A, slots: 4 }, { owner: B, slots: 1 }, { owner: B, slots: 1 }],
    stakes: stakes({ [A]: 5, [B]: 4 }),
    held: new Map([[B, 2]])
  })
  // A: 5 GPUs = 2 slots of 2 GPUs, then nothing for its second peer; B: 4 staked, 2 held by a lease, 1 slot left
  assert.equal(v.map(x => x.ok ? `ok ${x.slots}` : x.code), ['ok 2', 'STAKE_TOO_LOW', 'ok 1', 'STAKE_TOO_LOW'])
  assert.match((v[1] as { reason: string }).reason, /staked 5 GPUs, 4 of them held by its other leases and offers in this job; one task needs 2/)
  const one = checkStakes({ gpusPerTask: 2, candidates: [{ owner: A, slots: 1 }], stakes: stakes({ [A]: 1 }) })
  assert.equal(one.map(x => x.ok ? 'ok' : x.code), ['STAKE_TOO_LOW'], 'a stake below one task')
})

test.run()
