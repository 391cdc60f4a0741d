// The provider's payment gate (src/jobs/payment-gate.ts) against a chain double: leases need the
// named payer's escrow on this provider's chain, tasks stop when vouchers lag by more than the
// credit, vouchers count only when the on-chain payer signed them for this provider, and escrow
// reads are cached (read again when they would refuse).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { privateKeyToAccount } from 'viem/accounts'
import { PaymentGate, PaymentDeclinedError, PaymentRejectedError, LEASE_SLOT_QUEUE, type PaymentPort, type LeasePayment } from '../../../src/jobs/payment-gate.js'
import { escrowKeyOf, taskPriceUnits, uint256Bytes, type EscrowRead } from '../../../src/core/settlement/credit.js'
import { voucherTypedData, type SignedVoucher, type VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import { WireError } from '../../../src/errors.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { ProviderLedgerStore } from '../../../src/jobs/provider-ledger-store.js'
import { openStore } from '../../../src/store/db.js'

const payer = privateKeyToAccount(`0x${'11'.repeat(32)}`)
const stranger = privateKeyToAccount(`0x${'22'.repeat(32)}`)
const PROVIDER = `0x${'ee'.repeat(20)}` as const
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }
const OFFER = { prices: { priceGpuHour: 1, priceCpuHour: 0.05 }, slot: { gpus: 0, cores: 1 } }
const TIMEOUT = 60_000
const PRICE = taskPriceUnits(OFFER.prices, 0, 1, TIMEOUT)

/** A chain double: escrows by job key, counting reads; vouchers it was handed. */
class FakeChain implements PaymentPort {
  readonly address = PROVIDER
  escrows = new Map<string, EscrowRead>()
  reads = 0
  kept: SignedVoucher[] = []
  signers: Array<{ address: string, domain: VoucherDomain } | undefined> = []
  down = false
  domain (): VoucherDomain { return DOMAIN }
  async escrow (key: string): Promise<EscrowRead | undefined> {
    this.reads++
    if (this.down) throw new Error('connection refused')
    return this.escrows.get(key)
  }

  async redeemed (): Promise<bigint> { return 0n }
  async acceptVoucher (sv: SignedVoucher, opts: { signer?: { address: string, domain: VoucherDomain } } = {}): Promise<void> { this.kept.push(sv); this.signers.push(opts.signer) }
}

let clock = 1_000_000
const setup = (credit?: number): { chain: FakeChain, gate: PaymentGate } => {
  const chain = new FakeChain()
  return { chain, gate: new PaymentGate(chain, { creditTasks: credit, now: () => clock }) }
}
const job = (n: number): Uint8Array => new Uint8Array([7, n])
const HOLDER = new Uint8Array([0, 36, 8, 1, 18, 32, 9, 9])
/** The payer's LeaseAuth for HOLDER on jobs 1..12 (signed once: the lease helper stays synchronous). */
const AUTHS = await Promise.all(Array.from({ length: 12 }, async (_, n) => bytesFromHex(await payer.signTypedData(leaseAuthTypedData(escrowKeyOf(job(n), payer.address), HOLDER, DOMAIN)))))
const lease = (jobId: Uint8Array, o: Partial<dbc.task.v1.IPaymentTerms> = {}, holder = HOLDER): dbc.task.v1.ILease => ({
  jobId,
  holder,
  payment: { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(escrowKeyOf(jobId, payer.address)), payer: bytesFromHex(payer.address), holderAuth: AUTHS[jobId[1]], ...o }
})
const fund = (chain: FakeChain, jobId: Uint8Array, unspent: bigint, who = payer.address, over: Partial<EscrowRead> = {}): void => {
  chain.escrows.set(escrowKeyOf(jobId, payer.address), { payer: who.toLowerCase(), unspent, refunded: false, closedAt: 0, deadline: 0, disputeWindow: 3600, ...over })
}
const receipt = (amount: bigint): dbc.receipt.v1.IUsageReceipt => ({ amount: amount.toString(), wallMs: 1000, cpuMs: 1000, gpuSeconds: 0 })
const PER_SECOND = 5n * 10n ** 16n / 3600n // what one CPU-second costs at 0.05 per hour

