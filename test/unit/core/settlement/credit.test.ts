// The provider's payment decisions (src/core/settlement/credit.ts): payment terms against its
// chain, escrow coverage, the credit rule, one task's price, receipts bounded by the offer, and
// what a voucher is worth before it counts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import {
  checkPaymentTerms, decideAdmission, deliveredUnits, escrowKeyOf, judgeVoucher, parseVoucher, taskPriceUnits, uint256Bytes,
  type EscrowRead, type PaymentChain, type PaymentTermsView
} from '../../../../src/core/settlement/credit.js'
import { bytesFromHex } from '../../../../src/core/settlement/hex.js'

const DBC = 10n ** 18n
const jobId = new Uint8Array([1, 2, 3, 4])
const CONTRACT = `0x${'c'.repeat(40)}` as const
const PAYER = `0x${'a'.repeat(40)}` as const
const KEY = escrowKeyOf(jobId, PAYER)
const SELF: PaymentChain = { chainId: 31337, contract: CONTRACT }
const terms = (o: Record<string, unknown> = {}): Record<string, unknown> => ({ chainId: 31337, contract: bytesFromHex(CONTRACT), chainJobId: bytesFromHex(KEY), payer: bytesFromHex(PAYER), ...o })
const view: PaymentTermsView = { chainId: 31337, contract: CONTRACT, chainJobId: KEY, payer: PAYER }
const escrow = (o: Partial<EscrowRead> = {}): EscrowRead => ({ payer: PAYER, unspent: 10n * DBC, refunded: false, closedAt: 0, deadline: 0, ...o })
const ledger = (delivered = 0n, signed = 0n, redeemed = 0n): { delivered: bigint, signed: bigint, redeemed: bigint } => ({ delivered, signed, redeemed })

test('payment terms: none, another chain or contract (not charged); malformed or another job\'s key (charged)', () => {
  const none = checkPaymentTerms(undefined, jobId, SELF)
  assert.ok(!none.ok && none.code === 'PAYMENT_MISSING' && none.action === 'ignore')
  const other = checkPaymentTerms(terms({ chainId: 19850818 }), jobId, SELF)
  assert.ok(!other.ok && other.code === 'PAYMENT_WRONG_CHAIN' && other.action === 'ignore')
  assert.match(!other.ok ? other.reason : '', /pays on chain 19850818 .*this provider is paid on chain 31337/)
  const otherContract = checkPaymentTerms(terms({ contract: new Uint8Array(20).fill(0xdd) }), jobId, SELF)
  assert.ok(!otherContract.ok && otherContract.code === 'PAYMENT_WRONG_CHAIN')
  for (const bad of [terms({ contract: new Uint8Array(19) }), terms({ payer: new Uint8Array(21) }), terms({ chainJobId: new Uint8Array(31) }), terms({ chainId: 0 }), terms({ payer: new Uint8Array(20) })]) {
    const r = checkPaymentTerms(bad, jobId, SELF)
    assert.ok(!r.ok && r.code === 'PAYMENT_MALFORMED' && r.action === 'reject', JSON.stringify(r))
  }
  const foreign = checkPaymentTerms(terms({ chainJobId: bytesFromHex(escrowKeyOf(new Uint8Array([9]), PAYER)) }), jobId, SELF)
  assert.ok(!foreign.ok && foreign.code === 'PAYMENT_MALFORMED' && /another escrow/.test(foreign.reason))
  // the escrow id binds the payer: naming the real payer's escrow with another payer (or the reverse) is forged
  const STRANGER = `0x${'b'.repeat(40)}` as const
  const swapped = checkPaymentTerms(terms({ payer: bytesFromHex(STRANGER) }), jobId, SELF)
  assert.ok(!swapped.ok && swapped.code === 'PAYMENT_MALFORMED' && swapped.action === 'reject', 'the real escrow id with a stranger as payer')
  const strangers = checkPaymentTerms(terms({ chainJobId: bytesFromHex(escrowKeyOf(jobId, STRANGER)) }), jobId, SELF)
  assert.ok(!strangers.ok && strangers.code === 'PAYMENT_MALFORMED', 'a stranger\'s escrow of the job with the real payer named')
  assert.ok(checkPaymentTerms(terms({ chainJobId: bytesFromHex(escrowKeyOf(jobId, STRANGER)), payer: bytesFromHex(STRANGER) }), jobId, SELF).ok, 'the stranger\'s own escrow is well-formed terms (the escrow read and the lease authorisation decide)')
  const ok = checkPaymentTerms(terms(), jobId, { chainId: 31337, contract: CONTRACT.toUpperCase().replace('0X', '0x') as `0x${string}` })
  assert.ok(ok.ok)
  assert.equal(ok.ok ? ok.terms : undefined, view)
})

