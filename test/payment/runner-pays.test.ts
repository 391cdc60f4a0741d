// The submitter's runner pays through its payer (no chain here: signing with a viem key, the
// providers in process): escrow before any lease, one cumulative voucher per billed copy sent
// to its provider, receipts above the offer paid at the offer, a caught liar paid no more, and
// a provider whose payout address is not bound by its key gets no paid work.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { JobRunner, type RunnerPayment } from '../../src/jobs/runner.js'
import { JobPayer } from '../../src/jobs/payer.js'
import { PaymentStore } from '../../src/jobs/payment-store.js'
import { openStore } from '../../src/store/db.js'
import { voucherTypedData, voucherSigner, type SignedVoucher } from '../../src/core/settlement/voucher.js'
import { voucherFromWire } from '../../src/core/settlement/voucher-wire.js'
import { payoutBindingTypedData } from '../../src/core/settlement/payout-binding.js'
import { decimalToUnits } from '../../src/core/compute/pricing.js'
import { nodeSuite } from '../../src/crypto/suite.js'
import { MAX_SIGNED_RECEIPT_BYTES } from '../../src/core/settlement/receipt.js'
import type { dbc } from '../../src/wire/gen/wire.js'
import type { FakeProvider } from '../../src/jobs/index.js'
import { key, manifest, providers, transport } from '../integration/jobs-helpers.js'

const owner = key(1)
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const payoutKeys = Array.from({ length: 8 }, () => privateKeyToAccount(generatePrivateKey()))
const payoutOf = (i: number): string => payoutKeys[i].address.toLowerCase()
// the payout key of provider i signs its peer id (providers() gives provider i key(100 + i))
const bindings = await Promise.all(payoutKeys.map(async (k, i) => Uint8Array.from(Buffer.from((await k.signTypedData(payoutBindingTypedData(key(100 + i).peerId, domain))).slice(2), 'hex'))))
const paid = (i: number): { payoutAddress: string, payoutBinding: Uint8Array } => ({ payoutAddress: payoutOf(i), payoutBinding: bindings[i] })

interface Setup { payment: RunnerPayment, payer: JobPayer, store: PaymentStore, log: string[], vouchers: Map<string, SignedVoucher[]> }

function setup (jobId: string, m: ReturnType<typeof manifest>, ps: FakeProvider[]): Setup {
  const store = new PaymentStore(openStore(':memory:'))
  const log: string[] = []
  const vouchers = new Map<string, SignedVoucher[]>()
  for (const p of ps) {
    // the provider side of a voucher delivery: keep what arrives (decoded as a provider would)
    Object.assign(p, { acceptVoucher: (w: dbc.task.v1.IVoucher) => { const sv = voucherFromWire(w); if (sv !== undefined) vouchers.set(p.id, [...(vouchers.get(p.id) ?? []), sv]); log.push(`voucher:${p.id}`); return w } })
  }
  const payer = new JobPayer({
    jobId, jobIdBytes: Uint8Array.from(Buffer.from(jobId, 'hex')), payerAddress: payerKey.address, store, gpus: 0, cores: m.resources.cores, timeoutMs: m.task.timeoutMs,
    budgetTotal: m.budget.total === undefined ? undefined : decimalToUnits(m.budget.total),
    sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain))
  })
  const payment: RunnerPayment = {
    terms: { chainId: domain.chainId, contract: Uint8Array.from(Buffer.from(domain.verifyingContract.slice(2), 'hex')), chainJobId: new Uint8Array(32), payer: new Uint8Array(20) },
    payer,
    ensureEscrow: async (predicted, reserve) => { log.push(`escrow:${predicted > 0 ? 'predicted' : 'none'}:${reserve > 0 ? 'reserve' : 'none'}`) }
  }
  return { payment, payer, store, log, vouchers }
}

function wrapLeases (tr: ReturnType<typeof transport>, log: string[]): void {
  const open = tr.openLease.bind(tr)
  tr.openLease = async (provider: string, lease: dbc.task.v1.ILease) => {
    assert.ok(lease.payment != null, 'the lease names its payment terms')
    log.push(`lease:${provider}`)
    await open(provider, lease)
  }
}

