import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { boundReceipt, slotUnitsPerHour } from '../../../../src/core/settlement/bounds.js'
import { chargeUnits, decimalToUnits } from '../../../../src/core/compute/pricing.js'

const DBC = 10n ** 18n
const offer = { priceGpuHour: 0, priceCpuHour: 0.05 }

test('an honest receipt within the offer is paid in full', () => {
  const billed = chargeUnits({ gpuSeconds: 0, cpuMs: 900 }, offer)
  const r = boundReceipt({ receiptAmount: billed, usage: { gpuSeconds: 0, cpuMs: 900 }, offer, gpus: 0, cores: 1, measuredMs: 1000, timeoutMs: 60_000 })
  assert.is(r.payable, billed)
  assert.is(r.refused, 0n)
  assert.is(r.limit, 'receipt')
  assert.is(r.reason, undefined)
})

test('a receipt priced above the offer is paid at the offer price (the issue\'s 1,000 per CPU-hour case)', () => {
  // the overcharger claims one CPU-hour at 1,000 DBC/h: 1,000 DBC; it ran ~20 ms
  const over = { priceGpuHour: 0, priceCpuHour: 1000 }
  const billed = chargeUnits({ gpuSeconds: 0, cpuMs: 3_600_000 }, over)
  assert.is(billed, 1000n * DBC)
  const r = boundReceipt({ receiptAmount: billed, usage: { gpuSeconds: 0, cpuMs: 3_600_000 }, offer, gpus: 0, cores: 1, measuredMs: 20, timeoutMs: 60_000 })
  // 0.05 DBC/h for 20 ms
  assert.is(r.payable, decimalToUnits(0.05) * 20n / 3_600_000n)
  assert.is(r.refused, billed - r.payable)
  assert.is(r.limit, 'time')
  assert.match(r.reason ?? '', /offer's price/)
  assert.match(r.reason ?? '', /DBC/)
})

test('usage repriced at the offer wins when the time is long enough', () => {
  const over = { priceGpuHour: 0, priceCpuHour: 2 }
  const usage = { gpuSeconds: 0, cpuMs: 1000 }
  const r = boundReceipt({ receiptAmount: chargeUnits(usage, over), usage, offer, gpus: 0, cores: 1, measuredMs: 5000, timeoutMs: 60_000 })
  assert.is(r.payable, chargeUnits(usage, offer))
  assert.is(r.limit, 'offer-price')
})

test('time is capped by the task timeout, not only by the measured time', () => {
  const billed = 10n * DBC
  const r = boundReceipt({ receiptAmount: billed, offer, gpus: 0, cores: 1, measuredMs: 3_600_000, timeoutMs: 1000 })
  assert.is(r.payable, decimalToUnits(0.05) * 1000n / 3_600_000n)
  assert.match(r.reason ?? '', /timeout/)
})

test('maxPricePerHour caps the rate below the offer\'s', () => {
  const rich = { priceGpuHour: 10, priceCpuHour: 1 }
  const r = boundReceipt({ receiptAmount: 10n * DBC, offer: rich, gpus: 1, cores: 2, measuredMs: 3_600_000, timeoutMs: 7_200_000, maxPricePerHour: 5 })
  assert.is(slotUnitsPerHour(rich, 1, 2), 12n * DBC)
  assert.is(r.payable, 5n * DBC)
  assert.is(r.limit, 'max-price')
})

test('budget.total: never past what is left after what the job committed', () => {
  const usage = { gpuSeconds: 0, cpuMs: 3_600_000 }
  const billed = chargeUnits(usage, offer)
  const budgetTotal = decimalToUnits(0.01)
  const first = boundReceipt({ receiptAmount: billed, usage, offer, gpus: 0, cores: 1, measuredMs: 3_600_000, timeoutMs: 3_600_000, budgetTotal, committed: 0n })
  assert.is(first.payable, budgetTotal)
  assert.is(first.limit, 'budget')
  const second = boundReceipt({ receiptAmount: billed, usage, offer, gpus: 0, cores: 1, measuredMs: 3_600_000, timeoutMs: 3_600_000, budgetTotal, committed: budgetTotal })
  assert.is(second.payable, 0n)
  assert.is(second.refused, billed)
  const over = boundReceipt({ receiptAmount: billed, usage, offer, gpus: 0, cores: 1, measuredMs: 3_600_000, timeoutMs: 3_600_000, budgetTotal, committed: budgetTotal * 2n })
  assert.is(over.payable, 0n)
})

test('hostile numbers pay nothing and never throw', () => {
  for (const measuredMs of [NaN, -5]) {
    const r = boundReceipt({ receiptAmount: DBC, offer, gpus: 0, cores: 1, measuredMs, timeoutMs: 1000 })
    assert.is(r.payable, 0n)
  }
  // 0 measured (back within one Date.now() ms) is under 1 ms, not nothing: 1 ms of the slot
  const zero = boundReceipt({ receiptAmount: DBC, offer, gpus: 0, cores: 1, measuredMs: 0, timeoutMs: 1000 })
  assert.is(zero.payable, decimalToUnits(offer.priceCpuHour) / 3_600_000n)
  const neg = boundReceipt({ receiptAmount: -5n, offer, gpus: 0, cores: 1, measuredMs: 10, timeoutMs: 1000 })
  assert.is(neg.payable, 0n)
  assert.is(neg.refused, 0n)
  const bad = boundReceipt({ receiptAmount: DBC, offer: { priceGpuHour: NaN, priceCpuHour: 1 }, gpus: 0, cores: 1, measuredMs: 10, timeoutMs: 1000 })
  assert.is(bad.payable, 0n)
  assert.is(bad.refused, DBC)
})

test.run()