async function voucher (jobId: Uint8Array, cumulative: bigint, signer = payer, provider: string = PROVIDER): Promise<dbc.task.v1.IVoucher> {
  const v = { escrowId: escrowKeyOf(jobId, payer.address), provider: provider as `0x${string}`, cumulative, receiptsRoot: `0x${'00'.repeat(32)}` as const, receiptCount: 1 }
  const signature = await signer.signTypedData(voucherTypedData(v, DOMAIN))
  return { escrowId: bytesFromHex(v.escrowId), provider: bytesFromHex(provider), cumulative: uint256Bytes(cumulative), receiptsRoot: new Uint8Array(32), receiptCount: 1, signature: bytesFromHex(signature) }
}

async function refusal (p: Promise<unknown>): Promise<Error> {
  try { await p } catch (err) { return err as Error }
  throw new Error('not refused')
}

test('a lease with no escrow, another chain or malformed terms is refused; a funded one opens', async () => {
  const { chain, gate } = setup()
  const none = await refusal(gate.admitLease(lease(job(1)), OFFER))
  assert.instance(none, PaymentDeclinedError)
  assert.not.instance(none, WireError, 'no escrow yet: not charged')
  assert.is((none as PaymentDeclinedError).code, 'NO_ESCROW')
  assert.match(none.message, /^no escrow for job 0x[0-9a-f]{8}… on chain 31337$/)
  const missing = await refusal(gate.admitLease({ jobId: job(1) }, OFFER))
  assert.is((missing as PaymentDeclinedError).code, 'PAYMENT_MISSING')
  const wrong = await refusal(gate.admitLease(lease(job(1), { chainId: 19850818 }), OFFER))
  assert.is((wrong as PaymentDeclinedError).code, 'PAYMENT_WRONG_CHAIN')
  const forged = await refusal(gate.admitLease(lease(job(1), { chainJobId: new Uint8Array(32) }), OFFER))
  assert.instance(forged, PaymentRejectedError, 'terms for another job\'s escrow: charged')
  assert.instance(forged, WireError)
  fund(chain, job(1), 10n ** 18n, stranger.address)
  clock += 10_000
  const theirs = await refusal(gate.admitLease(lease(job(1)), OFFER))
  assert.is((theirs as PaymentDeclinedError).code, 'ESCROW_PAYER_MISMATCH')
  fund(chain, job(1), 10n ** 18n)
  clock += 10_000
  const lp = await gate.admitLease(lease(job(1)), OFFER)
  assert.is(lp.terms.payer, payer.address.toLowerCase())
  assert.equal(lp.prices, OFFER.prices)
  // the offer-time check: a request on another chain gets a refusal text, one on ours none
  assert.match(gate.offerRefusal({ jobId: job(1), payment: lease(job(1), { chainId: 5 }).payment }) ?? '', /^PAYMENT_WRONG_CHAIN: /)
  assert.is(gate.offerRefusal({ jobId: job(1), payment: lease(job(1)).payment }), undefined)
})

