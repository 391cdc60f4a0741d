// A real compute peer behind the payment gate (src/jobs/compute-provider.ts + payment-gate.ts,
// with a chain double): its offers carry its payout address under its signature, a request on
// another chain is refused in the offer, a lease with no escrow does not open, tasks run while
// the escrow and the vouchers keep up and are refused with the typed reason when they do not.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { privateKeyToAccount } from 'viem/accounts'
import { ComputePeer } from '../../../src/compute/index.js'
import { ComputePeerProvider } from '../../../src/jobs/compute-provider.js'
import { PaymentGate, type PaymentPort } from '../../../src/jobs/payment-gate.js'
import { signLease } from '../../../src/core/scheduler/ownership.js'
import { verifyOffer } from '../../../src/core/compute/offer.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { escrowKeyOf, uint256Bytes, type EscrowRead } from '../../../src/core/settlement/credit.js'
import { voucherTypedData, type VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import { checkPayoutBinding, payoutBindingTypedData } from '../../../src/core/settlement/payout-binding.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { encodeTileInput } from '../../../src/compute/mandelbrot.js'

const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../src/compute/modules/${name}.wasm`, import.meta.url)))
const square = mod('square')
const loop = mod('loop')
const payer = privateKeyToAccount(`0x${'33'.repeat(32)}`)
const PAYOUT = `0x${'ab'.repeat(20)}`
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }

/** A started compute peer behind a payment gate over a chain double whose escrows the test sets. */
async function gatedPeer (gateOpts: ConstructorParameters<typeof PaymentGate>[1]): Promise<{ escrows: Map<string, EscrowRead>, holderKey: Uint8Array, holder: Uint8Array, peer: ComputePeer, gate: PaymentGate, provider: ComputePeerProvider }> {
  const escrows = new Map<string, EscrowRead>()
  const port: PaymentPort = { address: PAYOUT, domain: () => DOMAIN, escrow: async k => escrows.get(k), acceptVoucher: async () => {} }
  const holderKey = randomBytes(32)
  const holder = peerIdBytesFromEd25519Key(ed25519PublicKey(holderKey))
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false, payoutAddress: PAYOUT })
  await peer.start()
  const gate = new PaymentGate(port, gateOpts)
  return { escrows, holderKey, holder, peer, gate, provider: new ComputePeerProvider(peer, undefined, { payment: gate }) }
}

/** A funded escrow for a fresh job, the provider's offer on it and the holder's lease of that offer. */
async function paidLease (p: { escrows: Map<string, EscrowRead>, holderKey: Uint8Array, holder: Uint8Array, peer: ComputePeer, provider: ComputePeerProvider }): Promise<{ jobId: Uint8Array, chainJobId: `0x${string}`, leaseId: Uint8Array }> {
  const jobId = randomBytes(16)
  const chainJobId = escrowKeyOf(jobId, payer.address)
  const holderAuth = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(chainJobId, p.holder, DOMAIN)))
  const payment = { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(chainJobId), payer: bytesFromHex(payer.address), holderAuth }
  p.escrows.set(chainJobId, { payer: payer.address.toLowerCase(), unspent: 10n ** 18n, refunded: false, closedAt: 0, disputeWindow: 3600 })
  const offer = p.provider.offer({ jobId, requester: p.holder, slots: 1, executor: 'wasm', expectedTaskMs: 10, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000, payment })
  const leaseId = randomBytes(16)
  await p.provider.openLease(signLease(p.holderKey, { leaseId, offerId: offer.offerId, jobId, holder: p.holder, provider: p.peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000, payment }), p.holder)
  return { jobId, chainJobId, leaseId }
}

test('offers, leases and tasks under the payment gate', async () => {
  // credit 0: no unsigned work at all, so the second task needs a voucher for the first
  const { escrows, holderKey, holder, peer, provider } = await gatedPeer({ creditTasks: 0, minRefreshMs: 0 })
  try {
    const jobId = randomBytes(16)
    // the payer authorises this holder to lease against its escrow (PaymentTerms.holder_auth)
    const holderAuth = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(escrowKeyOf(jobId, payer.address), holder, DOMAIN)))
    const payment = { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(escrowKeyOf(jobId, payer.address)), payer: bytesFromHex(payer.address), holderAuth }
    const request = { jobId, requester: holder, slots: 1, executor: 'wasm', expectedTaskMs: 10, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000, payment }
    // another chain: a signed refusal that says why
    const elsewhere = provider.offer({ ...request, payment: { ...payment, chainId: 19880818 } })
    assert.match(elsewhere.refusal ?? '', /^PAYMENT_WRONG_CHAIN: job 0x[0-9a-f]{8}… pays on chain 19880818/)
    // ours: an offer naming the payout address, covered by its signature
    const offer = provider.offer(request)
    assert.is(offer.refusal ?? '', '')
    assert.is(offer.payoutAddress, PAYOUT)
    assert.ok(verifyOffer(offer, Date.now()).ok)
    assert.not.ok(verifyOffer({ ...offer, payoutAddress: `0x${'cd'.repeat(20)}` }, Date.now()).ok, 'the payout address is signed')
    const leaseId = randomBytes(16)
    const lease = signLease(holderKey, { leaseId, offerId: offer.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000, payment })
    // no escrow yet: the lease does not open, and says why
    let refused: (Error & { code?: string }) | undefined
    await provider.openLease(lease, holder).catch((err: Error) => { refused = err })
    assert.is(refused?.code, 'NO_ESCROW')
    assert.match(refused?.message ?? '', /^no escrow for job 0x[0-9a-f]{8}… on chain 31337$/)
    // funded: a new offer and lease open
    escrows.set(escrowKeyOf(jobId, payer.address), { payer: payer.address.toLowerCase(), unspent: 10n ** 18n, refunded: false, closedAt: 0, disputeWindow: 3600 })
    const offer2 = provider.offer(request)
    await provider.openLease(signLease(holderKey, { leaseId, offerId: offer2.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000, payment }), holder)
    const task = (n: number): dbc.task.v1.ITask => ({ taskId: randomBytes(8), jobId, leaseId, index: n, attempt: 1, executor: 'wasm', code: square, entry: 'run', input: new TextEncoder().encode(String(n)), deadlineMs: 20_000 })
    // a task that runs to its timeout is the provider's risk (the submitter pays only accepted
    // results): its receipt does not count, so even with no credit the next task runs
    const timedOut = await provider.runTask({ ...task(1), code: loop, deadlineMs: 300 }, holder)
    assert.match(timedOut.error ?? '', /TIMEOUT/)
    // a task with real CPU work (a square bills 0 when it takes under the meter's resolution)
    const first = await provider.runTask({ ...task(2), code: mod('mandelbrot'), input: encodeTileInput(-2, -1.25, 2.5 / 128, 128, 128, 3000) }, holder)
    assert.is(first.ok, true, first.error ?? '')
    const billed = BigInt(dbc.receipt.v1.UsageReceipt.decode(first.receipt?.receipt ?? new Uint8Array()).amount)
    assert.ok(billed > 0n, 'the ok task billed something')
    // nothing signed yet and no credit: refused with the typed reason, nothing run
    const second = await provider.runTask(task(3), holder)
    assert.is(second.ok, false)
    assert.match(second.error ?? '', /^PAYER_BEHIND: payer is [0-9.]+ DBC behind on job 0x/)
    assert.ok(second.receipt == null, 'a refused task runs nothing and bills nothing')
    // the payer signs what it owes: the next task runs
    const v = { escrowId: escrowKeyOf(jobId, payer.address), provider: PAYOUT as `0x${string}`, cumulative: billed, receiptsRoot: `0x${'00'.repeat(32)}` as const, receiptCount: 1 }
    const signature = await payer.signTypedData(voucherTypedData(v, DOMAIN))
    const held = await provider.acceptVoucher({ escrowId: bytesFromHex(v.escrowId), provider: bytesFromHex(PAYOUT), cumulative: uint256Bytes(billed), receiptsRoot: new Uint8Array(32), receiptCount: 1, signature: bytesFromHex(signature) }, holder)
    assert.equal(held.cumulative, uint256Bytes(billed))
    const third = await provider.runTask(task(4), holder)
    assert.is(third.ok, true, third.error ?? '')
  } finally {
    await peer.stop()
  }
})

test('an ok copy whose cancel came before it ended is not counted delivered (it sends no result: review F6)', async () => {
  const { escrows, holderKey, holder, peer, gate, provider } = await gatedPeer({ minRefreshMs: 0 })
  try {
    const { jobId, chainJobId, leaseId } = await paidLease({ escrows, holderKey, holder, peer, provider })
    const task: dbc.task.v1.ITask = { taskId: randomBytes(8), jobId, leaseId, index: 0, attempt: 1, executor: 'wasm', code: mod('mandelbrot'), entry: 'run', input: encodeTileInput(-2, -1.25, 2.5 / 128, 128, 128, 3000), deadlineMs: 20_000 }
    // the run ends ok, and the holder's cancel arrives just as it does (before the result is written)
    const ac = new AbortController()
    const run = peer.runTask.bind(peer)
    peer.runTask = async (t, opts) => { const out = await run(t, { ...opts, signal: undefined }); ac.abort(new Error('the submitter cancelled the task')); return out }
    const cancelled = await provider.runTask(task, holder, { signal: ac.signal })
    assert.is(cancelled.ok, true, 'it ran to the end')
    assert.ok(BigInt(dbc.receipt.v1.UsageReceipt.decode(cancelled.receipt?.receipt ?? new Uint8Array()).amount) > 0n, 'its receipt bills something')
    const l = gate.ledgerOf(chainJobId)
    assert.is(l?.delivered, 0n, 'not delivered: no result goes out for a cancelled task, and the submitter pays none')
    assert.is(l?.inflight, 0)
    // the same run not cancelled counts
    peer.runTask = run
    const again = await provider.runTask({ ...task, taskId: randomBytes(8) }, holder)
    assert.is(again.ok, true, again.error ?? '')
    assert.ok((gate.ledgerOf(chainJobId)?.delivered ?? 0n) > 0n, 'an answered ok copy counts')
  } finally {
    await peer.stop()
  }
})

test('a paid task: the gate and the task log take the receipt the peer built, never decoding its signed bytes', async () => {
  const { escrows, holderKey, holder, peer, gate } = await gatedPeer({ minRefreshMs: 0 })
  const records: Array<{ outcome: string, billedUnits: bigint }> = []
  const provider = new ComputePeerProvider(peer, undefined, { payment: gate, onTask: r => { records.push(r) } })
  const UsageReceipt = dbc.receipt.v1.UsageReceipt
  const decode = UsageReceipt.decode
  let decodes = 0
  try {
    const { jobId, chainJobId, leaseId } = await paidLease({ escrows, holderKey, holder, peer, provider })
    UsageReceipt.decode = ((r: Uint8Array, l?: number) => { decodes++; return decode.call(UsageReceipt, r, l) }) as typeof decode
    const result = await provider.runTask({ taskId: randomBytes(8), jobId, leaseId, index: 0, attempt: 1, executor: 'wasm', code: mod('mandelbrot'), entry: 'run', input: encodeTileInput(-2, -1.25, 2.5 / 128, 128, 128, 3000), deadlineMs: 20_000 }, holder)
    assert.is(decodes, 0, 'no receipt decoded on the provider\'s path')
    UsageReceipt.decode = decode
    assert.is(result.ok, true, result.error ?? '')
    const billed = BigInt(decode.call(UsageReceipt, result.receipt?.receipt ?? new Uint8Array()).amount)
    assert.ok(billed > 0n, 'the receipt bills something')
    assert.equal(records.map(r => [r.outcome, r.billedUnits]), [['ok', billed]], 'the log record bills what the signed receipt says')
    assert.is(gate.ledgerOf(chainJobId)?.delivered, billed, 'delivered counts what the signed receipt says')
  } finally {
    UsageReceipt.decode = decode
    await peer.stop()
  }
})

test('a paid offer carries the payout key\'s binding to this peer, under the offer\'s signature', async () => {
  const payoutKey = privateKeyToAccount(`0x${'34'.repeat(32)}`)
  const secretKey = randomBytes(32)
  const peerId = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  const binding = bytesFromHex(await payoutKey.signTypedData(payoutBindingTypedData(peerId, DOMAIN)))
  const asked: Uint8Array[] = []
  const port: PaymentPort = { address: payoutKey.address, domain: () => DOMAIN, escrow: async () => undefined, acceptVoucher: async () => {}, payoutBinding: p => { asked.push(p); return binding } }
  const peer = new ComputePeer({ secretKey, cpuSlots: 1, memoryMib: 1024, benchmark: false, payoutAddress: payoutKey.address })
  await peer.start()
  const provider = new ComputePeerProvider(peer, undefined, { payment: new PaymentGate(port) })
  try {
    const jobId = randomBytes(16)
    const payment = { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(escrowKeyOf(jobId, payer.address)), payer: bytesFromHex(payer.address) }
    const request = { jobId, requester: peerId, slots: 1, executor: 'wasm', expectedTaskMs: 10, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000, payment }
    const offer = provider.offer(request)
    assert.is(offer.refusal ?? '', '')
    assert.equal(asked[0], peerId, 'bound to this peer')
    assert.ok(checkPayoutBinding(offer.provider!, offer.payoutAddress!, offer.payoutBinding, DOMAIN).ok)
    assert.not.ok(verifyOffer({ ...offer, payoutBinding: new Uint8Array(65) }, Date.now()).ok, 'the binding is signed')
    // a refusal (another chain) carries none
    const elsewhere = provider.offer({ ...request, payment: { ...payment, chainId: 19880818 } })
    assert.ok(elsewhere.refusal !== '' && (elsewhere.payoutBinding ?? new Uint8Array()).length === 0)
  } finally {
    await peer.stop()
  }
})

test.run()
