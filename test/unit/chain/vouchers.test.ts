// The voucher book, the redeem outbox and the earnings rows, without a chain: totals only go up
// (per contract), the payer's record of what it signed, what survives a reopen of the store, and
// how pending value is explained.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { VoucherBook, checkedVoucher } from '../../../src/chain/vouchers.js'
import { Outbox } from '../../../src/chain/outbox.js'
import { earningsRow, earningsTotals, refundableAt } from '../../../src/chain/earnings.js'
import { earningsLines } from '../../../src/chain/format.js'
import { chainJobIdOf, chainJobKey } from '../../../src/chain/job-id.js'
import type { EscrowView, Hex } from '../../../src/chain/index.js'
import { openStore } from '../../../src/store/db.js'
import { ChainError } from '../../../src/errors.js'
import { acceptVoucherOnChain } from '../../../src/chain/voucher-check.js'
import { privateKeyToAccount } from 'viem/accounts'
import { voucherTypedData } from '../../../src/core/settlement/voucher.js'

const ME = '0x1111111111111111111111111111111111111111' as Hex
const PAYER = '0x2222222222222222222222222222222222222222' as Hex
const JOB = chainJobIdOf('unit-job', PAYER)
const C1 = { chainId: 31337, verifyingContract: '0x3333333333333333333333333333333333333333' as Hex }
const C2 = { chainId: 31337, verifyingContract: '0x4444444444444444444444444444444444444444' as Hex }
const sv = (cumulative: bigint, provider: Hex = ME) => ({ voucher: { escrowId: JOB, provider, cumulative, receiptsRoot: `0x${'aa'.repeat(32)}` as Hex, receiptCount: Number(cumulative) }, signature: `0x${'bb'.repeat(65)}` as Hex })