test('a payer that stops signing gets at most the credit of unsigned work, then a voucher lets work go on', async () => {
  const { chain, gate } = setup(1)
  fund(chain, job(2), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(2)), OFFER)
  // each task bills 100 CPU-seconds; the credit is one task's price at its 60 s timeout (60 CPU-seconds)
  const bill = 100n * PER_SECOND
  let ran = 0
  let refused: { code: string, reason: string } | undefined
  for (let i = 0; i < 10; i++) {
    const d = await gate.admitTask(lp, TIMEOUT)
    if (!d.ok) { refused = d; break }
    ran++
    gate.finished(lp, TIMEOUT, { amount: bill.toString(), wallMs: 100_000, cpuMs: 100_000, gpuSeconds: 0 })
  }
  // bounded by the offer: each task counts at most its timeout's price
  assert.is(gate.ledgerOf(escrowKeyOf(job(2), payer.address))?.delivered, BigInt(ran) * PRICE)
  assert.is(ran, 2, 'one task within the credit, one at exactly the credit, then refused')
  assert.is(refused?.code, 'PAYER_BEHIND')
  assert.match(refused?.reason ?? '', /^payer is 0\.001666666666666666 DBC behind on job 0x[0-9a-f]{8}… \(delivered .*, signed 0 DBC, credit 0\.000833333333333333 DBC\): send a voucher$/)
  assert.ok((gate.ledgerOf(escrowKeyOf(job(2), payer.address))?.maxBehind ?? 0n) <= PRICE * 2n, 'unsigned work stayed within the credit plus the task admitted at its edge')
  // a voucher for what was delivered: work goes on
  const held = await gate.acceptVoucher(await voucher(job(2), 2n * PRICE))
  assert.equal(held.cumulative, uint256Bytes(2n * PRICE))
  assert.is(chain.kept.length, 1, 'kept for redemption')
  assert.equal(chain.signers, [{ address: payer.address.toLowerCase(), domain: DOMAIN }], 'the signer recovered once, handed to the book with the domain it was recovered under')
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  assert.is(gate.ledgerOf(escrowKeyOf(job(2), payer.address))?.inflight, 1, 'the admitted task is in flight until it ends')
  gate.finished(lp, TIMEOUT, undefined)
  assert.is(gate.ledgerOf(escrowKeyOf(job(2), payer.address))?.inflight, 0)
  const st = gate.status()
  assert.is(st[0].tasks, 2)
  assert.is(st[0].refusals, 1)
  assert.match(st[0].lastRefusal ?? '', /^PAYER_BEHIND/)
})

test('vouchers: garbage, another provider, a wrong signer are charged; a foreign job is declined for free; a lower total is answered with the held one', async () => {
  const { chain, gate } = setup()
  fund(chain, job(3), 10n ** 18n)
  const code = async (v: dbc.task.v1.IVoucher): Promise<string> => {
    const e = await refusal(gate.acceptVoucher(v))
    assert.instance(e, PaymentRejectedError, `${e.message} is charged`)
    return (e as PaymentRejectedError).code
  }
  assert.is(await code({ escrowId: new Uint8Array(3), signature: new Uint8Array(9) }), 'VOUCHER_MALFORMED')
  assert.is(await code(await voucher(job(3), 10n, payer, `0x${'12'.repeat(20)}`)), 'VOUCHER_WRONG_PROVIDER')
  // a job that never ran here (no ledger row): declined before any chain read, not charged (review L7)
  const readsBefore = chain.reads
  const foreign = await refusal(gate.acceptVoucher(await voucher(job(99), 10n)))
  assert.instance(foreign, PaymentDeclinedError, foreign.message)
  assert.is((foreign as PaymentDeclinedError).code, 'VOUCHER_UNKNOWN_JOB')
  assert.is(chain.reads, readsBefore, 'a foreign job costs no chain read')
  // the job leased here (review s14 F1): its forged and tampered vouchers are charged
  await gate.admitLease(lease(job(3)), OFFER)
  assert.is(await code(await voucher(job(3), 10n, stranger)), 'VOUCHER_BAD_SIGNER')
  const tampered = await voucher(job(3), 10n)
  tampered.cumulative = uint256Bytes(10n ** 18n) // the payer signed 10 wei, not 1 DBC
  assert.is(await code(tampered), 'VOUCHER_BAD_SIGNER')
  assert.is(chain.kept.length, 0)
  // good ones: the higher total is held, a lower or equal one is answered with it (reordering is honest)
  assert.equal((await gate.acceptVoucher(await voucher(job(3), 500n))).cumulative, uint256Bytes(500n))
  const readsAfter = chain.reads
  const lower = await gate.acceptVoucher(await voucher(job(3), 400n))
  assert.equal(lower.cumulative, uint256Bytes(500n))
  assert.is(chain.reads, readsAfter, 'a stale voucher costs no chain read')
  assert.is(chain.kept.length, 1)
  // racing deliveries keep the highest
  await Promise.all([700n, 600n, 900n, 800n].map(async n => await gate.acceptVoucher(await voucher(job(3), n))))
  assert.is(gate.ledgerOf(escrowKeyOf(job(3), payer.address))?.signed, 900n)
})

