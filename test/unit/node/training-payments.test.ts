// Training rounds paid through the grid jobs' payer: escrow before the invitations, a voucher
// per round receipt to the peer that signed it (bounded by the measured round time), final
// vouchers and `close` at the end; listed with what was paid.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayments, type JobPaymentsInit } from '../../../src/node/job-payments.js'
import { TrainingPayments } from '../../../src/node/training-payments.js'
import { createReceiptMeter } from '../../../src/training/metering.js'
import { parseTrainingSpec, DEFAULT_TRAINING_MAX_PRICE_PER_HOUR } from '../../../src/training/spec.js'
import { decimalToUnits } from '../../../src/core/compute/pricing.js'
import { voucherFromWire } from '../../../src/core/settlement/voucher-wire.js'
import { voucherTypedData, voucherSigner, type Voucher } from '../../../src/core/settlement/voucher.js'
import { chainJobId } from '../../../src/core/settlement/batch.js'
import type { Bridge } from '../../../src/chain/index.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { ed25519PublicKey } from '../../../src/core/identity/index.js'
import { payoutBindingTypedData } from '../../../src/core/settlement/payout-binding.js'
import { peerIdFromString } from '@libp2p/peer-id'

const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const E18 = 10n ** 18n

function peer (): { id: string, secretKey: Uint8Array } {
  const secretKey = new Uint8Array(randomBytes(32))
  const key = privateKeyFromRaw(new Uint8Array([...secretKey, ...ed25519PublicKey(secretKey)]))
  return { id: peerIdFromPrivateKey(key).toString(), secretKey }
}

/** A fresh payout account's PayoutBinding for `peerId` on the test domain (what Bridge.signPayoutBinding signs). */
async function bindingOf (account: ReturnType<typeof privateKeyToAccount>, peerId: string): Promise<Uint8Array> {
  const sig = await account.signTypedData(payoutBindingTypedData(peerIdFromString(peerId).toMultihash().bytes, domain))
  return Uint8Array.from(Buffer.from(sig.slice(2), 'hex'))
}

/** A member with its payout account bound to its peer id. */
async function boundMember (): Promise<{ id: string, secretKey: Uint8Array, payout: string, binding: Uint8Array }> {
  const p = peer()
  const account = privateKeyToAccount(generatePrivateKey())
  return { ...p, payout: account.address.toLowerCase(), binding: await bindingOf(account, p.id) }
}

/** A chain bridge double for the payer: it signs vouchers with a fresh key, and writes each deposit and close to `calls`. */
function payerBridge (): { key: ReturnType<typeof privateKeyToAccount>, bridge: Bridge, calls: string[] } {
  const key = privateKeyToAccount(generatePrivateKey())
  const calls: string[] = []
  const bridge = {
    account: key.address,
    domain: async () => domain,
    signVoucher: async (v: Voucher) => ({ voucher: v, signature: await key.signTypedData(voucherTypedData(v, domain)) }),
    escrow: async () => ({ escrow: 0n, paid: 0n, refunded: false, closedAt: 0 }),
    deposit: async (_j: string, amount: bigint) => { calls.push(`deposit ${amount}`); return { txHash: '0x1', escrow: amount } },
    close: async () => { calls.push('close'); return { txHash: '0x2' } }
  } as unknown as Bridge
  return { key, bridge, calls }
}

/** The training payer over `payerBridge` and an in-memory payment store; the vouchers it sends are in `sent`. */
function trainingPayer (log?: JobPaymentsInit['log']): ReturnType<typeof payerBridge> & { store: PaymentStore, tp: TrainingPayments, sent: Array<{ peer: string, v: dbc.task.v1.IVoucher }> } {
  const b = payerBridge()
  const store = new PaymentStore(openStore(':memory:'))
  const payments = new JobPayments({ store, bridge: () => b.bridge, ...(log !== undefined ? { log } : {}) })
  const sent: Array<{ peer: string, v: dbc.task.v1.IVoucher }> = []
  const tp = new TrainingPayments({ payments: () => payments, sendVoucher: async (p, v) => { sent.push({ peer: p, v }) } })
  return { ...b, store, tp, sent }
}

/** `member`'s signed receipt for `round` of `jobId`: 5 ms of CPU at 0.05 DBC/h, paid to `payout`, bound by `binding` when given. */
function roundReceipt (member: { id: string, secretKey: Uint8Array }, jobId: string, round: number, coordinator: string, payout: string, binding?: Uint8Array): Uint8Array {
  return createReceiptMeter({ secretKey: member.secretKey, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, payoutAddress: payout, ...(binding !== undefined ? { payoutBinding: () => binding } : {}) })(
    { jobId, round, peer: member.id, coordinator, computeMs: 5, cpuMs: 5, startedAt: 1, finishedAt: 6, bytesIn: 0, bytesOut: 0, samples: 10 })
}