test('one task\'s price: the slot\'s hourly price for the whole timeout; a receipt counts at most the offer\'s price', () => {
  const offer = { priceGpuHour: 1, priceCpuHour: 0.05 }
  assert.is(taskPriceUnits(offer, 0, 1, 60_000), 5n * DBC / 100n / 60n)
  assert.is(taskPriceUnits(offer, 2, 4, 3_600_000), 2n * DBC + 4n * 5n * DBC / 100n)
  assert.is(taskPriceUnits(offer, 0, 1, NaN), 0n)
  const honest = { amount: (5n * DBC / 100n / 3600n).toString(), wallMs: 1000, cpuMs: 1000, gpuSeconds: 0 }
  assert.is(deliveredUnits(honest, offer, 0, 1, 60_000), 5n * DBC / 100n / 3600n)
  // billed at 1,000/CPU-hour against an offer of 0.05: counted at 0.05
  const greedy = { amount: (1000n * DBC / 3600n).toString(), wallMs: 1000, cpuMs: 1000, gpuSeconds: 0 }
  assert.is(deliveredUnits(greedy, offer, 0, 1, 60_000), 5n * DBC / 100n / 3600n)
  // metered an hour of CPU for a task that may run a minute: counted for the minute
  const long = { amount: (5n * DBC / 100n).toString(), wallMs: 3_600_000, cpuMs: 3_600_000, gpuSeconds: 0 }
  assert.is(deliveredUnits(long, offer, 0, 1, 60_000), taskPriceUnits(offer, 0, 1, 60_000))
  assert.is(deliveredUnits({ ...honest, amount: 'x' }, offer, 0, 1, 60_000), 0n)
  assert.is(deliveredUnits({ ...honest, amount: '-5' }, offer, 0, 1, 60_000), 0n)
})

test('admission: no escrow, another payer, refunded, closed, past its deadline', () => {
  const base = { terms: view, ledger: ledger(), credit: DBC, nextTask: DBC / 10n, nowSec: 1000 }
  const none = decideAdmission({ ...base, escrow: undefined })
  assert.ok(!none.ok && none.code === 'NO_ESCROW')
  assert.match(!none.ok ? none.reason : '', /^no escrow for job 0x[0-9a-f]{8}… on chain 31337$/)
  const zero = decideAdmission({ ...base, escrow: escrow({ payer: `0x${'0'.repeat(40)}`, unspent: 0n }) })
  assert.ok(!zero.ok && zero.code === 'NO_ESCROW')
  const other = decideAdmission({ ...base, escrow: escrow({ payer: `0x${'b'.repeat(40)}` }) })
  assert.ok(!other.ok && other.code === 'ESCROW_PAYER_MISMATCH')
  const refunded = decideAdmission({ ...base, escrow: escrow({ refunded: true, unspent: 0n }) })
  assert.ok(!refunded.ok && refunded.code === 'ESCROW_REFUNDED')
  const closed = decideAdmission({ ...base, escrow: escrow({ closedAt: 900 }) })
  assert.ok(!closed.ok && closed.code === 'ESCROW_CLOSED')
  const late = decideAdmission({ ...base, escrow: escrow({ deadline: 1000 }) })
  assert.ok(!late.ok && late.code === 'ESCROW_CLOSED')
  assert.ok(decideAdmission({ ...base, escrow: escrow({ deadline: 1001 }) }).ok)
})

test('admission: the credit rule (delivered - signed > credit refuses) and its text', () => {
  const base = { terms: view, escrow: escrow(), credit: DBC / 10n, nextTask: DBC / 10n, nowSec: 0 }
  assert.ok(decideAdmission({ ...base, ledger: ledger(DBC / 10n, 0n) }).ok, 'exactly the credit behind: still admitted')
  const behind = decideAdmission({ ...base, ledger: ledger(DBC / 10n + 1n, 0n) })
  assert.ok(!behind.ok && behind.code === 'PAYER_BEHIND' && behind.action === 'ignore')
  assert.match(!behind.ok ? behind.reason : '', /^payer is 0\.100000000000000001 DBC behind on job 0x/)
  assert.ok(decideAdmission({ ...base, ledger: ledger(DBC, DBC - DBC / 10n) }).ok, 'a voucher brings it back')
  const none = decideAdmission({ ...base, credit: 0n, ledger: ledger(1n, 0n) })
  assert.ok(!none.ok && none.code === 'PAYER_BEHIND', 'credit 0: any unsigned work stops new tasks')
})

