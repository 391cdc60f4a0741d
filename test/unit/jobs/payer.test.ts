// The submitter's payer: receipts bounded by the offer, cumulative vouchers signed by the
// payer key, a restart never signs a lower total nor counts a receipt twice, and a provider
// caught lying gets no more vouchers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayer } from '../../../src/jobs/payer.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt } from '../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { voucherTypedData, voucherSigner, type Voucher } from '../../../src/core/settlement/voucher.js'
import { voucherFromWire, voucherToWire } from '../../../src/core/settlement/voucher-wire.js'
import { chargeUnits, decimalToUnits } from '../../../src/core/compute/pricing.js'
import { buildMerkleTree, receiptLeaf } from '../../../src/core/settlement/merkle.js'
import { payoutBindingTypedData } from '../../../src/core/settlement/payout-binding.js'

const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const enc = new TextEncoder()
const jobId = 'ab'.repeat(16)
const jobIdBytes = Uint8Array.from(Buffer.from(jobId, 'hex'))

function provider () {
  const secretKey = new Uint8Array(randomBytes(32))
  const peer = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  const account = privateKeyToAccount(generatePrivateKey())
  const payout = account.address.toLowerCase() as `0x${string}`
  return { secretKey, peer, payout, account }
}
type P = ReturnType<typeof provider>

function receipt (p: P, index: number, cpuMs: number, priceCpuHour: number, job = jobIdBytes): { bytes: Uint8Array, taskId: Uint8Array, amount: bigint } {
  const taskId = enc.encode(`${jobId}:${index}:1`)
  const r = buildReceipt({ jobId: job, taskId, provider: p.peer, consumer: new Uint8Array(34), usage: { wallMs: cpuMs, cpuMs, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour }, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), payoutAddress: p.payout })
  return { bytes: dbc.receipt.v1.SignedReceipt.encode(signReceipt(r, p.secretKey)).finish(), taskId, amount: BigInt(r.amount) }
}

function payer (store: PaymentStore, signed: Voucher[] = [], extra: Partial<ConstructorParameters<typeof JobPayer>[0]> = {}): JobPayer {
  return new JobPayer({
    jobId, jobIdBytes, payerAddress: payerKey.address, store, gpus: 0, cores: 1, timeoutMs: 60_000,
    sign: async (v) => { signed.push(v); return await payerKey.signTypedData(voucherTypedData(v, domain)) },
    ...extra
  })
}

test('each provider is paid its receipts within its offer; cumulative vouchers verify against the payer key', async () => {
  const store = new PaymentStore(openStore(':memory:'))
  const a = provider(); const b = provider()
  const p = payer(store)
  p.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  p.addPayee('B', { payout: b.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: b.peer })
  const r0 = receipt(a, 0, 500, 0.05)
  const r1 = receipt(a, 1, 700, 0.05)
  const r2 = receipt(b, 2, 300, 0.05)
  const o0 = await p.pay({ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 })
  const o1 = await p.pay({ provider: 'A', key: '1:1', receipt: r1.bytes, taskId: r1.taskId, measuredMs: 1000 })
  const o2 = await p.pay({ provider: 'B', key: '2:1', receipt: r2.bytes, taskId: r2.taskId, measuredMs: 1000 })
  assert.is(o0.payable, r0.amount)
  assert.is(o1.voucher?.voucher.cumulative, r0.amount + r1.amount)
  assert.is(o1.voucher?.voucher.receiptCount, 2)
  assert.is(o1.voucher?.voucher.provider, a.payout)
  assert.is(o1.voucher?.voucher.receiptsRoot, `0x${Buffer.from(buildMerkleTree([receiptLeaf(dbc.receipt.v1.SignedReceipt.decode(r0.bytes).receipt), receiptLeaf(dbc.receipt.v1.SignedReceipt.decode(r1.bytes).receipt)]).root).toString('hex')}`)
  assert.is(o2.voucher?.voucher.cumulative, r2.amount)
  assert.is(await voucherSigner(o1.voucher!, domain), payerKey.address.toLowerCase())
  // through the wire and back, unchanged
  assert.equal(voucherFromWire(voucherToWire(o1.voucher!)), o1.voucher)
  const view = p.view()
  assert.is(view.committed, (r0.amount + r1.amount + r2.amount).toString())
  assert.is(view.refused, '0')
})