test('escrow before any lease; each provider gets cumulative vouchers for its billed copies; an overcharger is paid its offer', async () => {
  const ps = providers(4, i => ({ ...paid(i), slots: 2, ...(i === 3 ? { billCpuHour: 1000, cpuMsFactor: 1000 } : {}) }))
  const tr = transport(ps, owner)
  const jobId = 'c1'.repeat(32)
  const m = manifest({ inputs: { range: { from: 0, to: 39 } }, verification: { mode: 'off' } })
  const s = setup(jobId, m, ps)
  wrapLeases(tr, s.log)
  const r = new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment })
  const summary = await r.run()
  await s.payer.idle() // the final vouchers are signed and sent after the job's end
  tr.close()
  assert.is(summary.status, 'finished')
  assert.ok(s.log[0].startsWith('escrow:'), `the escrow came first: ${s.log.slice(0, 3).join(', ')}`)
  assert.ok(s.log.indexOf(s.log.find(l => l.startsWith('lease:'))!) > 0)
  assert.ok(summary.payment !== undefined && summary.payment.unit === 'DBC')
  const view = s.payer.view()
  for (const [i, p] of ps.entries()) {
    const got = s.vouchers.get(p.id) ?? []
    if (p.tasksRun === 0) continue
    assert.ok(got.length >= 1, `provider ${i} got vouchers`)
    for (let k = 1; k < got.length; k++) assert.ok(got[k].voucher.cumulative >= got[k - 1].voucher.cumulative, 'totals never go down')
    const last = got[got.length - 1]
    assert.is(last.voucher.provider, payoutOf(i))
    assert.is(await voucherSigner(last, domain), payerKey.address.toLowerCase(), 'signed by the payer key')
    const row = view.providers.find(x => x.payout === payoutOf(i))
    assert.is(BigInt(row!.signed), last.voucher.cumulative, 'the last voucher it got is what the payer signed')
  }
  // the overcharger billed 1,000 DBC/CPU-hour x 1000: refused down to its offer's 0.05 DBC/h for the time measured
  const over = ps[3]
  if (over.tasksRun > 0) {
    const refusals = view.refusals.filter(x => x.provider === over.id)
    assert.ok(refusals.length > 0, 'its excess was refused')
    for (const x of refusals) assert.ok(BigInt(x.paid) * 1000n < BigInt(x.billed), `paid ${x.paid} of ${x.billed}`)
    assert.match(refusals[0].reason, /offer's price|usage at the offer's prices/)
    const signed = BigInt(view.providers.find(x => x.payout === payoutOf(3))!.signed)
    assert.ok(signed < decimalToUnits(0.05) * BigInt(summary.elapsedMs) * 2n / 3_600_000n + 1n, `paid ${signed} at most its offer for the job's time on two slots`)
  }
  // honest providers were paid in full
  assert.ok(view.refusals.every(x => x.provider === over.id), JSON.stringify(view.refusals.filter(x => x.provider !== over.id)))
})

test('a liar caught by the default checks gets no voucher after it was caught', async () => {
  const ps = providers(5, i => ({ ...paid(i), slots: 2, liar: i === 0, delayMs: 2 }))
  const tr = transport(ps, owner)
  const jobId = 'c2'.repeat(32)
  const m = manifest({ inputs: { range: { from: 0, to: 59 } } })
  const s = setup(jobId, m, ps)
  const caughtAt: number[] = []
  const r = new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment, onEvent: e => { if (e.type === 'provider-caught') caughtAt.push(s.log.length) } })
  const summary = await r.run()
  await s.payer.idle() // the final vouchers are signed and sent after the job's end
  tr.close()
  assert.is(summary.status, 'finished')
  assert.equal(summary.caughtProviders, [ps[0].id])
  assert.is(caughtAt.length, 1)
  const liarVouchersAfter = s.log.slice(caughtAt[0]).filter(l => l === `voucher:${ps[0].id}`).length
  const before = s.vouchers.get(ps[0].id)?.at(-1)?.voucher.cumulative ?? 0n
  // the final round of vouchers may resend what was signed before; never a higher total
  for (const v of s.vouchers.get(ps[0].id) ?? []) assert.ok(v.voucher.cumulative <= before)
  const row = s.payer.view().providers.find(x => x.payout === payoutOf(0))
  if (row !== undefined) assert.match(row.forfeited ?? '', /caught/)
  assert.ok(liarVouchersAfter <= 1, `${liarVouchersAfter} vouchers after the catch (at most the final resend)`)
  const honest = ps.slice(1).filter(p => p.tasksRun > 0)
  assert.ok(honest.every(p => (s.vouchers.get(p.id) ?? []).length > 0), 'every honest provider that worked was paid')
})