test('escrow reads are cached, read again when they would refuse (a top-up), and a chain that can not be read refuses without a charge', async () => {
  const { chain, gate } = setup(1000)
  fund(chain, job(4), PRICE * 2n)
  const lp: LeasePayment = await gate.admitLease(lease(job(4)), { ...OFFER, slots: 64 })
  const reads = chain.reads
  for (let i = 0; i < 20; i++) assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  assert.is(chain.reads, reads, 'twenty admissions within the TTL: no new read')
  for (let i = 0; i < 20; i++) gate.finished(lp, TIMEOUT, receipt(PER_SECOND))
  // 20 CPU-seconds delivered, the escrow holds 2 task prices (120 CPU-seconds): fine until work nears it
  for (let i = 0; i < 60; i++) { const d = await gate.admitTask(lp, TIMEOUT); if (!d.ok) break; gate.finished(lp, TIMEOUT, receipt(PER_SECOND)) }
  const short = await gate.admitTask(lp, TIMEOUT)
  assert.ok(!short.ok && short.code === 'ESCROW_TOO_SMALL', JSON.stringify(short))
  assert.match(!short.ok ? short.reason : '', /^escrow of job 0x[0-9a-f]{8}… has 0\.001666666666666666 DBC unspent, less than the /)
  // the payer tops up: the next refusal reads the chain again (not more than once per second)
  fund(chain, job(4), 10n ** 18n)
  clock += 1500
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok, 'a refusal reads again and sees the top-up')
  // the chain goes away: a refused read (cache expired) is CHAIN_UNAVAILABLE, not charged
  chain.down = true
  clock += 60_000
  chain.escrows.clear()
  const down = await refusal(gate.admitTask(lp, TIMEOUT))
  assert.instance(down, PaymentDeclinedError)
  assert.is((down as PaymentDeclinedError).code, 'CHAIN_UNAVAILABLE')
  assert.match(down.message, /cannot read the escrow of job 0x[0-9a-f]{8}… on chain 31337: connection refused/)
})

test('no more tasks at once than the offer\'s slots: a payer can not queue the provider full before paying', async () => {
  const { chain, gate } = setup()
  fund(chain, job(6), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(6)), { ...OFFER, slots: 2 })
  const all = await Promise.all([1, 2, 3, 4].map(async () => await gate.admitTask(lp, TIMEOUT)))
  assert.is(all.filter(d => d.ok).length, 2)
  const busy = all.find(d => !d.ok)
  assert.ok(busy !== undefined && !busy.ok && busy.code === 'LEASE_SLOTS_BUSY')
  gate.finished(lp, TIMEOUT, receipt(PER_SECOND))
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok, 'a slot came free')
})

test('tasks read ahead wait for a slot of their lease (at most LEASE_SLOT_QUEUE), admitted only then', async () => {
  const { chain, gate } = setup()
  fund(chain, job(7), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(7)), { ...OFFER, slots: 1 })
  assert.ok(await gate.slotFree(lp), 'a free slot: no wait, taken for this task')
  assert.is((await gate.admitTask(lp, TIMEOUT)).ok, false, 'a task that did not wait for the slot finds it taken')
  assert.ok((await gate.admitTask(lp, TIMEOUT, { reserved: true })).ok)
  const order: string[] = []
  const ac = new AbortController()
  const a = gate.slotFree(lp).then(ok => { order.push(`a:${String(ok)}`) })
  const b = gate.slotFree(lp, ac.signal).then(ok => { order.push(`b:${String(ok)}`) })
  // the queue's other places, taken by waiters cancelled at the end
  const rest = new AbortController()
  const fillers = Array.from({ length: LEASE_SLOT_QUEUE - 2 }, async () => await gate.slotFree(lp, rest.signal))
  assert.is(await gate.slotFree(lp), false, 'one waiter more than LEASE_SLOT_QUEUE is refused at once (the caller answers LEASE_SLOTS_BUSY)')
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(order, [], 'both wait while the slot runs')
  assert.is(gate.ledgerOf(escrowKeyOf(job(7), payer.address))?.inflight, 1, 'a waiting task is not admitted: the unsigned bound is unchanged')
  gate.finished(lp, TIMEOUT, receipt(PER_SECOND))
  const late = new AbortController()
  const c = gate.slotFree(lp, late.signal)
  await a
  assert.equal(order, ['a:true'], 'the first waiter takes the freed slot, in order')
  assert.ok((await gate.admitTask(lp, TIMEOUT, { reserved: true })).ok)
  ac.abort(new Error('cancelled'))
  await b
  assert.equal(order, ['a:true', 'b:false'], 'a cancelled waiter leaves the queue')
  late.abort(new Error('cancelled'))
  assert.is(await c, false, 'a task arriving as the slot was freed did not take it from the first waiter')
  rest.abort(new Error('cancelled'))
  assert.ok((await Promise.all(fillers)).every(ok => !ok))
  assert.is(lp.waiting?.length ?? 0, 0)
})

