// The receipt id's SHA-256 is passed in by the runtime (node:crypto's, src/crypto/hash.ts: the core
// may not import node: modules): building and checking a receipt use the hasher given, and give the
// same id as the core's default (@noble's), so receipts built either way check either way.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { buildReceipt, signReceipt, verifyReceipt, type ReceiptInput } from '../../../../src/core/settlement/receipt.js'
import { nodeSha256 } from '../../../../src/crypto/hash.js'
import { key } from '../../../integration/jobs-helpers.js'

const k = key(7)
const input: ReceiptInput = {
  jobId: new Uint8Array(32).fill(1), taskId: new TextEncoder().encode('job:3:1'), provider: k.peerId, consumer: new Uint8Array(38),
  usage: { wallMs: 3, cpuMs: 2, gpuSeconds: 0, bytesIn: 100, bytesOut: 8 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 },
  startedAt: 1, finishedAt: 4, outputHash: new Uint8Array(32), payoutAddress: '0x' + '11'.repeat(20)
}

test('buildReceipt and verifyReceipt hash with the hasher passed in; the id is the default\'s', () => {
  let calls = 0
  const counted = (b: Uint8Array): Uint8Array => { calls++; return nodeSha256(b) }
  const byNode = buildReceipt({ ...input, sha256: counted })
  assert.is(calls, 1, 'the receipt id was hashed by the hasher passed in')
  const byNoble = buildReceipt(input)
  assert.equal([...byNode.receiptId], [...byNoble.receiptId])
  const signed = signReceipt(byNoble, k.secretKey)
  const v = verifyReceipt(signed, k.peerId, undefined, undefined, counted)
  assert.ok(v.ok, v.ok ? '' : v.reason)
  assert.is(calls, 2, 'the check hashed with it too')
  // a receipt whose id does not match its content is refused with either hasher
  const forged = signReceipt({ ...byNoble, receiptId: new Uint8Array(16) } as typeof byNoble, k.secretKey)
  assert.not.ok(verifyReceipt(forged, k.peerId, undefined, undefined, nodeSha256).ok)
  assert.not.ok(verifyReceipt(forged, k.peerId).ok)
})

test.run()
