// One predicted RTT for `dbc peers --near`, `dbc find` and the daemon's route choice.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { predictedRttMs, VIVALDI_SETTLED_ERROR } from '../../../src/core/geo/predicted-rtt.js'

test('a settled Vivaldi coordinate beats the declared locations\' geo model', () => {
  // four nodes on one machine "in" Paris and Tokyo: Vivaldi learnt 0.5 ms, geo says 160 ms
  assert.is(predictedRttMs({ vivaldiRttMs: 0.5, geoRttMs: 160.6 }, VIVALDI_SETTLED_ERROR / 2), 0.5)
})

test('until it settles, the geo model; without one, raw Vivaldi; with neither, nothing', () => {
  assert.is(predictedRttMs({ vivaldiRttMs: 0.5, geoRttMs: 160.6 }, 1.5), 160.6)
  assert.is(predictedRttMs({ vivaldiRttMs: 0.5 }, 1.5), 0.5)
  assert.is(predictedRttMs({ geoRttMs: 12 }, 0.1), 12)
  assert.is(predictedRttMs({}, 0.1), undefined)
})

test.run()
