import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { dbc } from '../../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt, verifyReceipt } from '../../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, signBytes } from '../../../../src/core/identity/index.js'
import { createRng } from '../../../../src/core/rng.js'
import { sha256 } from '@noble/hashes/sha2.js'

const rng = createRng(7)
const secret = rng.bytes(new Uint8Array(32))
const provider = peerIdBytesFromEd25519Key(ed25519PublicKey(secret))
const otherSecret = rng.bytes(new Uint8Array(32))

function sample (): dbc.receipt.v1.UsageReceipt {
  return buildReceipt({
    jobId: new Uint8Array([1, 2]),
    taskId: new Uint8Array([3, 4]),
    provider,
    consumer: new Uint8Array([9]),
    usage: { wallMs: 1234.5, cpuMs: 1200, gpuSeconds: 2.469, bytesIn: 100, bytesOut: 8 },
    prices: { priceGpuHour: 1.5, priceCpuHour: 0.05 },
    startedAt: 1_700_000_000_000,
    finishedAt: 1_700_000_001_234,
    outputHash: new Uint8Array(32).fill(7),
    payoutAddress: '0x0000000000000000000000000000000000000001'
  })
}

test('amount = GPU-seconds x GPU price + CPU time x CPU price, in smallest units', () => {
  const r = sample()
  // 2469 ms * 1.5e18 + 1200 ms * 5e16, over 3.6e6 ms, rounded down
  assert.is(r.amount, ((2469n * 1_500_000_000_000_000_000n + 1200n * 50_000_000_000_000_000n) / 3_600_000n).toString())
  assert.is(r.receiptId.length, 16)
})

test('a signed receipt verifies against the provider id', () => {
  const signed = signReceipt(sample(), secret)
  const check = verifyReceipt(signed, provider)
  assert.ok(check.ok, check.ok ? '' : check.reason)
  assert.is(check.ok && check.receipt.amount, sample().amount)
  // and survives the wire
  const again = dbc.receipt.v1.SignedReceipt.decode(dbc.receipt.v1.SignedReceipt.encode(signed).finish())
  assert.ok(verifyReceipt(again).ok)
})

test('tampering fails: any byte, amount, provider, signature', () => {
  const signed = signReceipt(sample(), secret)
  for (let i = 0; i < signed.receipt.length; i += 7) {
    const bytes = Uint8Array.from(signed.receipt) // (a Buffer's slice() would share memory)
    bytes[i] ^= 0x01
    assert.not.ok(verifyReceipt({ receipt: bytes, signature: signed.signature } as dbc.receipt.v1.SignedReceipt).ok, `flipped byte ${i}`)
  }
  const r = sample()
  r.amount = (BigInt(r.amount) + 1n).toString()
  const forged = { receipt: dbc.receipt.v1.UsageReceipt.encode(r).finish(), signature: signed.signature } as dbc.receipt.v1.SignedReceipt
  const c = verifyReceipt(forged)
  assert.not.ok(c.ok)
  assert.match(c.ok ? '' : c.reason, /signature/)
  const sig = Uint8Array.from(signed.signature)
  sig[0] ^= 1
  assert.not.ok(verifyReceipt({ receipt: signed.receipt, signature: sig } as dbc.receipt.v1.SignedReceipt).ok)
  const other = peerIdBytesFromEd25519Key(ed25519PublicKey(otherSecret))
  const wrongProvider = verifyReceipt(signed, other)
  assert.match(wrongProvider.ok ? '' : wrongProvider.reason, /another provider/)
})

test('the receipt id must be the hash of the canonical encoding: one hashed over a non-canonical encoding is refused, signed or not', () => {
  const r = sample()
  const noId = { ...r } as Partial<dbc.receipt.v1.UsageReceipt>
  delete noId.receiptId
  const canonical = dbc.receipt.v1.UsageReceipt.encode(noId as dbc.receipt.v1.UsageReceipt).finish()
  // the id first (field 1, 16 bytes), then the rest: what buildReceipt writes
  const withId = (rest: Uint8Array): Uint8Array => {
    const id = sha256(rest).subarray(0, 16)
    return Uint8Array.from([0x0a, 16, ...id, ...rest])
  }
  const signedOf = (bytes: Uint8Array): dbc.receipt.v1.SignedReceipt => dbc.receipt.v1.SignedReceipt.create({ receipt: bytes, signature: signBytes(secret, bytes) })
  // control: the same construction over the canonical bytes verifies
  const good = verifyReceipt(signedOf(withId(canonical)), provider)
  assert.ok(good.ok, good.ok ? '' : good.reason)
  // an unknown field (30, varint 1) appended: it decodes to the same receipt, but the id was hashed over other bytes
  const padded = Uint8Array.from([...canonical, 0xf0, 0x01, 0x01])
  const c1 = verifyReceipt(signedOf(withId(padded)), provider)
  assert.not.ok(c1.ok)
  assert.match(c1.ok ? '' : c1.reason, /receipt id does not match/)
  // a field written twice (the last wins when decoded): also not canonical
  const twice = Uint8Array.from([...canonical, ...dbc.receipt.v1.UsageReceipt.encode({ amount: r.amount } as dbc.receipt.v1.UsageReceipt).finish()])
  const c2 = verifyReceipt(signedOf(withId(twice)), provider)
  assert.not.ok(c2.ok)
  assert.match(c2.ok ? '' : c2.reason, /receipt id does not match/)
})

test('a provider that signs an overcharge is caught by the amount check', () => {
  const r = sample()
  r.amount = '999999999999999999999'
  // re-signed by the right key: the signature is fine, the amount is not
  const bytes = dbc.receipt.v1.UsageReceipt.encode(r).finish()
  const c = verifyReceipt({ receipt: bytes, signature: signBytes(secret, bytes) } as dbc.receipt.v1.SignedReceipt)
  assert.not.ok(c.ok)
  assert.match(c.ok ? '' : c.reason, /does not match usage x prices/)
})

test('signing with a key that is not the provider\'s is refused', () => {
  assert.throws(() => signReceipt(sample(), otherSecret), /does not belong/)
})

test.run()
