// One provider signature over several receipts (SignedReceipt.batch, core/settlement/receipt.ts):
// each batch-signed receipt checks alone; anything else than the very receipts signed is refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { dbc } from '../../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt, signReceiptBatch, verifyReceipt, receiptBatchMessage, receiptSignedBytes, isReceiptBatchMessage, RECEIPT_BATCH_MAX } from '../../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes } from '../../../../src/core/identity/index.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { createRng } from '../../../../src/core/rng.js'
import { taskSigningBytes } from '../../../../src/core/scheduler/ownership.js'

const rng = createRng(11)
const secret = rng.bytes(new Uint8Array(32))
const provider = peerIdBytesFromEd25519Key(ed25519PublicKey(secret))
const other = rng.bytes(new Uint8Array(32))
const otherProvider = peerIdBytesFromEd25519Key(ed25519PublicKey(other))
const sign = (m: Uint8Array): Uint8Array => signBytes(secret, m)

function receipt (task: number, who = provider): dbc.receipt.v1.UsageReceipt {
  return buildReceipt({
    jobId: new Uint8Array([1]), taskId: new Uint8Array([task]), provider: who, consumer: new Uint8Array([9]),
    usage: { wallMs: 2, cpuMs: 1, gpuSeconds: 0, bytesIn: 8, bytesOut: 8 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 },
    startedAt: 1_700_000_000_000, finishedAt: 1_700_000_000_002, outputHash: new Uint8Array(32).fill(task), pricingVersion: 1
  })
}
const encoded = (r: dbc.receipt.v1.UsageReceipt): Uint8Array => dbc.receipt.v1.UsageReceipt.encode(r).finish()

test('a batch of three: one signature, each receipt verifies alone and names its own task', () => {
  const rs = [1, 2, 3].map(t => encoded(receipt(t)))
  const signed = signReceiptBatch(rs, sign)
  assert.is(signed.length, 3)
  assert.ok(signed.every(s => Buffer.from(s.signature).equals(Buffer.from(signed[0].signature))), 'one signature')
  signed.forEach((s, i) => {
    // as a submitter gets it: encoded and decoded
    const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.decode(dbc.receipt.v1.SignedReceipt.encode(s).finish()), provider)
    assert.ok(v.ok, v.ok ? '' : v.reason)
    if (v.ok) assert.equal([...v.receipt.taskId], [i + 1])
  })
})

test('one receipt is signed alone (no batch): what an older submitter checks', () => {
  const r = receipt(4)
  const [s] = signReceiptBatch([encoded(r)], sign)
  assert.is(s.batch.length, 0)
  assert.equal(Buffer.from(s.signature), Buffer.from(signReceipt(r, secret).signature))
})

test('a receipt not among those signed is refused, though it carries the batch and its signature', () => {
  const signed = signReceiptBatch([1, 2].map(t => encoded(receipt(t))), sign)
  const forged = dbc.receipt.v1.SignedReceipt.create({ receipt: encoded(receipt(7)), signature: signed[0].signature, batch: signed[0].batch })
  const v = verifyReceipt(forged, provider)
  assert.not.ok(v.ok)
  assert.match(v.ok ? '' : v.reason, /not in the batch/)
  // its hash put into the batch: the signature no longer verifies
  const withIt = dbc.receipt.v1.SignedReceipt.create({ receipt: forged.receipt, signature: forged.signature, batch: [...signed[0].batch, sha256(forged.receipt)] })
  assert.match((r => r.ok ? '' : r.reason)(verifyReceipt(withIt, provider)), /signature does not verify/)
})

test('the batch stripped, reordered or cut: the signature does not verify; a batch signature is never one receipt\'s', () => {
  const signed = signReceiptBatch([1, 2].map(t => encoded(receipt(t))), sign)
  const s = signed[0]
  for (const batch of [[], [s.batch[1], s.batch[0]], [s.batch[0]]]) {
    const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: s.receipt, signature: s.signature, batch }), provider)
    assert.not.ok(v.ok, `batch of ${batch.length}`)
  }
  const msg = receiptBatchMessage(s.batch)
  assert.ok(isReceiptBatchMessage(msg))
  assert.not.ok(isReceiptBatchMessage(s.receipt), 'an encoded receipt is no batch message')
  assert.throws(() => dbc.receipt.v1.UsageReceipt.decode(msg), 'a batch message does not decode as a receipt')
})

test('hostile batches are refused with a reason before any signature check: too many entries, an entry not 32 bytes', () => {
  const r = encoded(receipt(1))
  const own = sha256(r)
  let verified = 0
  const verify = (): boolean => { verified++; return true }
  const tooMany = Array.from({ length: RECEIPT_BATCH_MAX + 1 }, (_, i) => i === 0 ? own : new Uint8Array(32).fill(i))
  const a = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: r, signature: new Uint8Array(64), batch: tooMany }), provider, undefined, verify)
  assert.match(a.ok ? '' : a.reason, /at most 16/)
  const b = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: r, signature: new Uint8Array(64), batch: [own, new Uint8Array(31)] }), provider, undefined, verify)
  assert.match(b.ok ? '' : b.reason, /32-byte/)
  assert.is(verified, 0)
  assert.throws(() => signReceiptBatch(Array.from({ length: RECEIPT_BATCH_MAX + 1 }, () => r), sign), /at most/)
  assert.equal(receiptSignedBytes({ receipt: r, batch: [] }), { ok: true, message: r })
})

test('another provider\'s batch signature does not pay for this provider\'s receipts', () => {
  const signed = signReceiptBatch([1, 2].map(t => encoded(receipt(t, otherProvider))), m => signBytes(other, m))
  assert.ok(verifyReceipt(signed[0], otherProvider).ok)
  assert.not.ok(verifyReceipt(signed[0], provider).ok, 'names another provider')
  // this provider's receipt under the other's batch signature
  const mine = encoded(receipt(1))
  const v = verifyReceipt(dbc.receipt.v1.SignedReceipt.create({ receipt: mine, signature: signed[0].signature, batch: [sha256(mine), signed[0].batch[1]] }), provider)
  assert.not.ok(v.ok)
})

test('Task.batch_receipts is not signed: an older provider (which drops the field) checks the holder\'s signature as before', () => {
  const task: dbc.task.v1.ITask = { taskId: new Uint8Array([1]), jobId: new Uint8Array([2]), leaseId: new Uint8Array([3]), index: 4, attempt: 1, input: new Uint8Array([5]) }
  assert.equal(taskSigningBytes({ ...task, batchReceipts: true }), taskSigningBytes(task))
})

test.run()
