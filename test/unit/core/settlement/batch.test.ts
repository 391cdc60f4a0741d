import { test } from 'uvu'
import { nodeSuite } from '../../../../src/crypto/suite.js'
import * as assert from 'uvu/assert'
import { ed25519 } from '@noble/curves/ed25519.js'
import { dbc } from '../../../../src/wire/gen/wire.js'
import { batchIdFor, buildSettlementBatch, checkSignedReceipt, decideBatches, encodeSettlementBatch, receiptProofInBatch, verifyMerkleProof, bytesFromHex, type BatchReceipt } from '../../../../src/core/settlement/index.js'
import { fakeProviders, fakeSignedReceipts } from '../../../../src/chain/testing.js'
import { buildReceipt, signReceipt } from '../../../../src/core/settlement/receipt.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const jobId = enc('job-7')
const providers = fakeProviders(3, 'batch-test')
const signed = fakeSignedReceipts(jobId, providers, 7, 5n)

function receipts (): BatchReceipt[] {
  return signed.map(s => { const c = checkSignedReceipt(s, { jobId }); if (!c.ok) throw new Error(c.reason); return c.batchReceipt })
}

test('batch id, root and payouts do not depend on receipt order', () => {
  const a = buildSettlementBatch(jobId, receipts(), 1)
  const b = buildSettlementBatch(jobId, receipts().reverse(), 2)
  assert.is(a.batchId, b.batchId)
  assert.is(a.root, b.root)
  assert.equal(a.payouts, b.payouts)
  assert.is(a.batchId, batchIdFor(jobId, receipts().map(r => r.receiptId)))
})

test('payouts aggregate per payout address, sorted, and sum to the total', () => {
  const b = buildSettlementBatch(jobId, receipts(), 1)
  assert.is(b.payouts.length, 3)
  const sorted = [...b.payouts].sort((x, y) => x.provider < y.provider ? -1 : 1)
  assert.equal(b.payouts, sorted)
  // 7 receipts round-robin over 3 providers: 3, 2, 2 receipts of 5 wei
  assert.equal(b.payouts.map(p => p.amount).sort(), [10n, 10n, 15n])
  assert.is(b.total, 35n)
  assert.is(b.receiptCount, 7)
})

test('batch id changes with the job and with the receipt set', () => {
  const base = buildSettlementBatch(jobId, receipts(), 1).batchId
  assert.is.not(buildSettlementBatch(enc('job-8'), receipts(), 1).batchId, base)
  assert.is.not(buildSettlementBatch(jobId, receipts().slice(1), 1).batchId, base)
})

test('each receipt has a proof against the batch root', () => {
  const b = buildSettlementBatch(jobId, receipts(), 1)
  const root = bytesFromHex(b.root)
  b.receiptIds.forEach((id, i) => assert.ok(verifyMerkleProof(root, b.leaves[i], receiptProofInBatch(b, id))))
})

test('a receipt twice in one batch, a bad address or a negative amount is refused', () => {
  const r = receipts()
  assert.throws(() => buildSettlementBatch(jobId, [r[0], r[0]], 1), /twice/)
  assert.throws(() => buildSettlementBatch(jobId, [{ ...r[0], payoutAddress: '0x12' }], 1), /not an EVM address/)
  assert.throws(() => buildSettlementBatch(jobId, [{ ...r[0], amount: -1n }], 1), /negative/)
  assert.throws(() => buildSettlementBatch(jobId, [], 1), /at least one/)
})

test('the encoded batch decodes to the same fields', () => {
  const b = buildSettlementBatch(jobId, receipts(), 42)
  const d = dbc.settlement.v1.SettlementBatch.decode(encodeSettlementBatch(b))
  assert.is(d.receiptIds.length, 7)
  assert.is(d.payouts.length, 3)
  assert.is(d.createdAt, 42)
  assert.equal(new Uint8Array(d.jobId), jobId)
})

test('receipt checks: bad signature, other job, bad payout address, wrong amount, garbage', () => {
  assert.ok(checkSignedReceipt(signed[0], { jobId }).ok)
  const s = dbc.receipt.v1.SignedReceipt.decode(signed[0])
  const flipped = new Uint8Array(s.signature); flipped[0] ^= 1
  const bad = checkSignedReceipt({ receipt: s.receipt, signature: flipped })
  assert.ok(!bad.ok && /signature/.test(bad.reason))
  // the runtime's node:crypto verifier (what the bridge passes) agrees with @noble both ways
  assert.ok(checkSignedReceipt(signed[0], { jobId, verify: nodeSuite.verify }).ok)
  const badNode = checkSignedReceipt({ receipt: s.receipt, signature: flipped }, { verify: nodeSuite.verify })
  assert.ok(!badNode.ok && /signature/.test(badNode.reason))
  assert.equal(checkSignedReceipt(signed[0], { jobId: enc('other') }), { ok: false, reason: 'receipt belongs to another job' })
  assert.equal(checkSignedReceipt(new Uint8Array([0xff, 0xff, 0xff])).ok, false)
  const r = dbc.receipt.v1.UsageReceipt.decode(s.receipt)
  // re-signed by the provider but naming no EVM address: not settleable
  const noAddress = dbc.receipt.v1.UsageReceipt.encode({ ...r, payoutAddress: 'nope' }).finish()
  const c1 = checkSignedReceipt({ receipt: noAddress, signature: ed25519.sign(noAddress, providers[0].secretKey) })
  assert.ok(!c1.ok, 'a changed receipt fails (its id no longer matches)')
  const built = buildReceipt({ jobId, taskId: enc('t'), provider: providers[0].peerId, consumer: new Uint8Array(0), usage: { wallMs: 1, cpuMs: 0, gpuSeconds: 3600, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0.001, priceCpuHour: 0 }, startedAt: 0, finishedAt: 1, outputHash: new Uint8Array(32), payoutAddress: 'not-an-address' })
  const signedBad = signReceipt(built, providers[0].secretKey)
  assert.equal(checkSignedReceipt(signedBad, { jobId }), { ok: false, reason: 'receipt has no valid payout address' })
  // an amount that does not match usage x prices is refused by the compute side's check
  const inflated = dbc.receipt.v1.UsageReceipt.encode({ ...r, amount: '999' }).finish()
  const c2 = checkSignedReceipt({ receipt: inflated, signature: ed25519.sign(inflated, providers[0].secretKey) })
  assert.ok(!c2.ok && /amount/.test(c2.reason), JSON.stringify(c2))
})

test('batching policy: size, age, finished jobs, and when to look again', () => {
  const policy = { maxReceipts: 100, maxAgeMs: 1000 }
  assert.equal(decideBatches([], 0, policy), { due: [], nextCheckAt: undefined })
  const d1 = decideBatches([{ jobId: 'a', count: 10, oldestAt: 500 }], 1000, policy)
  assert.equal(d1, { due: [], nextCheckAt: 1500 })
  assert.equal(decideBatches([{ jobId: 'a', count: 10, oldestAt: 500 }], 1500, policy).due, [{ jobId: 'a', take: 10, reason: 'age' }])
  const d2 = decideBatches([{ jobId: 'b', count: 250, oldestAt: 900 }], 1000, policy)
  assert.equal(d2.due, [{ jobId: 'b', take: 100, reason: 'size' }])
  assert.is(d2.nextCheckAt, 1000)
  assert.equal(decideBatches([{ jobId: 'c', count: 1, oldestAt: 999, jobFinished: true }], 1000, policy).due, [{ jobId: 'c', take: 1, reason: 'finished' }])
})

test.run()