test('an overcharging receipt is paid at the offer price for the measured time; the rest is refused with a reason', async () => {
  const store = new PaymentStore(openStore(':memory:'))
  const a = provider()
  const p = payer(store)
  p.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  const r = receipt(a, 0, 3_600_000, 1000) // one CPU-hour at 1,000 DBC/h
  const o = await p.pay({ provider: 'A', key: '0:1', receipt: r.bytes, taskId: r.taskId, measuredMs: 40 })
  const want = decimalToUnits(0.05) * 40n / 3_600_000n
  assert.is(o.payable, want)
  assert.is(o.refused, r.amount - want)
  assert.is(o.voucher?.voucher.cumulative, want)
  assert.is(p.view().refusals.length, 1)
  assert.match(p.view().refusals[0].reason, /offer's price/)
})

test('receipts of another provider, job or task, or forged ones, pay nothing', async () => {
  const store = new PaymentStore(openStore(':memory:'))
  const a = provider(); const b = provider()
  const p = payer(store)
  p.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  const byB = receipt(b, 0, 500, 0.05)
  assert.is((await p.pay({ provider: 'A', key: '0:1', receipt: byB.bytes, taskId: byB.taskId, measuredMs: 1000 })).payable, 0n)
  const other = receipt(a, 1, 500, 0.05, new Uint8Array(16))
  assert.is((await p.pay({ provider: 'A', key: '1:1', receipt: other.bytes, taskId: other.taskId, measuredMs: 1000 })).payable, 0n)
  const wrongTask = receipt(a, 2, 500, 0.05)
  assert.is((await p.pay({ provider: 'A', key: '2:1', receipt: wrongTask.bytes, taskId: enc.encode('nope'), measuredMs: 1000 })).payable, 0n)
  const forged = dbc.receipt.v1.SignedReceipt.decode(receipt(a, 3, 500, 0.05).bytes)
  forged.signature = new Uint8Array(64)
  assert.is((await p.pay({ provider: 'A', key: '3:1', receipt: dbc.receipt.v1.SignedReceipt.encode(forged).finish(), taskId: enc.encode(`${jobId}:3:1`), measuredMs: 1000 })).payable, 0n)
  assert.is((await p.pay({ provider: 'A', key: '4:1', taskId: enc.encode('x'), measuredMs: 1000 })).payable, 0n)
  assert.is(p.view().committed, '0')
  assert.is(store.vouchers(jobId).length, 0)
})

test('budget.total caps the whole job across providers', async () => {
  const store = new PaymentStore(openStore(':memory:'))
  const a = provider(); const b = provider()
  const budgetTotal = chargeUnits({ gpuSeconds: 0, cpuMs: 1500 }, { priceGpuHour: 0, priceCpuHour: 0.05 })
  const p = payer(store, [], { budgetTotal })
  p.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  p.addPayee('B', { payout: b.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: b.peer })
  const r0 = receipt(a, 0, 1000, 0.05); const r1 = receipt(b, 1, 1000, 0.05); const r2 = receipt(b, 2, 1000, 0.05)
  await p.pay({ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 2000 })
  const o1 = await p.pay({ provider: 'B', key: '1:1', receipt: r1.bytes, taskId: r1.taskId, measuredMs: 2000 })
  const o2 = await p.pay({ provider: 'B', key: '2:1', receipt: r2.bytes, taskId: r2.taskId, measuredMs: 2000 })
  assert.is(o1.payable, budgetTotal - r0.amount)
  assert.is(o2.payable, 0n)
  assert.is(BigInt(p.view().committed), budgetTotal)
})

test('restart: a receipt is counted once, an unsigned total is signed on flush, never a lower one', async () => {
  const db = openStore(':memory:')
  const a = provider()
  const signed: Voucher[] = []
  const first = payer(new PaymentStore(db), signed)
  first.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  const r0 = receipt(a, 0, 500, 0.05); const r1 = receipt(a, 1, 500, 0.05)
  await first.pay({ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 })
  // the second payment is written, then the process dies before its signature is stored
  const dying = payer(new PaymentStore(db), signed, { sign: async () => { throw new Error('killed before signing') } })
  await dying.pay({ provider: 'A', key: '1:1', receipt: r1.bytes, taskId: r1.taskId, measuredMs: 1000 })
  assert.is(signed.length, 1)
  // restarted: payees come back from the store; a replayed receipt is not counted again
  const again = payer(new PaymentStore(db), signed)
  const replay = await again.pay({ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 })
  assert.is(replay.recorded, false)
  assert.is(replay.voucher?.voucher.cumulative, r0.amount + r1.amount, 'the restart signs the total it meant to sign')
  const flushed = await again.flush()
  assert.is(flushed.length, 1)
  assert.is(flushed[0].voucher.voucher.cumulative, r0.amount + r1.amount)
  assert.equal(flushed[0].providers, ['A'])
  for (let i = 1; i < signed.length; i++) assert.ok(signed[i].cumulative >= signed[i - 1].cumulative, 'signed totals never go down')
  // an older signature arriving late is not recorded over a newer one
  const s = new PaymentStore(db)
  assert.not.ok(s.setSigned(jobId, a.payout, r0.amount, 1, '0x00', '0xdead'))
  assert.is(s.voucher(jobId, a.payout)?.signedCumulative, r0.amount + r1.amount)
})

test('a provider caught returning wrong results gets no more vouchers, also after a restart', async () => {
  const db = openStore(':memory:')
  const a = provider(); const b = provider()
  const signed: Voucher[] = []
  const p = payer(new PaymentStore(db), signed)
  p.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  p.addPayee('B', { payout: b.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: b.peer })
  const r0 = receipt(a, 0, 500, 0.05)
  const o0 = await p.pay({ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 })
  p.forfeit('A', 'caught returning a wrong result for task 3')
  assert.ok(p.isForfeited('A'))
  const before = signed.length
  const r1 = receipt(a, 1, 500, 0.05)
  const o1 = await p.pay({ provider: 'A', key: '1:1', receipt: r1.bytes, taskId: r1.taskId, measuredMs: 1000 })
  assert.is(o1.payable, 0n)
  assert.match(o1.reason ?? '', /wrong result/)
  assert.is(o1.voucher?.voucher.cumulative, o0.voucher?.voucher.cumulative, 'what was signed before stays signed; nothing new')
  const rb = receipt(b, 2, 500, 0.05)
  const ob = await p.pay({ provider: 'B', key: '2:1', receipt: rb.bytes, taskId: rb.taskId, measuredMs: 1000 })
  assert.is(ob.payable, rb.amount, 'an honest provider is still paid')
  assert.is(signed.filter(v => v.provider === a.payout).length, 1)
  assert.is(signed.length, before + 1)
  const restarted = payer(new PaymentStore(db), signed)
  assert.ok(restarted.isForfeited('A'))
  await restarted.flush()
  assert.is(signed.filter(v => v.provider === a.payout).length, 1)
  assert.is(restarted.view().providers.find(x => x.payout === a.payout)?.forfeited, 'caught returning a wrong result for task 3')
})

test('a liar claiming an honest provider\'s payout address is refused as a payee, and its forfeit does not touch the honest provider', async () => {
  const db = openStore(':memory:')
  const h = provider(); const m = provider()
  const refused: string[] = []
  const p = payer(new PaymentStore(db), [], { onPayeeRefused: (id, why) => refused.push(`${id}: ${why}`) })
  assert.ok(p.addPayee('H', { payout: h.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: h.peer }))
  assert.not.ok(p.addPayee('M', { payout: h.payout.toUpperCase().replace('0X', '0x'), prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: m.peer }))
  assert.is(refused.length, 1)
  assert.match(refused[0], /^M: payout address .* already used by provider H/)
  // the liar's receipt (naming the honest address) pays nothing and merges into nothing
  const rm = receipt({ ...m, payout: h.payout }, 0, 500, 0.05)
  const om = await p.pay({ provider: 'M', key: '0:1', receipt: rm.bytes, taskId: rm.taskId, measuredMs: 1000 })
  assert.is(om.payable, 0n)
  // the liar is caught: the honest provider is not forfeited and is still paid, also after a restart
  p.forfeit('M', 'caught returning a wrong result')
  assert.not.ok(p.isForfeited('H'))
  const rh = receipt(h, 1, 500, 0.05)
  const oh = await p.pay({ provider: 'H', key: '1:1', receipt: rh.bytes, taskId: rh.taskId, measuredMs: 1000 })
  assert.is(oh.payable, rh.amount)
  assert.is(oh.voucher?.voucher.cumulative, rh.amount)
  assert.is(new PaymentStore(db).voucher(jobId, h.payout)?.forfeited, undefined)
  const restarted = payer(new PaymentStore(db))
  assert.not.ok(restarted.isForfeited('H'))
  assert.equal(restarted.providersOf(h.payout), ['H'])
  // a caught peer's own receipts are refused, keyed by its peer id
  restarted.forfeit('H', 'caught later')
  assert.ok(restarted.isForfeited('H'))
  const rh2 = receipt(h, 2, 500, 0.05)
  assert.is((await restarted.pay({ provider: 'H', key: '2:1', receipt: rh2.bytes, taskId: rh2.taskId, measuredMs: 1000 })).payable, 0n)
  assert.ok(payer(new PaymentStore(db)).isForfeited('H'), 'the forfeit survives a restart')
})

const bindingOf = async (p: P, peer = p.peer, d: typeof domain | { chainId: number, verifyingContract: `0x${string}` } = domain): Promise<Uint8Array> =>
  Uint8Array.from(Buffer.from((await p.account.signTypedData(payoutBindingTypedData(peer, d))).slice(2), 'hex'))

test('a payout address is bound by its key: a stranger naming it is refused whatever comes first; the key holder\'s own peers share it', async () => {
  const db = openStore(':memory:')
  const h = provider(); const m = provider(); const h2 = { ...provider(), account: h.account, payout: h.payout }
  const refused: Array<{ id: string, code?: string, why: string }> = []
  const p = payer(new PaymentStore(db), [], { onPayeeRefused: (id, why, code) => refused.push({ id, code, why }) })
  const prices = { priceGpuHour: 0, priceCpuHour: 0.05 }
  // the stranger claims the victim's address first: with no binding, with its own key's, with the victim's binding of another peer or chain
  assert.not.ok(p.addPayee('M', { payout: h.payout, prices, providerBytes: m.peer, domain }))
  assert.not.ok(p.addPayee('M', { payout: h.payout, prices, providerBytes: m.peer, binding: await bindingOf(m), domain }))
  assert.not.ok(p.addPayee('M', { payout: h.payout, prices, providerBytes: m.peer, binding: await bindingOf(h), domain }))
  assert.not.ok(p.addPayee('M', { payout: h.payout, prices, providerBytes: m.peer, binding: await bindingOf(h, m.peer, { ...domain, chainId: 1 }), domain }))
  assert.not.ok(p.addPayee('M', { payout: h.payout, prices, providerBytes: m.peer, binding: new Uint8Array(65).fill(7), domain }))
  assert.equal(refused.map(r => [r.id, r.code]), Array(5).fill(['M', 'PAYOUT_NOT_BOUND']))
  assert.match(refused[0].why, /no payout binding/)
  assert.match(refused[1].why, /signed by 0x/)
  assert.equal(p.providersOf(h.payout), [])
  // the victim is a payee: first claim did not win
  assert.ok(p.addPayee('H', { payout: h.payout, prices, providerBytes: h.peer, binding: await bindingOf(h), domain }))
  // a second peer of the same key holder shares the address (it proved it), and one total
  assert.ok(p.addPayee('H2', { payout: h.payout, prices, providerBytes: h2.peer, binding: await bindingOf(h, h2.peer), domain }))
  assert.equal(p.providersOf(h.payout).sort(), ['H', 'H2'])
  const r0 = receipt(h, 0, 500, 0.05)
  const r1 = receipt(h2, 1, 700, 0.05)
  await p.pay({ provider: 'H', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 })
  const o1 = await p.pay({ provider: 'H2', key: '1:1', receipt: r1.bytes, taskId: r1.taskId, measuredMs: 1000 })
  assert.is(o1.voucher?.voucher.cumulative, r0.amount + r1.amount)
  // an unbound claim (a training receipt's) on a bound address is refused too
  assert.not.ok(p.addPayee('U', { payout: h.payout, prices, providerBytes: m.peer }))
  assert.is(refused.at(-1)?.code, 'PAYOUT_SHARED')
  // one of the key holder's peers caught: the shared payout is forfeited (its unpaid amounts for the job)
  p.forfeit('H2', 'caught returning a wrong result')
  assert.match(p.view().providers.find(x => x.payout === h.payout)?.forfeited ?? '', /caught/)
})

test('a peer\'s binding survives a restart: a restarted payer admits the key holder\'s second peer and forfeits their shared address', async () => {
  const db = openStore(':memory:')
  const h = provider(); const h2 = { ...provider(), account: h.account, payout: h.payout }
  const prices = { priceGpuHour: 0, priceCpuHour: 0.05 }
  assert.ok(payer(new PaymentStore(db)).addPayee('H', { payout: h.payout, prices, providerBytes: h.peer, binding: await bindingOf(h), domain }))
  assert.equal(new PaymentStore(db).payees(jobId).map(x => [x.provider, x.bound]), [['H', true]])
  // after a restart H still counts as bound: the key holder's second peer shares the address
  const restarted = payer(new PaymentStore(db))
  assert.ok(restarted.addPayee('H2', { payout: h.payout, prices, providerBytes: h2.peer, binding: await bindingOf(h, h2.peer), domain }))
  // and a caught peer forfeits the shared address (all its peers are bound)
  restarted.forfeit('H2', 'caught returning a wrong result')
  assert.match(restarted.view().providers.find(x => x.payout === h.payout)?.forfeited ?? '', /caught/)
})

test('a caught peer forfeits every payout address it used in the job, not only its latest', async () => {
  const db = openStore(':memory:')
  const a = provider(); const second = privateKeyToAccount(generatePrivateKey())
  const prices = { priceGpuHour: 0, priceCpuHour: 0.05 }
  const p = payer(new PaymentStore(db))
  assert.ok(p.addPayee('A', { payout: a.payout, prices, providerBytes: a.peer, binding: await bindingOf(a), domain }))
  const r0 = receipt(a, 0, 500, 0.05)
  assert.is((await p.pay({ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 })).payable, r0.amount)
  // a later offer of the same peer names another address (bound by that key too)
  const b: P = { ...a, account: second, payout: second.address.toLowerCase() as `0x${string}` }
  assert.ok(p.addPayee('A', { payout: b.payout, prices, providerBytes: a.peer, binding: await bindingOf(b), domain }))
  p.forfeit('A', 'caught returning a wrong result')
  const view = p.view()
  assert.match(view.providers.find(x => x.payout === a.payout)?.forfeited ?? '', /caught/, 'the first address is forfeited too')
  assert.match(view.providers.find(x => x.payout === b.payout)?.forfeited ?? '', /caught/)
})


test('inside an outer transaction: onPaid waits for its commit; its rollback takes back the payer\'s totals (review s11 L5)', async () => {
  const node = openStore(':memory:')
  const store = new PaymentStore(node)
  const a = provider()
  const paid: Array<{ total: bigint, open: boolean }> = []
  const p = payer(store, [], { onPaid: (total) => { paid.push({ total, open: node.inTransaction() }) } })
  p.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  const r0 = receipt(a, 0, 500, 0.05)
  const r1 = receipt(a, 1, 700, 0.05)
  // the runner's step fails to commit after the payer recorded its batch in it
  assert.throws(() => node.transaction(() => {
    p.payMany([{ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 }])
    throw new Error('the step could not commit')
  }), /could not commit/)
  assert.equal(paid, [], 'no top-up for totals that were rolled back')
  assert.is(p.view().committed, '0')
  // the same receipt again, and one more, in a step that commits: counted once each, onPaid after the commit
  node.transaction(() => {
    p.payMany([{ provider: 'A', key: '0:1', receipt: r0.bytes, taskId: r0.taskId, measuredMs: 1000 }, { provider: 'A', key: '1:1', receipt: r1.bytes, taskId: r1.taskId, measuredMs: 1000 }])
    assert.equal(paid, [])
  })
  assert.equal(paid, [{ total: r0.amount + r1.amount, open: false }])
  assert.is(p.view().committed, (r0.amount + r1.amount).toString())
  const v = await p.signLatest(a.payout)
  assert.is(v?.voucher.cumulative, r0.amount + r1.amount)
  assert.is(v?.voucher.receiptCount, 2)
})

test.run()
