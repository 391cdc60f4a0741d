// An offer's claimed speed is its own word until its copies are measured: placement and the
// fastest-lease-first order (job-dispatch.ts) take it through perfRatioOf, which refuses a
// claim that is not a finite positive number and caps it (review s9 L4: Infinity won every task).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { offerView, perfRatioOf, MAX_PERF_RATIO, PERF_SCORE_REFERENCE } from '../../../../src/core/scheduler/ports.js'

test('a claimed perfScore that is not finite or not positive counts as the reference; a huge one is capped', () => {
  assert.is(perfRatioOf(undefined), 1)
  assert.is(perfRatioOf(2 * PERF_SCORE_REFERENCE), 2)
  for (const bad of [Infinity, -Infinity, NaN, 0, -5]) assert.is(perfRatioOf(bad), 1, String(bad))
  assert.is(perfRatioOf(1e12), MAX_PERF_RATIO)
  assert.is(offerView({ perfScore: Infinity, slots: 1 }, 'p').perfScore, 1)
  assert.is(offerView({ perfScore: 1e9, slots: 1 }, 'p').perfScore, MAX_PERF_RATIO)
})

test.run()