test('the book keeps the highest total per job and contract, across a reopen; the payer side apart', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-vouchers-'))
  try {
    let store = openStore(join(dir, 'node.sqlite'))
    let book = new VoucherBook(store)
    assert.is(book.accept(sv(5n), { payer: PAYER, domain: C1 }, 1).stored, true)
    assert.is(book.accept(sv(3n), { payer: PAYER, domain: C1 }, 2).stored, false, 'a lower total is not kept')
    assert.is(book.accept(sv(5n), { payer: PAYER, domain: C1 }, 3).stored, false, 'nor the same one again')
    const up = book.accept(sv(7n), { payer: PAYER, domain: C1 }, 4)
    assert.is(up.previous?.voucher.cumulative, 5n)
    // Another contract: its totals start over.
    assert.is(book.accept(sv(1n), { payer: PAYER, domain: C2 }, 5).stored, true)
    book.markError(JOB, ME, 'NotStaked(0x11…)')
    assert.is(book.recordIssued(sv(9n, PAYER), { payer: ME, domain: C2 }, 6).stored, true)
    store.close()
    store = openStore(join(dir, 'node.sqlite'))
    book = new VoucherBook(store)
    new Outbox(store) // both run the same migrations: no step applied twice
    const held = book.latest(JOB, ME)
    assert.equal(held?.voucher.cumulative, 1n)
    assert.equal(held?.domain, { chainId: 31337, verifyingContract: C2.verifyingContract.toLowerCase() })
    assert.is(held?.lastError, 'NotStaked(0x11…)')
    assert.is(book.received().length, 1)
    assert.equal(book.issued({ chainJobId: JOB }).map(v => v.voucher.cumulative), [9n])
    assert.is(book.latestIssued(JOB, PAYER)?.payer, ME)
    store.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('a voucher checked on chain: its signer recovered here, or the one the payment gate recovered under this chain\'s domain (never trusted against the chain\'s payer)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-vcheck-'))
  const store = openStore(join(dir, 'db.sqlite'))
  try {
    const payer = privateKeyToAccount(`0x${'44'.repeat(32)}`)
    const job = chainJobIdOf('check-job', payer.address as Hex)
    const deps = { account: ME, book: new VoucherBook(store), now: () => 1000, domain: async () => C1, payerOf: async () => payer.address.toLowerCase() as Hex }
    const signed = async (cumulative: bigint, domain = C1) => { const voucher = { escrowId: job, provider: ME, cumulative, receiptsRoot: `0x${'aa'.repeat(32)}` as Hex, receiptCount: 1 }; return { voucher, signature: await payer.signTypedData(voucherTypedData(voucher, domain)) } }
    assert.ok((await acceptVoucherOnChain(deps, await signed(5n))).ok, 'recovered here')
    assert.ok((await acceptVoucherOnChain(deps, await signed(6n), { signer: { address: payer.address, domain: C1 } })).ok, 'the given signer (any case) is the payer')
    const wrong = await acceptVoucherOnChain(deps, await signed(7n), { signer: { address: PAYER, domain: C1 } })
    assert.ok(!wrong.ok && wrong.code === 'WRONG_PAYER', 'a given signer that is not the payer on chain is refused')
    // a gate whose cached chain settings are another contract's: the payer's signature for C2 is
    // not one for this chain's contract (C1), so the book recovers the signer again and refuses it
    const stale = await acceptVoucherOnChain(deps, await signed(8n, C2), { signer: { address: payer.address, domain: C2 } })
    assert.ok(!stale.ok && stale.code === 'WRONG_PAYER', `a signer recovered under another domain is recovered again here: ${JSON.stringify(stale)}`)
    assert.is(deps.book.latest(job, ME)?.voucher.cumulative, 6n)
  } finally {
    store.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

test('the redeem outbox: written down before the broadcast, then confirmed or dropped', () => {
  const store = openStore(':memory:')
  const outbox = new Outbox(store)
  const id = outbox.recordSent([{ chainJobId: JOB, provider: ME, cumulative: 7n }], { hash: `0x${'cc'.repeat(32)}`, raw: '0x02f8', nonce: 3 }, 10)
  assert.equal(outbox.inFlight().map(e => [e.id, e.state, e.nonce, e.rawTx]), [[id, 'sent', 3, '0x02f8']])
  outbox.markConfirmed(id, { blockNumber: 9, gasUsed: 50_000n, paid: [{ chainJobId: JOB, amount: 7n, cumulative: 7n }] }, 11)
  const id2 = outbox.recordSent([{ chainJobId: chainJobIdOf('other', PAYER), provider: ME, cumulative: 1n }], { hash: `0x${'dd'.repeat(32)}`, raw: '0x02f9', nonce: 4 }, 12)
  outbox.markDropped(id2, 'nonce taken by another transaction', 13)
  assert.equal(outbox.counts(), { sent: 0, confirmed: 1, dropped: 1 })
  assert.equal(outbox.recent(10, JOB).map(e => [e.id, e.paid]), [[id, [{ chainJobId: JOB, amount: 7n, cumulative: 7n }]]])
  assert.is(outbox.get(id)?.rawTx, undefined, 'a confirmed tx is not kept')
  store.close()
})

test('voucher fields and chain job ids are checked; refund time; earnings rows explain pending value', () => {
  assert.throws(() => checkedVoucher({ ...sv(1n).voucher, escrowId: '0x12' }), (e: unknown) => e instanceof ChainError && e.code === 'BAD_VOUCHER')
  assert.throws(() => checkedVoucher({ ...sv(1n).voucher, cumulative: -1n }), /cumulative/)
  assert.throws(() => checkedVoucher({ ...sv(1n).voucher, receiptCount: 2 ** 32 }), /receipt count/)
  assert.is(checkedVoucher({ ...sv(1n).voucher, provider: ME.toUpperCase().replace('0X', '0x') as Hex }).provider, ME)
  assert.throws(() => chainJobKey('0xabc' as Hex), (e: unknown) => e instanceof ChainError && e.code === 'BAD_JOB_ID')
  assert.is(chainJobKey(new Uint8Array(32).fill(0xab)), `0x${'ab'.repeat(32)}`)
  assert.is(refundableAt(1000, 0, 60), 1060)
  assert.is(refundableAt(1000, 500, 60), 560)
  assert.is(refundableAt(0, 0, 60), undefined)
  const esc = (over: Partial<EscrowView>): EscrowView => ({ chainJobId: JOB, payer: PAYER, escrow: 10n, paid: 0n, unspent: 10n, deadline: 1000, closedAt: 0, disputeWindow: 60, refunded: false, ...over })
  const stored = { ...sv(7n), payer: PAYER, domain: C1, at: 1, lastError: 'the job\'s escrow is used up; waiting for the payer to top it up' }
  const short = earningsRow(stored, 4n, esc({ unspent: 0n }))
  assert.equal([short.signed, short.redeemed, short.pending], [7n, 4n, 3n])
  assert.match(short.note ?? '', /top it up/)
  assert.match(earningsRow(stored, 4n, esc({ refunded: true, unspent: 0n })).note ?? '', /refunded .* lost/)
  const paid = earningsRow(stored, 7n, esc({}))
  assert.equal([paid.pending, paid.note], [0n, undefined])
  assert.equal(earningsTotals([short, paid]), { signed: 14n, redeemed: 11n, pending: 3n })
  const lines = earningsLines({ account: ME, chainId: 31337, jobs: [short], totals: earningsTotals([short]), inFlight: 0, balance: 10n ** 18n, stake: { gpus: 0, amount: 0n } }).join('\n')
  assert.match(lines, /top it up/)
  assert.match(lines, /must stake to redeem/)
})

test.run()