test('a waiter handed the slot as its cancel arrives gives the slot back (review s7 M1)', async () => {
  const { chain, gate } = setup()
  fund(chain, job(8), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(8)), { ...OFFER, slots: 1 })
  assert.ok(await gate.slotFree(lp))
  assert.ok((await gate.admitTask(lp, TIMEOUT, { reserved: true })).ok)
  const ac = new AbortController()
  const waiter = gate.slotFree(lp, ac.signal)
  gate.finished(lp, TIMEOUT, receipt(PER_SECOND)) // hands the slot to the waiter at once
  ac.abort(new Error('cancelled')) // the cancel is read before the waiter runs on
  assert.is(await waiter, false, 'a cancelled task is not given the slot')
  assert.is(lp.inflight, 0, 'the slot is free again')
  assert.ok(await gate.slotFree(lp), 'the next task takes it at once')
})

test('closed or refunded escrow stops new tasks', async () => {
  const { chain, gate } = setup()
  fund(chain, job(5), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(5)), OFFER)
  chain.escrows.set(escrowKeyOf(job(5), payer.address), { payer: payer.address.toLowerCase(), unspent: 10n ** 18n, refunded: false, closedAt: 5 })
  clock += 10_000
  const closed = await gate.admitTask(lp, TIMEOUT)
  assert.ok(!closed.ok && closed.code === 'ESCROW_CLOSED')
})

test('a stranger cannot lease against someone else\'s escrow, and the real payer is not blocked (review H1)', async () => {
  const { chain, gate } = setup(1)
  fund(chain, job(7), 10n ** 18n)
  const thief = new Uint8Array([0, 36, 8, 1, 18, 32, 6, 6])
  // the payer's own authorisation names its holder, not the thief
  const replayed = await refusal(gate.admitLease(lease(job(7), {}, thief), OFFER))
  assert.instance(replayed, PaymentRejectedError, 'charged: no honest submitter sends it')
  assert.is((replayed as PaymentRejectedError).code, 'LEASE_NOT_AUTHORISED')
  const none = await refusal(gate.admitLease(lease(job(7), { holderAuth: new Uint8Array() }, thief), OFFER))
  assert.is((none as PaymentRejectedError).code, 'LEASE_NOT_AUTHORISED')
  const own = bytesFromHex(await stranger.signTypedData(leaseAuthTypedData(escrowKeyOf(job(7), payer.address), thief, DOMAIN)))
  const selfSigned = await refusal(gate.admitLease(lease(job(7), { holderAuth: own }, thief), OFFER))
  assert.is((selfSigned as PaymentRejectedError).code, 'LEASE_NOT_AUTHORISED', 'signed by the stranger, not by the on-chain payer')
  // naming itself as the payer of the real escrow: the escrow id binds its payer, so the terms are forged (charged)
  const asPayer = await refusal(gate.admitLease(lease(job(7), { holderAuth: own, payer: bytesFromHex(stranger.address) }, thief), OFFER))
  assert.instance(asPayer, PaymentRejectedError)
  assert.is((asPayer as PaymentRejectedError).code, 'PAYMENT_MALFORMED')
  // its own escrow of the job (review M3: a deposit under the same job id is another escrow): none was made here
  const ownKey = escrowKeyOf(job(7), stranger.address)
  const ownAuth = bytesFromHex(await stranger.signTypedData(leaseAuthTypedData(ownKey, thief, DOMAIN)))
  const ownEscrow = await refusal(gate.admitLease(lease(job(7), { holderAuth: ownAuth, payer: bytesFromHex(stranger.address), chainJobId: bytesFromHex(ownKey) }, thief), OFFER))
  assert.is((ownEscrow as PaymentDeclinedError).code, 'NO_ESCROW')
  assert.is(gate.ledgerOf(escrowKeyOf(job(7), payer.address)), undefined, 'no work was admitted for the stranger')
  // the real payer's holder leases and runs
  const lp = await gate.admitLease(lease(job(7)), OFFER)
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
})

