// A daemon that runs for months holds the payers of its running jobs only (review16b M2): a
// job's payer is dropped when the job ended, and what comes after the end (a settle that signs
// what the end could not, a voucher re-sent to a provider back online, a resumed job paying on)
// works from the payment store alone.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayments } from '../../../src/node/job-payments.js'
import { TrainingPayments } from '../../../src/node/training-payments.js'
import { JobsSubsystem } from '../../../src/node/jobs-subsystem.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { voucherSigner } from '../../../src/core/settlement/voucher.js'
import { fakeBridge, paidManifest as manifest, testProvider as provider, billedCopy as copy, voucherDomain as domain } from '../../helpers/payment-doubles.js'

test('grid jobs that ended hold no payer; a settle after the drop signs what the end could not, re-sends it, and a resumed payer pays on from the store', async () => {
  const { bridge, key, calls, state } = fakeBridge()
  const store = new PaymentStore(openStore(':memory:'))
  const payments = new JobPayments({ store, bridge: () => bridge })
  const a = provider()
  const jobs = ['a1', 'b2', 'c3'].map(x => x.repeat(16))
  for (const job of jobs) {
    const pay = await payments.forJob(job, manifest())
    await pay!.ensureEscrow!(0.1, 0)
    assert.ok(pay!.payer.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer }))
    // the last job's voucher cannot be signed, nor its escrow closed: the chain is down at its end
    state.failSign = state.failClose = job === jobs[2]
    const o = await pay!.payer.pay(copy(a, job, 0))
    assert.ok(o.recorded && o.payable > 0n)
  }
  assert.is(payments.payersHeld, 3)
  for (const job of jobs) {
    state.failSign = state.failClose = job === jobs[2]
    await payments.finish(job).catch(() => {})
  }
  assert.is(payments.payersHeld, 0, 'every job ended: no payer held')
  const late = jobs[2]
  assert.is(store.voucher(late, a.payout)?.signature, undefined, 'not signed while the chain was down')
  assert.is(store.escrow(late)?.closedAt, undefined)

  // `dbc job settle` once the chain is back: signed from the store, then closed
  state.failSign = false; state.failClose = false
  await payments.finish(late)
  const row = store.voucher(late, a.payout)!
  assert.ok(row.signature !== undefined && row.signedCumulative === row.cumulative && row.signedCount === 1, 'the total meant at the end is signed')
  assert.is(calls.filter(c => c === 'close').length, 3)
  assert.is(payments.payersHeld, 0)
  // the resend to a provider that was down at the end
  const latest = payments.latestVouchers(late)
  assert.equal(latest.map(l => l.providers), [['A']])
  assert.is(latest[0].voucher.voucher.cumulative, row.cumulative)
  assert.is(await voucherSigner(latest[0].voucher, domain), key.address.toLowerCase())

  // a payer made again (a job resumed after a restart) pays on from the store: a copy paid before
  // is not paid twice, a new one adds to the same total
  const again = await payments.forJob(jobs[0], manifest())
  const before = again!.payer.committedUnits
  assert.ok(before > 0n)
  assert.is((await again!.payer.pay(copy(a, jobs[0], 0))).recorded, false)
  const o = await again!.payer.pay(copy(a, jobs[0], 1))
  assert.ok(o.recorded)
  assert.is(again!.payer.committedUnits, before + o.payable)
  assert.is(o.voucher?.voucher.receiptCount, 2)
  await payments.finish(jobs[0])
  assert.is(payments.payersHeld, 0)
})

test('training: an ended job, and one whose escrow could not be locked, hold no payer', async () => {
  const { bridge, state } = fakeBridge()
  const payments = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge })
  const tp = new TrainingPayments({ payments: () => payments, sendVoucher: async () => {} })
  const spec = parseTrainingSpec({ rounds: 2, groupSize: 2, budget: 3 })
  await tp.start('training-ended', spec, { groupSize: 2 })
  assert.is(payments.payersHeld, 1)
  await tp.finish('training-ended')
  assert.is(payments.payersHeld, 0)
  state.failDeposit = true
  let err: unknown
  try { await tp.start('training-no-escrow', spec, { groupSize: 2 }) } catch (e) { err = e }
  assert.match((err as Error).message, /no funds/)
  assert.is(payments.payersHeld, 0, 'a job that never started keeps no payer')
  assert.is((tp as unknown as { jobs: Map<string, unknown> }).jobs.size, 0)
})

test('dbc job settle on a running training job neither closes its escrow nor drops its payer; its end does', async () => {
  const { bridge, calls } = fakeBridge()
  const payments = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge })
  const tp = new TrainingPayments({ payments: () => payments, sendVoucher: async () => {} })
  const jobs = new JobsSubsystem({ bridge: () => bridge })
  jobs.payments = payments
  jobs.trainingPayments = tp
  await tp.start('training-running', parseTrainingSpec({ rounds: 2, groupSize: 2, budget: 3 }), { groupSize: 2 })
  const view = await jobs.settle('training-running')
  assert.is(view.closedAt, undefined)
  assert.not.ok(calls.includes('close'))
  assert.is(payments.payersHeld, 1)
  await tp.finish('training-running')
  assert.ok(calls.includes('close'))
  assert.is(payments.payersHeld, 0)
})

test.run()
