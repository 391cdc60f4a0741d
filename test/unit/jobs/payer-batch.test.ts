// Batch-signed receipts (SignedReceipt.batch: one provider signature over the results of one
// lease write) at the payer: the signature is checked once for the batch, every receipt is still
// checked alone (its hash in the signed batch, its amount, ids, provider) and paid once; a receipt
// that was not among those signed is refused though it carries the batch and its signature.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayer } from '../../../src/jobs/payer.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { buildReceipt, signReceiptBatch, receiptSignedBytes } from '../../../src/core/settlement/receipt.js'
import { nodeSha256 } from '../../../src/crypto/hash.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { voucherTypedData } from '../../../src/core/settlement/voucher.js'
import { nodeSuite } from '../../../src/crypto/suite.js'

const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const enc = new TextEncoder()
const jobId = 'ce'.repeat(16)
const jobIdBytes = Uint8Array.from(Buffer.from(jobId, 'hex'))
const secretKey = new Uint8Array(randomBytes(32))
const peer = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
const payout = privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}`

function usage (index: number): { bytes: Uint8Array, taskId: Uint8Array, amount: bigint } {
  const taskId = enc.encode(`${jobId}:${index}:1`)
  const r = buildReceipt({ jobId: jobIdBytes, taskId, provider: peer, consumer: new Uint8Array(34), usage: { wallMs: 500, cpuMs: 500, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), payoutAddress: payout })
  return { bytes: dbc.receipt.v1.UsageReceipt.encode(r).finish(), taskId, amount: BigInt(r.amount) }
}

function setup (): JobPayer {
  const payer = new JobPayer({ jobId, jobIdBytes, payerAddress: payerKey.address, store: new PaymentStore(openStore(':memory:')), gpus: 0, cores: 1, timeoutMs: 60_000, sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain)) })
  payer.addPayee('A', { payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: peer })
  return payer
}

/** A batch of n receipts signed at once, as pay inputs. */
function batch (from: number, n: number): { inputs: Array<Parameters<JobPayer['precheck']>[0]>, amounts: bigint[], signed: dbc.receipt.v1.SignedReceipt[] } {
  const us = Array.from({ length: n }, (_, k) => usage(from + k))
  const signed = signReceiptBatch(us.map(u => u.bytes), m => nodeSuite.sign(secretKey, m))
  return { inputs: signed.map((s, k) => ({ provider: 'A', key: `${from + k}:1`, receipt: dbc.receipt.v1.SignedReceipt.encode(s).finish(), taskId: us[k].taskId, measuredMs: 1000 })), amounts: us.map(u => u.amount), signed }
}

/** Counts node:crypto's Ed25519 checks (the thread pool's and the synchronous ones). */
async function counting<T> (fn: () => Promise<T> | T): Promise<{ out: T, async: number, sync: number }> {
  const { verify, verifyAsync } = nodeSuite
  const n = { async: 0, sync: 0 }
  nodeSuite.verify = (k, m, s) => { n.sync++; return verify(k, m, s) }
  if (verifyAsync !== undefined) nodeSuite.verifyAsync = (k, m, s, cb) => { n.async++; verifyAsync(k, m, s, cb) }
  try { return { out: await fn(), ...n } } finally { nodeSuite.verify = verify; nodeSuite.verifyAsync = verifyAsync }
}

test('a batch of four: its signature is checked once, each receipt paid in full, once', async () => {
  const payer = setup()
  const b = batch(0, 4)
  const { out, async, sync } = await counting(async () => {
    for (const i of b.inputs) await payer.precheck(i)
    return payer.payMany(b.inputs)
  })
  assert.is(async + sync, 1, 'one Ed25519 check for the four receipts')
  assert.equal(out.map(o => o.payable), b.amounts)
  assert.ok(out.every(o => o.recorded))
  assert.ok(payer.payMany(b.inputs).every(o => !o.recorded), 'paid once')
})

test('not checked ahead: the transaction verifies the batch once, not per receipt', async () => {
  const payer = setup()
  const b = batch(10, 3)
  const { out, sync } = await counting(() => payer.payMany(b.inputs))
  assert.is(sync, 1)
  assert.equal(out.map(o => o.payable), b.amounts)
})

test('a receipt not among those signed is refused under the batch\'s signature; a forged batch signature pays nothing', async () => {
  const payer = setup()
  const b = batch(20, 2)
  for (const i of b.inputs) await payer.precheck(i)
  // another receipt of this provider's, carrying the good batch and signature
  const extra = usage(30)
  const smuggled = dbc.receipt.v1.SignedReceipt.encode({ receipt: extra.bytes, signature: b.signed[0].signature, batch: b.signed[0].batch }).finish()
  const x = { provider: 'A', key: '30:1', receipt: smuggled, taskId: extra.taskId, measuredMs: 1000 }
  await payer.precheck(x)
  const [o] = payer.payMany([x])
  assert.is(o.payable, 0n)
  assert.match(o.reason ?? '', /not in the batch/)
  const bad = batch(40, 2)
  const sig = bad.signed[0].signature.slice(); sig[3] ^= 1
  const forged = bad.signed.map((s, k) => ({ ...bad.inputs[k], receipt: dbc.receipt.v1.SignedReceipt.encode({ receipt: s.receipt, signature: sig, batch: s.batch }).finish() }))
  for (const i of forged) await payer.precheck(i)
  assert.ok(payer.payMany(forged).every(r => r.payable === 0n && /signature does not verify/.test(r.reason ?? '')))
  assert.equal(payer.payMany(b.inputs).map(r => r.payable), b.amounts, 'the honest batch still pays')
})

/** Signatures the payer keeps for later checks (its precheck cache: bounded, and emptied as used). */
const keptOf = (payer: JobPayer): number => (payer as unknown as { signatures: { size: number } }).signatures.size

test('a batch\'s kept signature goes once each of its receipts used it: a paid job keeps none (review16b)', async () => {
  // checked ahead (precheck), and not (the transaction verifies the first receipt of each batch)
  for (const ahead of [true, false]) {
    const payer = setup()
    for (let b = 0; b < 50; b++) {
      const x = batch(100 + b * 4, 4)
      if (ahead) for (const i of x.inputs) await payer.precheck(i)
      assert.equal(payer.payMany(x.inputs).map(o => o.payable), x.amounts)
    }
    assert.is(keptOf(payer), 0, `ahead ${String(ahead)}: every batch's receipts were paid, its signature is no longer kept`)
  }
  // one receipt of a batch paid in two steps: the signature stays for the second, then goes
  const payer = setup()
  const x = batch(400, 3)
  const { sync } = await counting(() => { payer.payMany(x.inputs.slice(0, 1)); payer.payMany(x.inputs.slice(1)) })
  assert.is(sync, 1, 'the batch is still verified once')
  assert.is(keptOf(payer), 0)
})

