// The payment gate's `ahead` (a TaskBundle's tasks admitted together, compute-provider.ts): what a
// bundle's tasks may bill past their largest price (their prices, or the price of the bundle's cut
// when less) counts in the credit rule of its next task and of every other task of the job, so
// bundles of one job admitted at once on several slots keep its unsigned work to the credit plus one
// task a slot (review20: each bundle counted only its own, so S bundles took S times the credit; and
// at full price, a bundle of tiny tasks under the default credit of 1 ran 2 tasks together, not 16).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { privateKeyToAccount } from 'viem/accounts'
import { PaymentGate, type PaymentPort } from '../../../src/jobs/payment-gate.js'
import type { BundleAhead } from '../../../src/jobs/payment-gate-types.js'
import { escrowKeyOf, taskPriceUnits, type EscrowRead } from '../../../src/core/settlement/credit.js'
import type { VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

const payer = privateKeyToAccount(`0x${'11'.repeat(32)}`)
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }
const OFFER = { prices: { priceGpuHour: 1, priceCpuHour: 0.05 }, slot: { gpus: 0, cores: 1 } }
const TIMEOUT = 60_000
const PRICE = taskPriceUnits(OFFER.prices, 0, 1, TIMEOUT)
const JOB = new Uint8Array([7, 1])
const HOLDER = new Uint8Array([0, 36, 8, 1, 18, 32, 9, 9])
const KEY = escrowKeyOf(JOB, payer.address)

class FakeChain implements PaymentPort {
  readonly address = `0x${'ee'.repeat(20)}` as const
  escrows = new Map<string, EscrowRead>([[KEY, { payer: payer.address.toLowerCase(), unspent: 10n ** 18n, refunded: false, closedAt: 0, deadline: 0, disputeWindow: 3600 }]])
  domain (): VoucherDomain { return DOMAIN }
  async escrow (key: string): Promise<EscrowRead | undefined> { return this.escrows.get(key) }
  async redeemed (): Promise<bigint> { return 0n }
  async acceptVoucher (): Promise<void> {}
}

async function lease (): Promise<dbc.task.v1.ILease> {
  const auth = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(KEY, HOLDER, DOMAIN)))
  return { jobId: JOB, holder: HOLDER, payment: { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(KEY), payer: bytesFromHex(payer.address), holderAuth: auth } }
}

/** Admits a bundle's tasks in order, as compute-provider's admit does, until the first refusal: how many it took. */
async function admitBundle (gate: PaymentGate, lp: Awaited<ReturnType<PaymentGate['admitLease']>>, ahead: BundleAhead, max = 16): Promise<number> {
  let n = 0
  while (n < max && (await gate.admitTask(lp, TIMEOUT, { bundle: true, ahead })).ok) n++
  return n
}

test('one bundle admits the credit plus its one task; a second bundle of the job on another slot then only its one', async () => {
  const gate = new PaymentGate(new FakeChain(), { creditTasks: 4 })
  const lp = await gate.admitLease(await lease(), { ...OFFER, slots: 2 })
  assert.ok(await gate.slotFree(lp))
  assert.ok(await gate.slotFree(lp), 'two slots: two bundles at once')
  const a: BundleAhead = { open: 0n, top: 0n }
  const b: BundleAhead = { open: 0n, top: 0n }
  assert.is(await admitBundle(gate, lp, a), 5, 'nothing delivered yet: 4 tasks of credit ahead of the fifth')
  assert.is(a.open, 5n * PRICE)
  assert.is(await admitBundle(gate, lp, b), 1, 'the first bundle\'s 4 tasks past its first count here: only this slot\'s one task is admitted')
  // unsigned work at most the credit (4) plus one task a slot (2)
  assert.ok(a.open + b.open <= (4n + 2n) * PRICE, `admitted ${(a.open + b.open) / PRICE} tasks at once`)
  // the first bundle ends (its tasks failed: nothing delivered): the job's count falls back
  for (let k = 0; k < 5; k++) gate.finished(lp, TIMEOUT, undefined, { bundle: true, ahead: a })
  assert.equal(a, { open: 0n, top: 0n })
  gate.bundleDone(lp)
  assert.is(await admitBundle(gate, lp, b), 4, 'the second bundle takes the credit now: its one task ahead and 4 more')
  for (let k = 0; k < 5; k++) gate.finished(lp, TIMEOUT, undefined, { bundle: true, ahead: b })
  gate.bundleDone(lp)
  assert.ok(await gate.slotFree(lp))
  const c: BundleAhead = { open: 0n, top: 0n }
  assert.is(await admitBundle(gate, lp, c), 5, 'nothing left counted once every bundle ended')
})

test('a bundle whose first task ended still counts its others for the job\'s other bundles, one of them as its slot\'s', async () => {
  const gate = new PaymentGate(new FakeChain(), { creditTasks: 2 })
  const lp = await gate.admitLease(await lease(), { ...OFFER, slots: 2 })
  const a: BundleAhead = { open: 0n, top: 0n }
  const b: BundleAhead = { open: 0n, top: 0n }
  assert.is(await admitBundle(gate, lp, a), 3)
  gate.finished(lp, TIMEOUT, undefined, { bundle: true, ahead: a })
  assert.is(a.open, 2n * PRICE, 'two still open: one counted as its slot\'s, one past it')
  assert.is(await admitBundle(gate, lp, b), 2, 'credit 2 less the one past the first bundle\'s slot task: this one and one more')
})

test('with the price of its cut as cap, a bundle of 16 is admitted whole under a credit of 1 task; a payer behind by the credit gets its first only', async () => {
  const gate = new PaymentGate(new FakeChain(), { creditTasks: 1 })
  const lp = await gate.admitLease(await lease(), { ...OFFER, slots: 2 })
  const cap = taskPriceUnits(OFFER.prices, 0, 1, 1000 + 16) // the bundle's cut (1 s) and its rounding
  const a: BundleAhead = { open: 0n, top: 0n, cap }
  const b: BundleAhead = { open: 0n, top: 0n, cap }
  assert.is(await admitBundle(gate, lp, a), 16, 'they bill at most one task\'s price plus the cut\'s')
  assert.is(await admitBundle(gate, lp, b), 16, 'the other slot\'s bundle too: the first\'s cut is within the credit')
  // at most the credit plus one task a slot, however they end
  const worst = (x: BundleAhead): bigint => x.top + (x.open - x.top < cap ? x.open - x.top : cap)
  assert.ok(worst(a) + worst(b) <= PRICE + 2n * PRICE)
  for (let k = 0; k < 16; k++) { gate.finished(lp, TIMEOUT, undefined, { bundle: true, ahead: a }); gate.finished(lp, TIMEOUT, undefined, { bundle: true, ahead: b }) }
  // a payer a whole task behind: a bundle's first runs (as a task alone), nothing with it
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  gate.finished(lp, TIMEOUT, { amount: PRICE.toString(), wallMs: TIMEOUT, cpuMs: TIMEOUT, gpuSeconds: 0 })
  assert.is(gate.ledgerOf(KEY)?.delivered, PRICE)
  const c: BundleAhead = { open: 0n, top: 0n, cap }
  assert.is(await admitBundle(gate, lp, c), 1)
})

test.run()
