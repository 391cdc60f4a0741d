// Receipt pricing versions: version 1 bills any measured time as at least 1 ms (version 0, the rule
// of receipts before session 14, billed a task under 0.5 ms nothing), and mixed versions agree:
// a provider prices by the version its submitter checks, and a receipt is checked by the version
// it names.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { agreedPricingVersion, chargeUnits, decimalToUnits, PRICING_VERSION } from '../../../../src/core/compute/pricing.js'
import { buildReceipt, signReceipt, verifyReceipt } from '../../../../src/core/settlement/receipt.js'
import { boundReceipt } from '../../../../src/core/settlement/bounds.js'
import { deliveredUnits } from '../../../../src/core/settlement/credit.js'
import { signTask, taskSigningBytes, checkTaskUnderLease } from '../../../../src/core/scheduler/ownership.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../../src/core/identity/index.js'
import { dbc } from '../../../../src/wire/gen/wire.js'

const prices = { priceGpuHour: 3600, priceCpuHour: 3600 } // 1 token per second: 1 ms = 10^15 units
const MS = 10n ** 15n
const secret = new Uint8Array(32).fill(7)
const provider = peerIdBytesFromEd25519Key(ed25519PublicKey(secret))

const receipt = (cpuMs: number, pricingVersion?: number): dbc.receipt.v1.SignedReceipt => signReceipt(buildReceipt({
  jobId: new Uint8Array([1]), taskId: new Uint8Array([2]), provider, consumer: new Uint8Array([3]),
  usage: { wallMs: cpuMs, cpuMs, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour: 3600 },
  startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), ...(pricingVersion !== undefined ? { pricingVersion } : {})
}), secret)

test('version 1 bills any measured time as at least 1 ms; version 0 (absent) rounds half up', () => {
  for (const cpuMs of [0.03, 0.3, 0.49]) {
    assert.is(chargeUnits({ gpuSeconds: 0, cpuMs }, prices), 0n, `v0 ${cpuMs} ms`)
    assert.is(chargeUnits({ gpuSeconds: 0, cpuMs, pricingVersion: 1 }, prices), MS, `v1 ${cpuMs} ms`)
  }
  assert.is(chargeUnits({ gpuSeconds: 0.0003, cpuMs: 0, pricingVersion: 1 }, prices), MS) // GPU-seconds too
  assert.is(chargeUnits({ gpuSeconds: 0, cpuMs: 0, pricingVersion: 1 }, prices), 0n) // nothing measured, nothing billed
  assert.is(chargeUnits({ gpuSeconds: 0, cpuMs: 1.2, pricingVersion: 1 }, prices), 2n * MS)
  // a float's last bit does not add a ms: 0.001 s * 1000 is 1.0000000000000002
  assert.is(chargeUnits({ gpuSeconds: 0.001, cpuMs: 0, pricingVersion: 1 }, prices), MS)
  assert.is(chargeUnits({ gpuSeconds: 0, cpuMs: 2, pricingVersion: 1 }, prices), chargeUnits({ gpuSeconds: 0, cpuMs: 2 }, prices)) // whole ms: the same
  assert.throws(() => chargeUnits({ gpuSeconds: 0, cpuMs: 1, pricingVersion: PRICING_VERSION + 1 }, prices), /pricing version .* not known/)
})

test('the agreed version: the lower of the two sides; an older peer (absent) gets 0; junk gets 0', () => {
  assert.is(PRICING_VERSION, 1)
  assert.is(agreedPricingVersion(undefined), 0)
  assert.is(agreedPricingVersion(null), 0)
  assert.is(agreedPricingVersion(0), 0)
  assert.is(agreedPricingVersion(1), 1)
  assert.is(agreedPricingVersion(99), PRICING_VERSION) // a newer submitter gets what this side knows
  assert.is(agreedPricingVersion(0.5), 0)
})