test('work that did not succeed is not delivered, and a lease is judged with one task\'s credit (review H4)', async () => {
  const { chain, gate } = setup(1)
  fund(chain, job(8), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(8)), OFFER, TIMEOUT)
  for (let i = 0; i < 5; i++) { assert.ok((await gate.admitTask(lp, TIMEOUT)).ok, `failed task ${i} admitted`); gate.finished(lp, TIMEOUT, undefined) }
  assert.is(gate.ledgerOf(escrowKeyOf(job(8), payer.address))?.delivered, 0n)
  // some unsigned ok work (half a task's price): a new lease is still admitted (the credit is one task)
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  gate.finished(lp, TIMEOUT, receipt(PRICE / 2n))
  assert.ok(gate.ledgerOf(escrowKeyOf(job(8), payer.address))!.delivered > 0n)
  await gate.admitLease(lease(job(8)), OFFER, TIMEOUT)
})

test('an escrow with a short dispute window or a deadline too near is refused (review M2)', async () => {
  const { chain, gate } = setup(1)
  fund(chain, job(9), 10n ** 18n, payer.address, { disputeWindow: 60 })
  const short = await refusal(gate.admitLease(lease(job(9)), OFFER))
  assert.is((short as PaymentDeclinedError).code, 'ESCROW_WINDOW_SHORT')
  assert.match(short.message, /dispute window of 60 s; this provider needs at least 3600 s/)
  const nowSec = Math.floor(clock / 1000)
  fund(chain, job(10), 10n ** 18n, payer.address, { deadline: nowSec + 90 })
  const lp = await gate.admitLease(lease(job(10)), OFFER)
  assert.ok((await gate.admitTask(lp, 10_000)).ok, 'a 10 s task ends 60 s before the deadline')
  gate.finished(lp, 10_000, undefined)
  const late = await gate.admitTask(lp, TIMEOUT)
  assert.ok(!late.ok && late.code === 'ESCROW_CLOSED', 'a 60 s task could run past the deadline')
})

test('a job the payer owes for is never evicted from the ledger (review M1)', async () => {
  const chain = new FakeChain()
  const gate = new PaymentGate(chain, { creditTasks: 1, now: () => clock, maxJobs: 2 })
  fund(chain, job(11), 10n ** 18n)
  const lp = await gate.admitLease(lease(job(11)), OFFER)
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  const owed = gate.finished(lp, TIMEOUT, receipt(PRICE))
  assert.ok(owed > 0n)
  for (const n of [1, 2, 3, 4]) { fund(chain, job(n), 10n ** 18n); await gate.admitLease(lease(job(n)), OFFER) }
  assert.is(gate.ledgerOf(escrowKeyOf(job(11), payer.address))?.delivered, owed, 'the debt survives throwaway leases')
})