test('admission: unspent escrow must cover the unpaid work plus the next task; redemptions count as paid', () => {
  const base = { terms: view, credit: 10n * DBC, nextTask: DBC, nowSec: 0 }
  assert.ok(decideAdmission({ ...base, escrow: escrow({ unspent: 3n * DBC }), ledger: ledger(2n * DBC, 2n * DBC) }).ok)
  const short = decideAdmission({ ...base, escrow: escrow({ unspent: 3n * DBC - 1n }), ledger: ledger(2n * DBC, 2n * DBC) })
  assert.ok(!short.ok && short.code === 'ESCROW_TOO_SMALL')
  assert.match(!short.ok ? short.reason : '', /^escrow of job 0x[0-9a-f]{8}… has 2\.999999999999999999 DBC unspent, less than the 3 DBC owed \(2 DBC unpaid work \+ 1 DBC for the next task\)$/)
  // signed above delivered: the signed total is what is claimed on the escrow
  assert.not.ok(decideAdmission({ ...base, escrow: escrow({ unspent: 3n * DBC }), ledger: ledger(DBC, 5n * DBC) }).ok)
  // 2 of the 2 DBC redeemed already: the escrow only needs the next task
  assert.ok(decideAdmission({ ...base, escrow: escrow({ unspent: DBC }), ledger: ledger(2n * DBC, 2n * DBC, 2n * DBC) }).ok)
  const empty = decideAdmission({ ...base, nextTask: 0n, escrow: escrow({ unspent: 0n }), ledger: ledger() })
  assert.ok(!empty.ok && empty.code === 'ESCROW_TOO_SMALL' && /nothing unspent/.test(empty.reason), 'an empty escrow backs no lease')
})

test('vouchers: shape, this provider, stale totals, the on-chain payer as signer', () => {
  const wire = { escrowId: bytesFromHex(KEY), provider: new Uint8Array(20).fill(0xee), cumulative: uint256Bytes(5n * DBC), receiptsRoot: new Uint8Array(32), receiptCount: 3, signature: new Uint8Array(65).fill(1) }
  const p = parseVoucher(wire)
  assert.ok(p.ok)
  if (!p.ok) return
  assert.is(p.voucher.cumulative, 5n * DBC)
  assert.is(p.voucher.provider, `0x${'ee'.repeat(20)}`)
  for (const bad of [{ escrowId: new Uint8Array(31) }, { provider: new Uint8Array(0) }, { cumulative: new Uint8Array(33) }, { cumulative: new Uint8Array(0) }, { receiptsRoot: new Uint8Array(3) }, { signature: new Uint8Array(64) }]) {
    assert.not.ok(parseVoucher({ ...wire, ...bad }).ok, JSON.stringify(Object.keys(bad)))
  }
  assert.equal(uint256Bytes(0n), new Uint8Array([0]))
  assert.equal(uint256Bytes(258n), new Uint8Array([1, 2]))
  const self = `0x${'EE'.repeat(20)}`
  const j = (o: Partial<Parameters<typeof judgeVoucher>[0]>): ReturnType<typeof judgeVoucher> => judgeVoucher({ voucher: p.voucher, self, signer: PAYER, escrow: escrow(), held: undefined, ...o })
  assert.equal(j({}), { kind: 'accept' })
  assert.equal(j({ held: 4n * DBC }), { kind: 'accept' })
  assert.equal(j({ held: 5n * DBC }), { kind: 'stale' }, 'an equal total is stale')
  assert.equal(j({ held: 6n * DBC }), { kind: 'stale' })
  assert.is((j({ self: `0x${'11'.repeat(20)}` }) as { code?: string }).code, 'VOUCHER_WRONG_PROVIDER')
  assert.is((j({ escrow: undefined }) as { code?: string }).code, 'VOUCHER_NO_ESCROW')
  assert.is((j({ signer: `0x${'b'.repeat(40)}` }) as { code?: string }).code, 'VOUCHER_BAD_SIGNER')
  assert.is((j({ signer: undefined }) as { code?: string }).code, 'VOUCHER_BAD_SIGNER')
})

test.run()