test('a provider naming another\'s payout address without its key\'s binding gets no lease, no task and no voucher (PAYOUT_NOT_BOUND)', async () => {
  // provider 0 is honest; 1 claims 0's address unbound; 2 claims it with 0's binding of peer 0 (copied from an offer); 3 names its own address unbound
  // (delayMs: a copy that takes 0 ms bills 0 and makes no voucher row: the fake measures whole ms)
  const ps = providers(4, i => i === 0 ? { ...paid(0), slots: 2, delayMs: 2 } : i === 1 ? { payoutAddress: payoutOf(0), slots: 2 } : i === 2 ? { payoutAddress: payoutOf(0), payoutBinding: bindings[0], slots: 2 } : { payoutAddress: payoutOf(3), slots: 2 })
  const tr = transport(ps, owner)
  const jobId = 'c3'.repeat(32)
  const m = manifest({ inputs: { range: { from: 0, to: 19 } }, verification: { mode: 'off' } })
  const s = setup(jobId, m, ps)
  wrapLeases(tr, s.log)
  const summary = await new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment }).run()
  await s.payer.idle() // the final vouchers are signed and sent after the job's end
  tr.close()
  assert.is(summary.status, 'finished')
  for (const i of [1, 2, 3]) {
    assert.is(ps[i].tasksRun, 0, `provider ${i} ran nothing`)
    assert.not.ok(s.log.includes(`lease:${ps[i].id}`), `provider ${i} got no lease`)
    assert.is(s.vouchers.get(ps[i].id), undefined, `provider ${i} got no voucher`)
  }
  assert.is(ps[0].tasksRun, 20)
  const view = s.payer.view()
  assert.equal(view.providers.map(x => [x.payout, x.providers]), [[payoutOf(0), [ps[0].id]]])
  assert.ok(BigInt(view.providers[0].signed) > 0n)
})

test('receipts are checked off the main thread before they are paid (no Ed25519 in a payment transaction); the final vouchers wait for copies still in their check', async () => {
  const ps = providers(3, i => ({ ...paid(i), slots: 2 }))
  const tr = transport(ps, owner)
  const jobId = 'c4'.repeat(32)
  const m = manifest({ inputs: { range: { from: 0, to: 29 } }, verification: { mode: 'off' } })
  const s = setup(jobId, m, ps)
  const verify = nodeSuite.verify; const verifyAsync = nodeSuite.verifyAsync!
  let inPayMany = false; let verifiedInPayMany = 0; let checkedAhead = 0
  nodeSuite.verify = (k, msg, sig) => { if (inPayMany) verifiedInPayMany++; return verify(k, msg, sig) }
  // a slow thread pool: a check still runs when the job's last copy settles
  nodeSuite.verifyAsync = (k, msg, sig, done) => { checkedAhead++; verifyAsync(k, msg, sig, ok => { setTimeout(() => { done(ok) }, 30) }) }
  const payMany = s.payer.payMany.bind(s.payer)
  s.payer.payMany = (inputs) => { inPayMany = true; try { return payMany(inputs) } finally { inPayMany = false } }
  try {
    const summary = await new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment }).run()
    await s.payer.idle() // the final vouchers are signed and sent after the job's end
    tr.close()
    assert.is(summary.status, 'finished')
    const view = s.payer.view()
    assert.is(view.receipts.length, summary.billedCopies, 'every billed copy was paid')
    assert.equal(view.refusals, [], 'none refused')
    assert.ok(checkedAhead >= summary.billedCopies, `${checkedAhead} checked ahead`)
    assert.is(verifiedInPayMany, 0, 'no signature verified inside a payment transaction')
    for (const row of view.providers) assert.is(row.signed, row.intended, `payout ${row.payout}: the final voucher covers every payment`)
  } finally {
    nodeSuite.verify = verify; nodeSuite.verifyAsync = verifyAsync
  }
})