test('a training invitation needs the payer\'s escrow covering the member\'s credit, and the payer\'s authorisation of the coordinator (review H2)', async () => {
  const { chain, gate } = setup(2)
  const jobId = job(9)
  const terms = lease(jobId).payment!
  const ROUND = PRICE // one round at this member's price (the round's deadline = TIMEOUT)
  const admit = async (t: dbc.task.v1.IPaymentTerms | undefined, holder = HOLDER): Promise<string> => {
    const d = await gate.admitInvitation(t, jobId, holder, ROUND, TIMEOUT)
    return d.ok ? 'ok' : `${d.code}/${d.action}`
  }
  assert.is(await admit(undefined), 'PAYMENT_MISSING/ignore')
  assert.is(await admit(terms), 'NO_ESCROW/ignore')
  // the credit is two rounds here: an escrow of one and a half does not cover it
  fund(chain, jobId, ROUND * 3n / 2n)
  clock += 5000
  assert.is(await admit(terms), 'ESCROW_TOO_SMALL/ignore')
  fund(chain, jobId, ROUND * 2n)
  clock += 5000
  assert.is(await admit(terms), 'ok')
  // another coordinator (the payer's LeaseAuth names HOLDER), or no authorisation: charged
  assert.is(await admit(terms, new Uint8Array([0, 36, 8, 1, 18, 32, 6, 6])), 'LEASE_NOT_AUTHORISED/reject')
  assert.is(await admit({ ...terms, holderAuth: new Uint8Array() }), 'LEASE_NOT_AUTHORISED/reject')
  // a stranger naming itself payer of this escrow: forged terms (the escrow id binds the payer)
  assert.is(await admit({ ...terms, payer: bytesFromHex(stranger.address) }), 'PAYMENT_MALFORMED/reject')
  // another chain
  assert.is(await admit({ ...terms, chainId: 19880818 }), 'PAYMENT_WRONG_CHAIN/ignore')
})

test('a provider that restarts keeps its ledger: the payer behind is still behind, and the held voucher comes back', async () => {
  const store = new ProviderLedgerStore(openStore(':memory:'))
  // a task that ran its whole timeout: counted at one task's price (PRICE)
  const FULL = { amount: (100n * PER_SECOND).toString(), wallMs: 100_000, cpuMs: 100_000, gpuSeconds: 0 }
  const chain = new FakeChain()
  const first = new PaymentGate(chain, { creditTasks: 1, now: () => clock, ledger: store })
  fund(chain, job(10), 10n ** 18n)
  fund(chain, job(11), 10n ** 18n)
  const lp = await first.admitLease(lease(job(10)), OFFER)
  for (let i = 0; i < 2; i++) { assert.ok((await first.admitTask(lp, TIMEOUT)).ok); first.finished(lp, TIMEOUT, FULL) }
  assert.is((await first.admitTask(lp, TIMEOUT)).ok, false, 'behind by more than the credit')
  // another job, signed up to date
  const lp11 = await first.admitLease(lease(job(11)), OFFER)
  assert.ok((await first.admitTask(lp11, TIMEOUT)).ok)
  first.finished(lp11, TIMEOUT, FULL)
  await first.acceptVoucher(await voucher(job(11), PRICE))
  // the provider process dies; a new gate on the same store
  const again = new PaymentGate(chain, { creditTasks: 1, now: () => clock, ledger: store })
  assert.equal(again.ledgerOf(escrowKeyOf(job(10), payer.address)), { delivered: 2n * PRICE, signed: 0n, inflight: 0, maxBehind: 2n * PRICE })
  const lease2 = await refusal(again.admitLease(lease(job(10)), OFFER, TIMEOUT))
  assert.is((lease2 as PaymentDeclinedError).code, 'PAYER_BEHIND', 'no fresh credit after the restart')
  assert.is(again.ledgerOf(escrowKeyOf(job(11), payer.address))?.signed, PRICE)
  // a replayed older voucher is answered with the held one, which came back from the store
  const held = await again.acceptVoucher(await voucher(job(11), PRICE / 2n))
  assert.equal(held.cumulative, uint256Bytes(PRICE))
  // the payer catches up: work goes on after the restart
  await again.acceptVoucher(await voucher(job(10), 2n * PRICE))
  const lp2 = await again.admitLease(lease(job(10)), OFFER, TIMEOUT)
  assert.ok((await again.admitTask(lp2, TIMEOUT)).ok)
})

test.run()
