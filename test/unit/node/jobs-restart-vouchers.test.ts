// A grid job's final vouchers are signed and sent after its end is reported (8deaef6: held by the
// payer, after the job's status is written). A node killed in that window finds, when it starts
// again, an ended job whose escrow is not closed: it signs what the end could not and closes the
// escrow, and its providers must get that final voucher too (before 8deaef6 the job was still
// `running` then and its resumed runner sent it): else the escrow's unspent rest, the providers'
// last total included, goes back to the payer after the dispute window (review19).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayments } from '../../../src/node/job-payments.js'
import { JobsSubsystem } from '../../../src/node/jobs-subsystem.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { fakeBridge, paidManifest as manifest, testProvider as provider, billedCopy as copy } from '../../helpers/payment-doubles.js'

test('a node killed between a job\'s end and its final vouchers sends them when it starts again', async () => {
  const { bridge, calls, state } = fakeBridge()
  const db = openStore(':memory:')
  const jobId = 'd4'.repeat(16)
  const a = provider()
  const { peer, payout } = a

  // the first life of the node: the job pays two copies; its end is reported, and the node dies
  // before the final voucher (the held work) is signed and sent
  const first = new JobPayments({ store: new PaymentStore(db), bridge: () => bridge })
  const pay = (await first.forJob(jobId, manifest()))!
  await pay.ensureEscrow!(0.1, 0)
  assert.ok(pay.payer.addPayee('A', { payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: peer }))
  state.failSign = true
  for (const index of [0, 1]) {
    const o = await pay.payer.pay(copy(a, jobId, index))
    assert.ok(o.recorded && o.payable > 0n)
  }
  const owed = first.store.voucher(jobId, payout)!.cumulative
  assert.ok(owed > 0n)
  assert.is(first.store.voucher(jobId, payout)?.signature, undefined, 'nothing signed before the kill')

  // the second life: the job is not running (it ended), its escrow not closed
  state.failSign = false
  const sent: Array<{ peer: string, cumulative: bigint, receiptCount: number }> = []
  const jobs = new JobsSubsystem({ bridge: () => bridge })
  const inner = jobs as unknown as { service: unknown, transport: unknown, ctx: unknown }
  jobs.payments = new JobPayments({ store: new PaymentStore(db), bridge: () => bridge })
  inner.service = { resumeAll: async () => [], status: () => ({ status: 'finished' }) }
  inner.transport = {
    sendVoucher: async (p: string, v: dbc.task.v1.IVoucher) => {
      sent.push({ peer: p, cumulative: BigInt(`0x${Buffer.from(v.cumulative ?? new Uint8Array()).toString('hex') || '0'}`), receiptCount: Number(v.receiptCount ?? 0) })
      return v
    }
  }
  inner.ctx = { log: { info: () => {}, warn: () => {} } }
  await jobs.afterNetworkStart()
  for (let i = 0; i < 50 && sent.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 10))
  const row = jobs.payments.store.voucher(jobId, payout)!
  assert.ok(row.signature !== undefined && row.signedCumulative === owed, 'signed at the restart')
  assert.ok(calls.includes('close'), 'closed at the restart')
  assert.equal(sent, [{ peer: 'A', cumulative: owed, receiptCount: 2 }], 'the provider got its final voucher')
})

test.run()
