import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatCoins, stakeForGpu, stakeRequired, STAKE_PER_GPU } from '../../../../src/core/settlement/index.js'

const E18 = 10n ** 18n

test('stake per GPU at GPU 1, 10,000, 10,001 and 20,000 matches the seed formula', () => {
  // 100,000 for the first 10,000 GPUs; GPU 10,000+n: 100,000 x 10000/(10000+n), wei rounded down.
  assert.is(stakeForGpu(1), 100_000n * E18)
  assert.is(stakeForGpu(10_000), 100_000n * E18)
  assert.is(stakeForGpu(10_001), 99_990_000_999_900_009_999_000n) // 100000e18*10000/10001 = 99990.000999900009999000...e18
  assert.is(stakeForGpu(20_000), 50_000n * E18)
  // against the formula written out as rationals: |computed - exact| < 1 wei
  for (const g of [10_001, 12_345, 20_000, 123_457]) {
    const exactNum = 100_000n * E18 * 10_000n
    const v = stakeForGpu(g)
    assert.ok(v * BigInt(g) <= exactNum && (v + 1n) * BigInt(g) > exactNum, `GPU ${g}`)
  }
})

test('stake for several GPUs sums the per-GPU values from the network count', () => {
  assert.is(stakeRequired(0, 1), STAKE_PER_GPU)
  assert.is(stakeRequired(0, 3), 3n * STAKE_PER_GPU)
  assert.is(stakeRequired(9_999, 2), STAKE_PER_GPU + stakeForGpu(10_001))
  assert.is(stakeRequired(19_999, 1), 50_000n * E18)
  assert.throws(() => stakeRequired(0, 0), /gpus must be/)
  assert.throws(() => stakeForGpu(0), /start at 1/)
})

test('coins format without losing wei', () => {
  assert.is(formatCoins(99_990_000_999_900_009_999_000n), '99990.000999900009999')
  assert.is(formatCoins(10n ** 18n), '1')
  assert.is(formatCoins(1n), '0.000000000000000001')
  assert.is(formatCoins(0n), '0')
})

test.run()
