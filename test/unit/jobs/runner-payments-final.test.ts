// A job's end at the runner's payments (RunnerPayments.final): the copies settled in the job's
// last step are handed in after that step's transaction, and their batch is recorded at once, not
// PAY_BATCH_MS after the last batch (the job's end waited ~100 ms for that timer: TRACE s18); each
// copy is paid once. The final vouchers are signed and sent after the job's end is reported, held
// by the payer: its idle() (the node's close, release and stop) waits for them.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayer } from '../../../src/jobs/payer.js'
import { RunnerPayments, PAY_BATCH_MS } from '../../../src/jobs/runner-payments.js'
import type { JobRunnerInit, JobSummary } from '../../../src/jobs/runner-types.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt } from '../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { voucherTypedData } from '../../../src/core/settlement/voucher.js'
import { formatCoins } from '../../../src/core/settlement/stake.js'
import { voucherFromWire } from '../../../src/core/settlement/voucher-wire.js'
import { manifest } from '../../integration/jobs-helpers.js'

const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const enc = new TextEncoder()
const jobId = 'cf'.repeat(16)
const jobIdBytes = Uint8Array.from(Buffer.from(jobId, 'hex'))
const secretKey = new Uint8Array(randomBytes(32))
const peer = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
const payout = privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}`
const prices = { priceGpuHour: 0, priceCpuHour: 0.05 }

/** A copy's signed receipt, as the provider returns it (index:attempt 1). */
function receipt (index: number): Uint8Array {
  const taskId = enc.encode(`${jobId}:${index}:1`)
  const r = buildReceipt({ jobId: jobIdBytes, taskId, provider: peer, consumer: new Uint8Array(34), usage: { wallMs: 5, cpuMs: 5, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), payoutAddress: payout })
  return dbc.receipt.v1.SignedReceipt.encode(signReceipt(r, secretKey)).finish()
}

/**
 * Timers held, never fired, while `fn` runs (what finishes meanwhile did not wait for them,
 * whatever the box's load), and performance.now() frozen (the batch's wait is its full PAY_BATCH_MS).
 */
async function withHeldTimers<T> (fn: (held: number[]) => Promise<T>): Promise<T> {
  const real = globalThis.setTimeout
  const now = performance.now
  const frozen = now.call(performance)
  const held: number[] = []
  globalThis.setTimeout = ((cb: () => void, ms?: number) => {
    if ((ms ?? 0) > 0) { held.push(ms ?? 0); return real(() => {}, 0) }
    return real(cb, ms)
  }) as typeof setTimeout
  performance.now = () => frozen
  try { return await fn(held) } finally { globalThis.setTimeout = real; performance.now = now }
}

/** Resolves after `n` turns of the event loop (no timer). */
async function turns (n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>(resolve => setImmediate(resolve))
}

function setup (): { rp: RunnerPayments, payer: JobPayer, store: PaymentStore, sent: Array<{ provider: string, cumulative: string, count: number }> } {
  const store = new PaymentStore(openStore(':memory:'))
  const payer = new JobPayer({ jobId, jobIdBytes, payerAddress: payerKey.address, store, gpus: 0, cores: 1, timeoutMs: 60_000, sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain)) })
  payer.addPayee('A', { payout, prices, providerBytes: peer })
  const sent: Array<{ provider: string, cumulative: string, count: number }> = []
  const m = manifest({ resources: { cores: 1 }, task: { timeoutMs: 60_000, expectedMs: 1 } })
  const init = {
    jobId, manifest: m, holder: { peerId: new Uint8Array(34), secretKey: new Uint8Array(32) }, code: new Uint8Array(1),
    transport: { sendVoucher: async (provider: string, w: dbc.task.v1.IVoucher) => { const v = voucherFromWire(w); sent.push({ provider, cumulative: String(v?.voucher.cumulative), count: v?.voucher.receiptCount ?? -1 }) } },
    payment: { terms: {}, payer }
  } as unknown as JobRunnerInit
  const rp = new RunnerPayments(init, m, jobId, () => 0)
  rp.offerPrices.set('A', prices)
  return { rp, payer, store, sent }
}

test('the copies settled in the last step are recorded at once at the job\'s end, not at their batch\'s timer', async () => {
  const { rp, payer, store, sent } = setup()
  await withHeldTimers(async (held) => {
    // the job's last step recorded a batch (its transaction): the next batch would wait PAY_BATCH_MS
    rp.recordQueued()()
    // then the copies that step settled are handed in (no pump: the runner detached it at its end)
    const paid: Array<Promise<void>> = []
    for (let i = 0; i < 3; i++) {
      rp.sent(i, 0); rp.returnedCopy(i, 5, receipt(i))
      paid.push(rp.payCopy(i, 1, 'A', i))
    }
    // their receipts' checks run in the thread pool; the first checked opens the batch and its timer
    for (let i = 0; i < 100_000 && !rp.hasQueued; i++) await turns(1)
    assert.ok(rp.hasQueued, 'a checked copy waits in the batch')
    assert.equal(held, [PAY_BATCH_MS], 'the batch waits for its timer')
    let ended = false
    const fin = rp.final({ jobId, status: 'finished' } as unknown as JobSummary).then(s => { ended = true; return s })
    // nothing fires the held timer: the end comes from the turns alone (and the voucher's signature)
    for (let i = 0; i < 20_000 && !ended; i++) await turns(1)
    assert.ok(ended, 'the job\'s end did not wait for the batch timer')
    const summary = await fin
    await Promise.all(paid)
    // the final vouchers are signed and sent after the job's end, held by the payer (its idle waits for them)
    await payer.idle()
    for (let i = 0; i < 3; i++) assert.ok(store.hasPayment(jobId, `${i}:1`), `copy ${i} is paid`)
    assert.is(store.payments(jobId).length, 3, 'each copy once')
    const row = store.voucher(jobId, payout)
    assert.ok(row !== undefined && row.cumulative > 0n && row.signedCumulative === row.cumulative && row.signedCount === 3, 'the final voucher is signed for all three copies')
    assert.equal(summary.payment?.paid !== undefined, true)
    assert.ok(sent.some(s => s.provider === 'A' && s.count === 3 && s.cumulative === row.cumulative.toString()), 'the provider got its final voucher')
    assert.is(payer.committedUnits, row.cumulative)
  })
})

test('the job\'s end does not wait for the final vouchers to reach the providers; the payer\'s idle() does', async () => {
  const { rp, payer, store, sent } = setup()
  // the provider's side of the voucher stream answers only when let go
  let letGo: () => void = () => {}
  const gate = new Promise<void>(resolve => { letGo = resolve })
  const init = (rp as unknown as { init: { transport: { sendVoucher: (p: string, w: dbc.task.v1.IVoucher) => Promise<void> } } }).init
  const deliver = init.transport.sendVoucher
  init.transport.sendVoucher = async (p, w) => { await gate; await deliver(p, w) }
  rp.sent(7, 0); rp.returnedCopy(7, 5, receipt(7))
  // copy 9 comes back with copy 8's receipt: refused, in full
  rp.sent(9, 0); rp.returnedCopy(9, 5, receipt(8))
  await Promise.all([rp.payCopy(7, 1, 'A', 7), rp.payCopy(9, 1, 'A', 9)])
  const summary = await rp.final({ jobId, status: 'finished' } as unknown as JobSummary)
  const units = store.voucher(jobId, payout)!.cumulative
  const view = payer.view()
  assert.ok(units > 0n && BigInt(view.refused) > 0n)
  assert.is(view.committed, units.toString(), 'the totals are recorded before the end')
  assert.equal(summary.payment, { paid: formatCoins(units), refused: formatCoins(BigInt(view.refused)), unit: 'DBC' }, 'and the summary reports them')
  let idle = false
  const waiting = payer.idle().then(() => { idle = true })
  await turns(200)
  assert.is(idle, false, 'the payer is not idle while its final voucher is on its way')
  assert.is(sent.length, 0)
  letGo()
  await waiting
  assert.equal(sent, [{ provider: 'A', cumulative: units.toString(), count: 1 }], 'the provider got its final voucher')
  assert.is(store.voucher(jobId, payout)!.signedCumulative, units, 'signed for all of it')
})

test.run()