test('a receipt padded past MAX_SIGNED_RECEIPT_BYTES counts as none: nothing of it is kept, checked or paid (review s9 H1)', async () => {
  const ps = providers(3, i => ({ ...paid(i), slots: 2, ...(i === 0 ? { receiptPadBytes: 64 * 1024 } : {}), ...(i === 2 ? { failEvery: 3 } : {}) }))
  const tr = transport(ps, owner)
  const jobId = 'c5'.repeat(32)
  // a budget: the runner's budget checks each receipt too (billOf), and the payer's memo keeps what it checked
  const m = manifest({ inputs: { range: { from: 0, to: 29 } }, verification: { mode: 'off' }, budget: { total: 1000, maxPricePerHour: 1 } })
  const s = setup(jobId, m, ps)
  const kept = (): number[] => [...((s.payer as unknown as { signatures: { prechecked: Map<string, { message: Uint8Array }> } }).signatures.prechecked.values())].map(e => e.message.length)
  const r = new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment })
  const summary = await r.run()
  await s.payer.idle() // the final vouchers are signed and sent after the job's end
  tr.close()
  assert.is(summary.status, 'finished')
  assert.ok(ps[0].tasksRun > 0, 'the padding provider ran copies')
  assert.ok(kept().every(n => n <= MAX_SIGNED_RECEIPT_BYTES), `the payer keeps no padded receipt: ${kept().filter(n => n > MAX_SIGNED_RECEIPT_BYTES).length} kept`)
  const returned = (r as unknown as { payments: { returned: Map<number, { receipt?: Uint8Array }> } }).payments.returned
  assert.is(returned.size, 0, 'every settled copy was paid or forgotten')
  const view = s.payer.view()
  const padded = view.receipts.filter(x => x.provider === ps[0].id)
  assert.ok(padded.length > 0 && padded.every(x => x.paid === '0'), `no receipt of the padding provider is paid: ${JSON.stringify(padded.slice(0, 2))}`)
  assert.ok(view.refusals.filter(x => x.provider === ps[0].id).every(x => /no receipt/.test(x.reason)), JSON.stringify(view.refusals.slice(0, 2)))
  assert.ok(view.receipts.some(x => x.provider === ps[1].id), 'the honest providers are paid')
})

test('tiny copies are paid: a provider that knows pricing version 1 bills each copy under 1 ms of CPU as 1 ms, and one from before (version 0) is still checked and paid its 0', async () => {
  // copies of 0.02 ms of CPU each (a squares task), whatever their wall time: a copy's CPU time
  // taken from its wall time billed 1 ms at version 0 once a loaded box stalled it 50 ms (review s14 L3)
  const ps = providers(2, i => ({ ...paid(i), slots: 2, delayMs: 2, cpuMs: 0.02, ...(i === 1 ? { pricingVersion: 0 } : {}) }))
  const tr = transport(ps, owner)
  const jobId = 'c6'.repeat(32)
  const m = manifest({ inputs: { range: { from: 0, to: 39 } }, verification: { mode: 'off' } })
  const s = setup(jobId, m, ps)
  const summary = await new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment }).run()
  await s.payer.idle() // the final vouchers are signed and sent after the job's end
  tr.close()
  assert.is(summary.status, 'finished')
  assert.ok(ps[0].tasksRun > 0 && ps[1].tasksRun > 0, `both ran copies: ${ps[0].tasksRun}, ${ps[1].tasksRun}`)
  const view = s.payer.view()
  assert.equal(view.refusals, [], 'no receipt refused, of either version')
  const oneMs = decimalToUnits(0.05) / 3_600_000n // the fakes' 0.05 DBC per CPU-hour
  const fresh = view.receipts.filter(x => x.provider === ps[0].id)
  assert.is(fresh.length, ps[0].tasksRun, 'every copy of the version-1 provider is paid')
  assert.ok(fresh.every(x => BigInt(x.paid) === oneMs && x.billed === x.paid), JSON.stringify(fresh.slice(0, 2)))
  // the provider from before session 14 rounds half up: 0, as its own check (version 0) expects
  const old = view.receipts.filter(x => x.provider === ps[1].id)
  assert.is(old.length, ps[1].tasksRun, 'every copy of the older provider is checked and recorded')
  assert.ok(old.every(x => x.billed === '0' && x.paid === '0'), JSON.stringify(old.slice(0, 2)))
})

test.run()