test('mixed versions agree: every pairing of old/new provider and submitter checks', () => {
  // new provider, new submitter: version 1, a 0.3 ms task pays 1 ms
  const v1 = receipt(0.3, agreedPricingVersion(PRICING_VERSION))
  const c1 = verifyReceipt(v1, provider)
  assert.ok(c1.ok, c1.ok ? '' : c1.reason)
  assert.is(c1.ok && c1.receipt.pricingVersion, 1)
  assert.is(c1.ok && c1.receipt.amount, MS.toString())
  // old submitter (its task names no version): the new provider prices by 0, and the receipt's bytes
  // are what an old provider signs (no field 19), so the old submitter's check (version 0) agrees
  const forOld = receipt(0.3, agreedPricingVersion(undefined))
  const old = receipt(0.3)
  assert.equal(forOld.receipt, old.receipt)
  const c0 = verifyReceipt(forOld, provider)
  assert.ok(c0.ok && c0.receipt.amount === '0' && c0.receipt.pricingVersion === 0)
  // old provider, new submitter: a receipt without the field is checked by version 0
  assert.ok(verifyReceipt(old, provider).ok)
  // why the provider must ask: a version-1 amount recomputed by the version-0 rule does not match
  const r = dbc.receipt.v1.UsageReceipt.decode(v1.receipt)
  assert.is.not(chargeUnits({ gpuSeconds: r.gpuSeconds, cpuMs: r.cpuMs }, { priceGpuHour: r.priceGpuHour, priceCpuHour: r.priceCpuHour }).toString(), r.amount)
})

test('a receipt naming a version this node does not know is refused with a reason, never thrown', () => {
  const r = buildReceipt({
    jobId: new Uint8Array([1]), taskId: new Uint8Array([2]), provider, consumer: new Uint8Array([3]),
    usage: { wallMs: 5, cpuMs: 5, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour: 1 },
    startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32)
  })
  r.pricingVersion = 7
  const c = verifyReceipt(signReceipt(r, secret), provider)
  assert.not.ok(c.ok)
  assert.match(c.ok ? '' : c.reason, /pricing version 7 is not known/)
})

test('the submitter\'s bound and the provider\'s delivered count reprice by the receipt\'s version', () => {
  const offer = { priceGpuHour: 0, priceCpuHour: 3600 }
  const b = boundReceipt({ receiptAmount: MS, usage: { gpuSeconds: 0, cpuMs: 0.3, pricingVersion: 1 }, offer, gpus: 0, cores: 1, measuredMs: 0.8, timeoutMs: 10_000 })
  assert.is(b.payable, MS, b.reason)
  assert.is(b.limit, 'receipt')
  // a result back within the same Date.now() ms measures 0: still at least 1 ms of the slot
  assert.is(boundReceipt({ receiptAmount: MS, usage: { gpuSeconds: 0, cpuMs: 0.3, pricingVersion: 1 }, offer, gpus: 0, cores: 1, measuredMs: 0, timeoutMs: 10_000 }).payable, MS)
  // the version does not raise the bound past the offer: 1 ms at the offer's price
  assert.is(boundReceipt({ receiptAmount: 5n * MS, usage: { gpuSeconds: 0, cpuMs: 0.3, pricingVersion: 1 }, offer, gpus: 0, cores: 1, measuredMs: 0.8, timeoutMs: 10_000 }).payable, MS)
  assert.is(deliveredUnits({ amount: MS.toString(), wallMs: 0.4, cpuMs: 0.3, gpuSeconds: 0, pricingVersion: 1 }, offer, 0, 1, 10_000), MS)
  assert.is(deliveredUnits({ amount: MS.toString(), wallMs: 0.4, cpuMs: 0.3, gpuSeconds: 0 }, offer, 0, 1, 10_000), 0n) // version 0: 0.3 ms is 0
  assert.is(decimalToUnits(offer.priceCpuHour) / 3_600_000n, MS)
})

test('a task\'s pricing version is not signed: an older provider, which drops the field, checks the same bytes', () => {
  const holder = secret
  const lease = { leaseId: new Uint8Array([9]), jobId: new Uint8Array([1]), holder: provider, expiresAt: 10_000 }
  const task = { taskId: new Uint8Array([2]), jobId: new Uint8Array([1]), leaseId: new Uint8Array([9]), index: 3, pricingVersion: PRICING_VERSION }
  const signed = signTask(holder, task)
  // what an older provider decodes: the wire bytes without field 14
  const wire = dbc.task.v1.Task.encode(signed).finish()
  const asOld = dbc.task.v1.Task.decode(wire)
  delete (asOld as Partial<dbc.task.v1.Task>).pricingVersion
  assert.equal(taskSigningBytes(asOld), taskSigningBytes(signed))
  assert.ok(checkTaskUnderLease({ task: asOld, lease, sender: provider, now: 1 }).ok)
  assert.ok(checkTaskUnderLease({ task: dbc.task.v1.Task.decode(wire), lease, sender: provider, now: 1 }).ok)
})

test.run()
