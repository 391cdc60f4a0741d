// One formatter for DBC amounts; the refusal summary `dbc job status` prints.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatDbc, plainDecimal } from '../../../src/cli/output.js'
import { refusalSummary } from '../../../src/cli/job.js'

test('float DBC: rounded to 10 significant digits, never an exponent, with the unit', () => {
  assert.is(formatDbc(4.999999999909999e-7), '0.0000005 DBC')
  assert.is(formatDbc(0.1 + 0.2), '0.3 DBC')
  assert.is(formatDbc(12.5), '12.5 DBC')
  assert.is(formatDbc(0), '0 DBC')
  assert.is(formatDbc(1e21), '1000000000000000000000 DBC')
  assert.is(formatDbc(-0.00042), '-0.00042 DBC')
  assert.is(formatDbc(1234567.891), '1234567.891 DBC')
  assert.is(formatDbc(1e-20), '0 DBC', 'below one wei')
})

test('exact amounts stay exact: decimal strings as given (trailing zeros dropped), bigints are wei', () => {
  assert.is(formatDbc('0.000000499999999991'), '0.000000499999999991 DBC')
  assert.is(formatDbc('2.50'), '2.5 DBC')
  assert.is(formatDbc('7'), '7 DBC')
  assert.is(formatDbc(10n ** 18n / 2n), '0.5 DBC')
  assert.is(formatDbc(1n), '0.000000000000000001 DBC')
  assert.is(formatDbc(3n * 10n ** 18n, { unit: false }), '3')
})

test('nothing to show is a dash; what is not an amount is shown as it came', () => {
  assert.is(formatDbc(undefined), '-')
  assert.is(formatDbc(null), '-')
  assert.is(formatDbc('n/a'), 'n/a')
})

test('plainDecimal never writes an exponent', () => {
  for (const x of [1e-7, 3.3e-12, 9.87654321e15, 123.456, 1 / 3]) {
    const s = plainDecimal(x, 10)
    assert.not.match(s, /e/i, s)
    assert.ok(Math.abs(Number(s) - x) <= Math.abs(x) * 1e-9, `${s} ~ ${x}`)
  }
})

test('refusals: by code, most frequent first', () => {
  assert.is(refusalSummary({ PRICE: 3, BUSY: 12, NO_GPU: 0 }), 'BUSY x12, PRICE x3')
  assert.is(refusalSummary(undefined), '')
  assert.is(refusalSummary({ A: 'x' }), '')
})

test.run()