test('training rounds: escrow first, a voucher per round receipt, close at the end', async () => {
  const { key, calls, tp, sent } = trainingPayer()
  const spec = parseTrainingSpec({ rounds: 2, groupSize: 2, budget: 3 })
  const jobId = 'training-job-1'
  await tp.start(jobId, spec, { groupSize: 2 })
  assert.equal(calls, [`deposit ${3n * E18}`])
  const coordinator = peer()
  const peers = [await boundMember(), await boundMember()]
  const payouts = peers.map(p => p.payout)
  for (let round = 0; round < 2; round++) {
    await new Promise(resolve => setTimeout(resolve, 20)) // the round takes longer than the 5 ms each peer bills
    for (const [i, p] of peers.entries()) {
      tp.metered(jobId, { peer: p.id, round, computeMs: 5, samples: 10, receipt: roundReceipt(p, jobId, round, coordinator.id, payouts[i], p.binding) })
    }
    tp.roundEnded(jobId)
  }
  await tp.finish(jobId)
  assert.equal(calls, [`deposit ${3n * E18}`, 'close'])
  for (const [i, p] of peers.entries()) {
    const mine = sent.filter(s => s.peer === p.id).map(s => voucherFromWire(s.v)!)
    assert.ok(mine.length >= 2, `peer ${i} got a voucher per round (${mine.length})`)
    const last = mine[mine.length - 1]
    assert.is(last.voucher.provider, payouts[i])
    assert.is(last.voucher.escrowId, chainJobId(new TextEncoder().encode(jobId), key.address))
    assert.is(last.voucher.receiptCount, 2)
    assert.ok(last.voucher.cumulative > 0n)
    assert.is(await voucherSigner(last, domain), key.address.toLowerCase())
  }
  const paid = tp.paid(jobId)
  assert.is(paid?.unit, 'DBC')
  assert.is(paid?.refused, '0')
})

test('a training job resumed after a restart goes on from the totals signed before it', async () => {
  const { bridge } = payerBridge()
  const db = openStore(':memory:')
  const spec = parseTrainingSpec({ rounds: 2, groupSize: 1, budget: 1 })
  const jobId = 'training-job-2'
  const member = await boundMember()
  const coordinator = peer()
  const round = async (tp: TrainingPayments, n: number): Promise<void> => {
    await new Promise(resolve => setTimeout(resolve, 20))
    tp.metered(jobId, { peer: member.id, round: n, computeMs: 5, samples: 10, receipt: roundReceipt(member, jobId, n, coordinator.id, member.payout, member.binding) })
    tp.roundEnded(jobId)
  }
  const sent: dbc.task.v1.IVoucher[] = []
  const before = new JobPayments({ store: new PaymentStore(db), bridge: () => bridge })
  const first = new TrainingPayments({ payments: () => before, sendVoucher: async (_p, v) => { sent.push(v) } })
  await first.start(jobId, spec, { groupSize: 1 })
  await round(first, 0)
  await new Promise(resolve => setTimeout(resolve, 50))
  const after = new JobPayments({ store: new PaymentStore(db), bridge: () => bridge })
  const second = new TrainingPayments({ payments: () => after, sendVoucher: async (_p, v) => { sent.push(v) } })
  second.resume(jobId, spec)
  await round(second, 1)
  await second.finish(jobId)
  const totals = sent.map(v => voucherFromWire(v)!.voucher)
  assert.ok(totals.length >= 2)
  assert.is(totals[totals.length - 1].receiptCount, 2, 'the resumed payer counts the round paid before the restart')
  for (let i = 1; i < totals.length; i++) assert.ok(totals[i].cumulative >= totals[i - 1].cumulative)
})

test('a member that prices its own rounds high is paid at most maxPricePerHour for the measured round time (default cap too)', async () => {
  for (const cap of [0.5, undefined]) {
    const { store, tp, sent } = trainingPayer()
    const spec = parseTrainingSpec({ rounds: 1, groupSize: 1, budget: 3, ...(cap !== undefined ? { maxPricePerHour: cap } : {}) })
    const jobId = `training-greedy-${String(cap)}`
    const member = await boundMember(); const coordinator = peer()
    // one CPU-hour billed at 1,000,000 DBC/h: unbounded, the member would take the whole budget
    const meter = createReceiptMeter({ secretKey: member.secretKey, prices: { priceGpuHour: 0, priceCpuHour: 1e6 }, payoutAddress: member.payout, payoutBinding: () => member.binding })
    const t0 = Date.now()
    await tp.start(jobId, spec, { groupSize: 1 })
    await new Promise(resolve => setTimeout(resolve, 20))
    tp.metered(jobId, { peer: member.id, round: 0, computeMs: 3_600_000, samples: 10, receipt: meter({ jobId, round: 0, peer: member.id, coordinator: coordinator.id, computeMs: 3_600_000, cpuMs: 3_600_000, startedAt: 1, finishedAt: 2, bytesIn: 0, bytesOut: 0, samples: 10 }) })
    const elapsed = Date.now() - t0
    await tp.finish(jobId)
    const rows = store.payments(jobId)
    assert.is(rows.length, 1)
    const perHour = decimalToUnits(cap ?? DEFAULT_TRAINING_MAX_PRICE_PER_HOUR)
    assert.ok(rows[0].payable > 0n, 'the member is paid something')
    assert.ok(rows[0].payable <= perHour * BigInt(elapsed + 1) / 3_600_000n, `paid ${rows[0].payable} <= ${String(cap ?? DEFAULT_TRAINING_MAX_PRICE_PER_HOUR)} DBC/h x ${elapsed} ms`)
    assert.is(rows[0].limit, 'max-price')
    assert.is(rows[0].refused, rows[0].billed - rows[0].payable)
    assert.is(voucherFromWire(sent[sent.length - 1].v)!.voucher.cumulative, rows[0].payable)
  }
})

