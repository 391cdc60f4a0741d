// A lease's task price at the payment gate (leaseTaskPrice): admitTask and finished price every task
// (the credit rule, the save threshold); the lease's prices and slot are fixed, so the price of a
// timeout is worked out once and held, keyed by the timeout (tasks of one lease may name others).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { leaseTaskPrice, type LeasePayment } from '../../../src/jobs/payment-gate-types.js'
import { taskPriceUnits } from '../../../src/core/settlement/credit.js'

function lease (): LeasePayment {
  return { terms: {} as never, prices: { priceGpuHour: 1.5, priceCpuHour: 0.05 }, gpus: 1, cores: 2, slots: 2, inflight: 0 }
}

test('the held price equals taskPriceUnits for each timeout, held once per timeout', () => {
  const lp = lease()
  for (const ms of [60_000, 60_000, 1, 1, 59_999.5, 0, -5, Number.NaN, 600_000, 60_000]) {
    assert.is(leaseTaskPrice(lp, ms), taskPriceUnits(lp.prices, lp.gpus, lp.cores, ms), `timeout ${ms}`)
  }
  assert.equal(lp.priced, { timeoutMs: 60_000, units: taskPriceUnits(lp.prices, lp.gpus, lp.cores, 60_000) })
})

test('a held price is the one used: a task of another timeout is priced at its own, not the held one', () => {
  const lp = lease()
  const short = leaseTaskPrice(lp, 1000)
  // what is held is what is returned for that timeout (the gate reads it per task, not taskPriceUnits)
  lp.priced = { timeoutMs: 1000, units: 7n }
  assert.is(leaseTaskPrice(lp, 1000), 7n)
  assert.is(leaseTaskPrice(lp, 120_000), taskPriceUnits(lp.prices, lp.gpus, lp.cores, 120_000))
  assert.ok(leaseTaskPrice(lp, 120_000) > short)
  assert.is(leaseTaskPrice(lp, 1000), short, 'worked out again after another timeout')
})

test.run()
