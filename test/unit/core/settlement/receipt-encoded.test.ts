// A receipt is encoded once as it is built (buildEncodedReceipt): its bytes, the id's field put
// before the encoding the id was hashed from, must be exactly what UsageReceipt.encode gives for the
// receipt (what signReceipt signed before, and what the submitter checks the id against).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { sha256 } from '@noble/hashes/sha2.js'
import { dbc } from '../../../../src/wire/gen/wire.js'
import { buildEncodedReceipt, buildReceipt, signReceipt, verifyReceipt, type ReceiptInput } from '../../../../src/core/settlement/receipt.js'
import { nodeSha256 } from '../../../../src/crypto/hash.js'
import { taskOutcome, type CheckedTask, type TaskRun } from '../../../../src/compute/task-run.js'
import { DEFAULT_POLICY } from '../../../../src/core/compute/offer-policy.js'
import { key } from '../../../integration/jobs-helpers.js'
import { createEd25519Signer } from '../../../../src/compute/signer.js'

const k = key(7)
const base: ReceiptInput = {
  jobId: new Uint8Array(32).fill(1), taskId: new TextEncoder().encode('job:3:1'), provider: k.peerId, consumer: new Uint8Array(38).fill(2),
  usage: { wallMs: 3.25, cpuMs: 2, gpuSeconds: 0, bytesIn: 100, bytesOut: 8 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 },
  startedAt: 1_765_000_000_000, finishedAt: 1_765_000_000_004, outputHash: new Uint8Array(32).fill(9), payoutAddress: '0x' + '11'.repeat(20), sha256: nodeSha256
}
const inputs: ReceiptInput[] = [
  base,
  { ...base, pricingVersion: 1 },
  { ...base, payoutBinding: new Uint8Array(65).fill(3), pricingVersion: 1 },
  { ...base, consumer: new Uint8Array(0), payoutAddress: undefined },
  { ...base, usage: { wallMs: 0, cpuMs: 0, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour: 0 }, startedAt: 0, finishedAt: 0 },
  { ...base, usage: { wallMs: 3_600_000, cpuMs: 7_200_000, gpuSeconds: 7200, bytesIn: 1e9, bytesOut: 5e8 }, prices: { priceGpuHour: 2.5, priceCpuHour: 0.05 } },
  { ...base, jobId: new Uint8Array(300).fill(4), taskId: new Uint8Array(200).fill(5), sha256: undefined }
]

test('buildEncodedReceipt: its bytes are UsageReceipt.encode of its receipt, the receipt is buildReceipt\'s', () => {
  for (const [i, input] of inputs.entries()) {
    const { receipt, bytes } = buildEncodedReceipt(input)
    assert.equal([...bytes], [...dbc.receipt.v1.UsageReceipt.encode(receipt).finish()], `input ${i}`)
    assert.equal(receipt.toJSON(), buildReceipt(input).toJSON(), `input ${i}`)
    assert.is(bytes.constructor, Uint8Array)
    assert.is(bytes.byteOffset, 0, 'a buffer of its own')
    assert.is(bytes.buffer.byteLength, bytes.length, 'a buffer of its own')
    // signed with the bytes given or encoding again: the same signed receipt, and it checks
    const withBytes = signReceipt(receipt, k.secretKey, bytes)
    const encoded = signReceipt(receipt, k.secretKey)
    assert.equal([...withBytes.receipt], [...encoded.receipt])
    assert.equal([...withBytes.signature], [...encoded.signature])
    const v = verifyReceipt(withBytes, k.peerId, undefined, undefined, nodeSha256)
    assert.ok(v.ok, v.ok ? '' : v.reason)
  }
})

test('taskOutcome: the receipt it carries (signed or unsigned) is the encoding of the usage it returns', () => {
  const task = dbc.task.v1.Task.create({ taskId: new Uint8Array([1, 2, 3]), jobId: new Uint8Array(32).fill(6), code: new Uint8Array(40), input: new Uint8Array(8), pricingVersion: 1 })
  const t = { task, taskId: '010203', input: task.input, timeoutMs: 1000, memoryLimitMib: 16, demand: { cpus: 1, gpus: 0, memoryMib: 16 } } as unknown as CheckedTask
  const run: TaskRun = { ok: true, output: new Uint8Array([7, 7, 7]), error: '', code: '', wallMs: 1.5, cpuMs: 1.25, startedAt: 10, finishedAt: 12 }
  for (const unsignedReceipt of [true, false]) {
    const out = taskOutcome({ policy: DEFAULT_POLICY, sign: createEd25519Signer(k.secretKey), provider: k.peerId, consumer: new Uint8Array(38), unsignedReceipt, gpuModel: '' }, t, { cpus: 1, memoryMib: 16, gpuIndexes: [] }, run)
    assert.equal([...out.receipt.receipt], [...dbc.receipt.v1.UsageReceipt.encode(out.usage).finish()])
    assert.equal([...out.usage.outputHash], [...sha256(run.output)])
    assert.equal([...out.result.outputHash], [...sha256(run.output)])
    if (!unsignedReceipt) { const v = verifyReceipt(out.receipt, k.peerId); assert.ok(v.ok, v.ok ? '' : v.reason) }
  }
})

test('nodeSha256: node:crypto\'s SHA-256, in a Uint8Array of its own', () => {
  for (const n of [0, 1, 31, 32, 55, 56, 64, 200, 4096]) {
    const data = new Uint8Array(n).map((_, i) => (i * 7 + n) & 255)
    const h = nodeSha256(data)
    assert.equal([...h], [...sha256(data)], `${n} bytes`)
    assert.is(h.constructor, Uint8Array)
    assert.is(h.buffer.byteLength, 32)
  }
})

test.run()