test('an unbound stranger naming a bound member\'s payout address is refused; the bound member is paid', async () => {
  const refusals: string[] = []
  const { store, tp, sent } = trainingPayer({ info: () => {}, warn: (o: object) => { refusals.push(JSON.stringify(o)) } })
  const spec = parseTrainingSpec({ rounds: 1, groupSize: 3, budget: 3 })
  const jobId = 'training-binding'
  await tp.start(jobId, spec, { groupSize: 3 })
  const coordinator = peer()
  const victim = await boundMember()
  const stranger = peer()
  // a second stranger binds the victim's address with a binding the victim's key signed for someone else
  const thief = peer()
  const receiptOf = (p: { id: string, secretKey: Uint8Array }, payout: string, binding?: Uint8Array): Uint8Array => roundReceipt(p, jobId, 0, coordinator.id, payout, binding)
  await new Promise(resolve => setTimeout(resolve, 20))
  // the strangers' receipts arrive first: without a binding of their own the victim's address is not theirs
  tp.metered(jobId, { peer: stranger.id, round: 0, computeMs: 5, samples: 10, receipt: receiptOf(stranger, victim.payout) })
  tp.metered(jobId, { peer: thief.id, round: 0, computeMs: 5, samples: 10, receipt: receiptOf(thief, victim.payout, victim.binding) })
  tp.metered(jobId, { peer: victim.id, round: 0, computeMs: 5, samples: 10, receipt: receiptOf(victim, victim.payout, victim.binding) })
  tp.roundEnded(jobId)
  await tp.finish(jobId)
  assert.is(sent.filter(s => s.peer === stranger.id).length, 0, 'the unbound stranger gets no voucher')
  assert.is(sent.filter(s => s.peer === thief.id).length, 0, 'a binding signed for another peer binds nothing')
  const mine = sent.filter(s => s.peer === victim.id).map(s => voucherFromWire(s.v)!)
  assert.ok(mine.length >= 1, 'the bound member is paid')
  const last = mine[mine.length - 1]
  assert.is(last.voucher.provider, victim.payout)
  assert.is(last.voucher.receiptCount, 1, 'only the member\'s own round is counted on its address')
  assert.ok(last.voucher.cumulative > 0n)
  assert.is(store.payments(jobId).length, 1, 'the strangers\' receipts were never recorded')
  assert.ok(refusals.some(r => r.includes('PAYOUT_NOT_BOUND') || r.includes('not bound')), `the refusal is logged: ${refusals.join(' | ')}`)
})

test('a member\'s first receipt without a binding (still signing it) is kept and paid once a later receipt binds it', async () => {
  const { store, tp, sent } = trainingPayer()
  const jobId = 'training-late-binding'
  await tp.start(jobId, parseTrainingSpec({ rounds: 2, groupSize: 1, budget: 3 }), { groupSize: 1 })
  const coordinator = peer()
  const member = await boundMember()
  const receiptOf = (round: number, binding?: Uint8Array): Uint8Array => roundReceipt(member, jobId, round, coordinator.id, member.payout, binding)
  await new Promise(resolve => setTimeout(resolve, 20))
  tp.metered(jobId, { peer: member.id, round: 0, computeMs: 5, samples: 10, receipt: receiptOf(0) })
  tp.roundEnded(jobId)
  await new Promise(resolve => setTimeout(resolve, 20))
  tp.metered(jobId, { peer: member.id, round: 1, computeMs: 5, samples: 10, receipt: receiptOf(1, member.binding) })
  tp.roundEnded(jobId)
  await tp.finish(jobId)
  assert.equal(store.payments(jobId).map(r => r.receiptKey).sort(), [`${member.id}/round/0`, `${member.id}/round/1`])
  const last = sent.filter(s => s.peer === member.id).map(s => voucherFromWire(s.v)!).at(-1)
  assert.is(last?.voucher.receiptCount, 2, 'both rounds are on the member\'s voucher')
  assert.is(last?.voucher.provider, member.payout)
})

test.run()