test('a batch\'s receipts checked ahead at once (one lease write\'s results): one Ed25519 check, not one each (review16b)', async () => {
  const payer = setup()
  const b = batch(500, 4)
  const { out, async, sync } = await counting(async () => {
    await Promise.all(b.inputs.map(async i => await payer.precheck(i)))
    return payer.payMany(b.inputs)
  })
  assert.is(async + sync, 1, `${async} checks ahead, ${sync} in the transaction`)
  assert.equal(out.map(o => o.payable), b.amounts)
  // a forged batch signature checked at once: refused for each receipt, nothing kept
  const bad = batch(600, 3)
  const sig = bad.signed[0].signature.slice(); sig[5] ^= 1
  const forged = bad.signed.map((s, k) => ({ ...bad.inputs[k], receipt: dbc.receipt.v1.SignedReceipt.encode({ receipt: s.receipt, signature: sig, batch: s.batch }).finish() }))
  await Promise.all(forged.map(async i => await payer.precheck(i)))
  assert.ok(payer.payMany(forged).every(r => r.payable === 0n && /signature does not verify/.test(r.reason ?? '')))
})

test('a budget\'s bills (verifyNow, one per result) check a batch\'s signature once, and its payments then check nothing (review16b)', async () => {
  const payer = setup()
  const b = batch(700, 4)
  const message = (s: dbc.receipt.v1.SignedReceipt): Uint8Array => { const r = receiptSignedBytes(s, nodeSha256); if (!r.ok) throw new Error(r.reason); return r.message }
  const { out, async, sync } = await counting(async () => {
    for (const s of b.signed) assert.ok(payer.verifyNow(ed25519PublicKey(secretKey), message(s), s.signature))
    for (const i of b.inputs) await payer.precheck(i)
    return payer.payMany(b.inputs)
  })
  assert.is(async + sync, 1, `${sync} synchronous checks, ${async} ahead`)
  assert.equal(out.map(o => o.payable), b.amounts)
  // another message under that signature is still verified (and refused)
  const other = batch(720, 2)
  assert.not.ok(payer.verifyNow(ed25519PublicKey(secretKey), message(other.signed[0]), b.signed[0].signature))
})

test.run()
