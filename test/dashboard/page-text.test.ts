// The dashboard's Node page prints the provider's prices as its policy states them, as `dbc node
// status` does (found by helper user: a CPU-only provider asking 1 DBC per GPU-hour showed
// "0 per GPU-hour", the price of the GPUs it offers, none; a per-model price was raw JSON), and
// the Jobs page's work served for others shows its amounts with the unit once (was "0 DBC DBC").
import { test } from 'uvu'
import * as assert from 'uvu/assert'
// @ts-expect-error: the page's own plain-JS module (no types)
import { dbcText, pricesText, trainingWhy, placeText, trainingDrops } from '../../src/dashboard/web/lib.js'

test('the policy prices, one GPU price or one per model', () => {
  assert.is(pricesText({ cpuHour: 0.05, gpuHour: 1, unit: 'DBC' }), 'prices: 0.05 DBC per CPU-hour, 1 DBC per GPU-hour')
  assert.is(pricesText({ cpuHour: 18, gpuHour: { RTX4090: 300, '*': 500 } }), 'prices: 18 DBC per CPU-hour, RTX4090 300, other GPUs 500 DBC per GPU-hour')
  assert.is(pricesText(undefined), 'prices: -')
})

test('amounts the API gives as DBC text keep one unit', () => {
  assert.is(dbcText('0.000001819444444441 DBC'), '0.000001819444444441 DBC')
  assert.is(dbcText('0.5'), '0.5 DBC')
  assert.is(dbcText(undefined), '-')
})

// helper user16's walk: a training job every invited peer refused showed 'failed, 0 / 30' and empty
// charts, with no reason; `dbc job status` printed the error
test('a training job says why it failed, else what members refused', () => {
  const refusals = [{ peer: '12D3KooWpeer', code: 'PRICE_ABOVE_CAP', reason: 'PRICE_ABOVE_CAP: this member asks 30 DBC per hour' }]
  assert.equal(trainingWhy({ status: 'failed', error: { code: 'INVITES_REFUSED', message: 'all invited peers refused: ...' }, refusals }), { error: 'all invited peers refused: ...', refusals: [] })
  assert.equal(trainingWhy({ status: 'running', refusals }), { error: undefined, refusals: [{ peer: '12D3KooWpeer', code: 'PRICE_ABOVE_CAP', reason: 'PRICE_ABOVE_CAP: this member asks 30 DBC per hour' }] })
  assert.equal(trainingWhy({ status: 'running' }), { error: undefined, refusals: [] })
  assert.is(trainingWhy({ refusals: Array.from({ length: 20 }, (_, i) => ({ peer: `p${i}`, code: 'BUSY', reason: 'BUSY' })) }).refusals.length, 8)
})

// helper user16 #8: the "dropped" card counted drop events (3 for 2 peers, one of them back)
test('a training job\'s drops: peers dropped and not back, the drop events apart', () => {
  const history = [{ round: 0, dropped: [] }, { round: 1, dropped: ['A', 'C'] }, { round: 4, dropped: ['C'] }]
  const d = trainingDrops({ members: ['A', 'B'], history })
  assert.equal(d.notBack, ['C'])
  assert.equal(d.rows, [{ round: 2, peer: 'A', back: true }, { round: 2, peer: 'C', back: false }, { round: 5, peer: 'C', back: false }])
  assert.equal(trainingDrops({}), { rows: [], notBack: [] })
})

test('the Node page names the country of a declared city (helper user16: "Virginia" was Virginia, ZA)', () => {
  assert.is(placeText({ name: 'Virginia', country: 'ZA', lat: -28.10391, lon: 26.86593 }), 'Virginia, ZA (-28.10, 26.87)')
  assert.is(placeText({ lat: 1, lon: 2 }), '(1.00, 2.00)')
})

test.run()
