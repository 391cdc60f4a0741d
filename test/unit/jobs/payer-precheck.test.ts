// The payer's hot path. It checks receipt signatures off the main thread (precheck: node:crypto's async verify,
// libuv's thread pool) so its payment transaction does no Ed25519; the check is never skipped:
// a receipt is taken as signed only when the payer itself found those exact key, message and
// signature bytes good, and a forged or altered receipt is still refused. A batch's statements are counted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayer, PRECHECKED_MAX } from '../../../src/jobs/payer.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt } from '../../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { voucherTypedData } from '../../../src/core/settlement/voucher.js'
import { nodeSuite } from '../../../src/crypto/suite.js'
import { countStatements } from '../../helpers/statement-count.js'

const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const enc = new TextEncoder()
const jobId = 'cd'.repeat(16)
const jobIdBytes = Uint8Array.from(Buffer.from(jobId, 'hex'))

function provider (): { secretKey: Uint8Array, peer: Uint8Array, payout: `0x${string}` } {
  const secretKey = new Uint8Array(randomBytes(32))
  return { secretKey, peer: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)), payout: privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}` }
}
type P = ReturnType<typeof provider>

function receipt (p: P, index: number, cpuMs = 500): { signed: dbc.receipt.v1.SignedReceipt, taskId: Uint8Array, amount: bigint } {
  const taskId = enc.encode(`${jobId}:${index}:1`)
  const r = buildReceipt({ jobId: jobIdBytes, taskId, provider: p.peer, consumer: new Uint8Array(34), usage: { wallMs: cpuMs, cpuMs, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), payoutAddress: p.payout })
  return { signed: signReceipt(r, p.secretKey), taskId, amount: BigInt(r.amount) }
}
const encode = (s: dbc.receipt.v1.SignedReceipt): Uint8Array => dbc.receipt.v1.SignedReceipt.encode(s).finish()

function setup (): { payer: JobPayer, a: P } {
  const store = new PaymentStore(openStore(':memory:'))
  const payer = new JobPayer({ jobId, jobIdBytes, payerAddress: payerKey.address, store, gpus: 0, cores: 1, timeoutMs: 60_000, sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain)) })
  const a = provider()
  payer.addPayee('A', { payout: a.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: a.peer })
  return { payer, a }
}

/** Runs fn with node:crypto's synchronous Ed25519 verify counted. */
function countingVerify<T> (fn: () => T): { out: T, calls: number } {
  const original = nodeSuite.verify
  let calls = 0
  nodeSuite.verify = (k, m, s) => { calls++; return original(k, m, s) }
  try { return { out: fn(), calls } } finally { nodeSuite.verify = original }
}

test('suite: verifyAsync answers later, true for a good signature, false for a bad one or a malformed key, on the bytes given at the call', async () => {
  const a = provider()
  const msg = new Uint8Array(randomBytes(100))
  const sig = nodeSuite.sign(a.secretKey, msg)
  const pub = ed25519PublicKey(a.secretKey)
  const ask = async (k: Uint8Array, m: Uint8Array, s: Uint8Array, after?: () => void): Promise<boolean> => await new Promise(resolve => {
    let sync = true
    nodeSuite.verifyAsync!(k, m, s, ok => { assert.not.ok(sync, 'never answered in the caller\'s turn'); resolve(ok) })
    after?.()
    sync = false
  })
  assert.ok(await ask(pub, msg, sig))
  const bad = sig.slice(); bad[5] ^= 1
  assert.not.ok(await ask(pub, msg, bad))
  assert.not.ok(await ask(pub.subarray(0, 31), msg, sig))
  assert.not.ok(await ask(pub, msg, sig.subarray(0, 63)))
  // the message is copied before the job leaves the thread: changing it after the call changes nothing
  const m2 = msg.slice()
  assert.ok(await ask(pub, m2, sig, () => { m2.fill(0) }))
})

test('a prechecked receipt is recorded without Ed25519 in the transaction; one not prechecked is verified there', async () => {
  const { payer, a } = setup()
  const r0 = receipt(a, 0); const r1 = receipt(a, 1)
  const in0 = { provider: 'A', key: '0:1', receipt: encode(r0.signed), taskId: r0.taskId, measuredMs: 1000 }
  const in1 = { provider: 'A', key: '1:1', receipt: encode(r1.signed), taskId: r1.taskId, measuredMs: 1000 }
  await payer.precheck(in0)
  const { out, calls } = countingVerify(() => payer.payMany([in0, in1]))
  assert.is(calls, 1, 'only the receipt that was not prechecked is verified in the transaction')
  assert.equal(out.map(o => o.payable), [r0.amount, r1.amount])
  assert.equal(out.map(o => o.recorded), [true, true])
})

test('a prechecked receipt is decoded once (precheck decodes it, the payment checks what it decoded); bytes changed in place after the check are decoded again and what they say is what is paid', async () => {
  const { payer, a } = setup()
  const decode = dbc.receipt.v1.UsageReceipt.decode
  let decodes = 0
  dbc.receipt.v1.UsageReceipt.decode = ((...args: Parameters<typeof decode>) => { decodes++; return decode(...args) }) as typeof decode
  try {
    const r0 = receipt(a, 0)
    const in0 = { provider: 'A', key: '0:1', receipt: encode(r0.signed), taskId: r0.taskId, measuredMs: 1000 }
    await payer.precheck(in0)
    const [o0] = payer.payMany([in0])
    assert.is(o0.payable, r0.amount)
    assert.is(decodes, 1, 'one decode for the check ahead and the payment')
    // the input's bytes rewritten in place after its check: another receipt of the same task, signed by the provider, billing more
    const r1 = receipt(a, 1, 500)
    const bytes = encode(r1.signed)
    const in1 = { provider: 'A', key: '1:1', receipt: bytes, taskId: r1.taskId, measuredMs: 1000 }
    await payer.precheck(in1)
    const more = receipt(a, 1, 600)
    const swapped = encode(more.signed)
    assert.is(swapped.length, bytes.length)
    assert.ok(more.amount > r1.amount)
    bytes.set(swapped)
    decodes = 0
    const [o1] = payer.payMany([in1])
    assert.is(decodes, 1, 'decoded again')
    assert.is(o1.payable, more.amount, 'paid what the bytes recorded say, not what was decoded before')
  } finally { dbc.receipt.v1.UsageReceipt.decode = decode }
})

test('a forged signature is refused, prechecked or not', async () => {
  const { payer, a } = setup()
  const r = receipt(a, 0)
  const forged = dbc.receipt.v1.SignedReceipt.create({ receipt: r.signed.receipt, signature: r.signed.signature.slice() })
  forged.signature[0] ^= 1
  const input = { provider: 'A', key: '0:1', receipt: encode(forged), taskId: r.taskId, measuredMs: 1000 }
  await payer.precheck(input)
  const { out: [o], calls } = countingVerify(() => payer.payMany([input]))
  assert.is(calls, 1, 'a signature precheck found bad is verified (and refused) in the transaction')
  assert.is(o.payable, 0n)
  assert.match(o.reason ?? '', /signature does not verify/)
  // a receipt signed by another key than the payee's
  const b = provider()
  const other = receipt(b, 1)
  const in2 = { provider: 'A', key: '1:1', receipt: encode(other.signed), taskId: other.taskId, measuredMs: 1000 }
  await payer.precheck(in2)
  assert.is(payer.payMany([in2])[0].payable, 0n)
})

test('a good signature checked ahead does not vouch for other bytes: an altered receipt under it is refused', async () => {
  const { payer, a } = setup()
  const r = receipt(a, 0, 500)
  const good = { provider: 'A', key: '0:1', receipt: encode(r.signed), taskId: r.taskId, measuredMs: 1000 }
  await payer.precheck(good)
  // the same signature over a receipt billing more (the provider's own bytes changed after the check)
  const bigger = receipt(a, 0, 900)
  const altered = { provider: 'A', key: '0:1', receipt: encode(dbc.receipt.v1.SignedReceipt.create({ receipt: bigger.signed.receipt, signature: r.signed.signature })), taskId: r.taskId, measuredMs: 1000 }
  const { out: [o], calls } = countingVerify(() => payer.payMany([altered]))
  assert.is(calls, 1)
  assert.is(o.payable, 0n)
  assert.match(o.reason ?? '', /signature does not verify/)
  // and the input's array changed after its check is verified again, not taken on trust
  const r2 = receipt(a, 2, 500)
  const bytes = encode(r2.signed)
  const in2 = { provider: 'A', key: '2:1', receipt: bytes, taskId: r2.taskId, measuredMs: 1000 }
  await payer.precheck(in2)
  // rewritten in place: another receipt (same length) under the signature that was checked
  const r3 = receipt(a, 3, 500)
  const swapped = encode(dbc.receipt.v1.SignedReceipt.create({ receipt: r3.signed.receipt, signature: r2.signed.signature }))
  assert.is(swapped.length, bytes.length)
  bytes.set(swapped)
  const { out: [o2], calls: calls2 } = countingVerify(() => payer.payMany([in2]))
  assert.is(calls2, 1)
  assert.is(o2.payable, 0n)
})

test('a signature the runner\'s budget verified (verifyNow) is not verified again when paid; a bad one is refused both times', async () => {
  const { payer, a } = setup()
  const r = receipt(a, 0)
  const forged = dbc.receipt.v1.SignedReceipt.create({ receipt: receipt(a, 1).signed.receipt, signature: r.signed.signature })
  const { out, calls } = countingVerify(() => [payer.verifyNow(ed25519PublicKey(a.secretKey), r.signed.receipt, r.signed.signature), payer.verifyNow(ed25519PublicKey(a.secretKey), forged.receipt, forged.signature)])
  assert.equal(out, [true, false])
  assert.is(calls, 2, 'verified at once, on the caller\'s thread')
  const good = { provider: 'A', key: '0:1', receipt: encode(r.signed), taskId: r.taskId, measuredMs: 1000 }
  const bad = { provider: 'A', key: '1:1', receipt: encode(forged), taskId: receipt(a, 1).taskId, measuredMs: 1000 }
  let asked = 0
  const verifyAsync = nodeSuite.verifyAsync!
  nodeSuite.verifyAsync = (k, m, sig, done) => { asked++; verifyAsync(k, m, sig, done) }
  try { await payer.precheck(good) } finally { nodeSuite.verifyAsync = verifyAsync }
  assert.is(asked, 0, 'kept: not checked again off-thread')
  const { out: [o0, o1], calls: calls2 } = countingVerify(() => payer.payMany([good, bad]))
  assert.is(calls2, 1, 'only the forged one is verified in the transaction')
  assert.is(o0.payable, r.amount)
  assert.is(o1.payable, 0n)
  assert.match(o1.reason ?? '', /signature does not verify/)
})

test('a batch costs two statements per copy and a few per payout (its voucher row is read once)', async () => {
  const store = openStore(':memory:')
  const counted = countStatements(store)
  const payer = new JobPayer({ jobId, jobIdBytes, payerAddress: payerKey.address, store: new PaymentStore(store), gpus: 0, cores: 1, timeoutMs: 60_000, sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain)) })
  const ps = [provider(), provider()]
  ps.forEach((p, i) => payer.addPayee(`P${i}`, { payout: p.payout, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, providerBytes: p.peer }))
  const batch = (from: number): Array<Parameters<JobPayer['precheck']>[0]> => Array.from({ length: 20 }, (_, k) => { const i = from + k; const r = receipt(ps[i % 2], i); return { provider: `P${i % 2}`, key: `${i}:1`, receipt: encode(r.signed), taskId: r.taskId, measuredMs: 1000 } })
  payer.payMany(batch(0)) // the payouts' leaves and rows exist after the first batch
  counted.reset()
  const outs = payer.payMany(batch(20))
  assert.ok(outs.every(o => o.recorded && o.payable > 0n))
  // per copy: is it paid already, its row; per payout: its voucher row read once, then raised (read + write)
  assert.ok(counted.runs <= 20 * 2 + 2 * 3, `${counted.runs} statements for 20 copies on 2 payouts`)
})

test('a copy already paid is not checked again (a restart\'s catch-up hands in every billed copy; review s9 L2)', async () => {
  const { payer, a } = setup()
  const r0 = receipt(a, 0)
  const in0 = { provider: 'A', key: '0:1', receipt: encode(r0.signed), taskId: r0.taskId, measuredMs: 1000 }
  const original = nodeSuite.verifyAsync!
  let calls = 0
  nodeSuite.verifyAsync = (k, m, sig, done) => { calls++; original(k, m, sig, done) }
  try {
    await payer.precheck(in0)
    assert.is(calls, 1)
    assert.ok(payer.payMany([in0])[0].recorded)
    await payer.precheck(in0)
    assert.is(calls, 1, 'the paid copy was checked again')
    assert.is((payer as unknown as { signatures: { size: number } }).signatures.size, 0, 'no entry kept for a paid copy')
  } finally { nodeSuite.verifyAsync = original }
})

test('checks ahead that are never used stay bounded', async () => {
  const { payer, a } = setup()
  const inputs = Array.from({ length: PRECHECKED_MAX + 50 }, (_, i) => { const r = receipt(a, i); return { provider: 'A', key: `${i}:1`, receipt: encode(r.signed), taskId: r.taskId, measuredMs: 1000 } })
  for (let i = 0; i < inputs.length; i += 256) await Promise.all(inputs.slice(i, i + 256).map(async x => { await payer.precheck(x) }))
  const held = (payer as unknown as { signatures: { size: number } }).signatures.size
  assert.ok(held <= PRECHECKED_MAX, `${held} entries`)
  // the newest are still used; the oldest (evicted) are verified in the transaction: all paid
  const { out, calls } = countingVerify(() => payer.payMany(inputs))
  assert.is(calls, 50)
  assert.ok(out.every(o => o.recorded && o.payable > 0n))
})

test.run()
