import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { chargeUnits, decimalToUnits } from '../../../../src/core/compute/pricing.js'

test('decimal prices convert exactly', () => {
  assert.is(decimalToUnits('1'), 10n ** 18n)
  assert.is(decimalToUnits(1.25), 1_250_000_000_000_000_000n)
  assert.is(decimalToUnits(0.1), 100_000_000_000_000_000n) // no binary float error
  assert.is(decimalToUnits(1e-7), 100_000_000_000n)
  assert.is(decimalToUnits('0.0000000000000000019'), 1n) // beyond 18 decimals: dropped
  assert.is(decimalToUnits(1e21), 10n ** 39n)
  assert.is(decimalToUnits('2.5', 6), 2_500_000n)
  assert.throws(() => decimalToUnits(-1), /not a non-negative decimal/)
  assert.throws(() => decimalToUnits(NaN), /not a non-negative decimal/)
  assert.throws(() => decimalToUnits('.'), /not a non-negative decimal/)
})

test('a price converted again (held: every receipt of an offer has its prices) is the same as its text converted; other decimals and bad prices are not held', () => {
  fc.assert(fc.property(fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 400 }), prices => {
    for (let round = 0; round < 2; round++) {
      for (const p of prices) {
        assert.is(decimalToUnits(p), decimalToUnits(String(p)))
        assert.is(decimalToUnits(p, 6), decimalToUnits(String(p), 6))
      }
    }
  }), { numRuns: 20 })
  assert.is(decimalToUnits(1.5), 1_500_000_000_000_000_000n)
  assert.is(decimalToUnits(1.5, 2), 150n)
  for (let i = 0; i < 2; i++) assert.throws(() => decimalToUnits(-1), RangeError)
})

test('one GPU-hour at 2 tokens costs exactly 2 tokens', () => {
  assert.is(chargeUnits({ gpuSeconds: 3600, cpuMs: 0 }, { priceGpuHour: 2, priceCpuHour: 0 }), 2n * 10n ** 18n)
  assert.is(chargeUnits({ gpuSeconds: 0, cpuMs: 3_600_000 }, { priceGpuHour: 9, priceCpuHour: 0.05 }), 5n * 10n ** 16n)
  // both components add up, one rounding at the end
  assert.is(chargeUnits({ gpuSeconds: 1.5, cpuMs: 250 }, { priceGpuHour: 1, priceCpuHour: 0.1 }), (10n ** 18n * 1500n + 10n ** 17n * 250n) / 3_600_000n)
})

test('rounding: metered ms half up, amount down', () => {
  // 1 unit per hour for 1 ms is 1/3.6e6 unit: rounds down to 0
  assert.is(chargeUnits({ gpuSeconds: 0, cpuMs: 1 }, { priceGpuHour: 0, priceCpuHour: '0.000000000000000001' as unknown as number }), 0n)
  assert.is(chargeUnits({ gpuSeconds: 0.0004, cpuMs: 0.5 }, { priceGpuHour: 3600, priceCpuHour: 3600 }), 10n ** 15n) // 0 GPU ms + 1 CPU ms at 1 token/s
})

test('property: the charge is monotone in usage and never above the exact value', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 1000 }), (a, b, p) => {
    const prices = { priceGpuHour: p / 10, priceCpuHour: p / 100 }
    const lo = chargeUnits({ gpuSeconds: Math.min(a, b) / 1000, cpuMs: Math.min(a, b) }, prices)
    const hi = chargeUnits({ gpuSeconds: Math.max(a, b) / 1000, cpuMs: Math.max(a, b) }, prices)
    assert.ok(lo <= hi)
    const exactNumerator = decimalToUnits(prices.priceGpuHour) * BigInt(a) + decimalToUnits(prices.priceCpuHour) * BigInt(a)
    const c = chargeUnits({ gpuSeconds: a / 1000, cpuMs: a }, prices)
    assert.ok(c * 3_600_000n <= exactNumerator && exactNumerator < (c + 1n) * 3_600_000n)
  }))
})

test.run()
