// The submitter's escrow flow against a chain double: budget.total (or the predicted cost) is
// locked once, a job with no budget stops when its escrow is spent unless top-ups were allowed,
// a top-up past the stated budget needs confirmation, and an ended job is closed then refunded
// once the chain's clock passes the dispute window.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { JobPayments } from '../../../src/node/job-payments.js'
import { JobsSubsystem } from '../../../src/node/jobs-subsystem.js'
import { voucherTypedData, type Voucher } from '../../../src/core/settlement/voucher.js'
import { decimalToUnits } from '../../../src/core/compute/pricing.js'
import { validateManifest, type Manifest } from '../../../src/core/scheduler/index.js'
import type { Bridge } from '../../../src/chain/index.js'

const E18 = 10n ** 18n
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }

function fakeBridge () {
  const key = privateKeyToAccount(generatePrivateKey())
  const calls: string[] = []
  const state = { escrow: 0n, paid: 0n, closedAt: 0, refunded: false, now: 1_000_000, window: 3600, reads: 0, noEvent: false, deposits: [] as Array<Record<string, unknown>> }
  const b = {
    account: key.address,
    domain: async () => domain,
    signVoucher: async (v: Voucher) => ({ voucher: v, signature: await key.signTypedData(voucherTypedData(v, domain)) }),
    escrow: async () => { state.reads++; return { escrow: state.escrow, paid: state.paid, refunded: state.refunded, closedAt: state.closedAt, refundableAt: state.closedAt === 0 ? undefined : state.closedAt + state.window } },
    deposit: async (_j: string, amount: bigint, opts: Record<string, unknown> = {}) => { calls.push(`deposit ${amount}`); state.deposits.push(opts); state.escrow += amount; return { txHash: '0x1', escrow: state.noEvent ? 0n : state.escrow } },
    close: async () => { calls.push('close'); state.closedAt = state.now; return { txHash: '0x2' } },
    refund: async () => { calls.push('refund'); state.refunded = true; return { txHash: '0x3', amount: state.escrow - state.paid } },
    jobPayments: async () => ({ escrow: state.escrow }),
    connectionInfo: { publicClient: { getBlock: async () => ({ timestamp: BigInt(state.now) }) } }
  }
  return { bridge: b as unknown as Bridge, calls, state }
}

function manifest (budget: Record<string, number> = {}): Manifest {
  const r = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 9 } }, task: { timeoutMs: 60_000, expectedMs: 10 }, budget })
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return r.manifest
}

test('budget.total plus the providers\' reserve is the escrow, locked once; the payer still pays at most budget.total; terms name the chain, contract, job and payer', async () => {
  const { bridge, calls } = fakeBridge()
  const store = new PaymentStore(openStore(':memory:'))
  const p = new JobPayments({ store, bridge: () => bridge })
  const pay = await p.forJob('ab'.repeat(16), manifest({ total: 2 }))
  assert.ok(pay !== undefined)
  assert.is(Number(pay.terms.chainId), 31337)
  assert.is(Buffer.from(pay.terms.payer!).toString('hex'), bridge.account.slice(2).toLowerCase())
  await pay.ensureEscrow!(0.5, 0.25)
  await pay.ensureEscrow!(0.5, 0.25)
  assert.equal(calls, [`deposit ${2n * E18 + E18 / 4n}`])
  assert.is(store.escrow('ab'.repeat(16))?.reserve, E18 / 4n)
  // the payer's cap is the budget, not the deposit: the reserve is never paid out (refunded at the end)
  const cap = (p as unknown as { cap: (j: string) => bigint | undefined }).cap('ab'.repeat(16))
  assert.is(cap, 2n * E18)
  // even with top-ups allowed, the reserve does not raise the cap
  await p.forJob('ab'.repeat(16), manifest({ total: 2 }), { allowTopUp: true })
  assert.is((p as unknown as { cap: (j: string) => bigint | undefined }).cap('ab'.repeat(16)), 2n * E18)
})

test('a first deposit leaves with no escrow read before it (the job\'s start waits on it), with the node\'s dispute window; an event naming no escrow is read after', async () => {
  const { bridge, calls, state } = fakeBridge()
  const store = new PaymentStore(openStore(':memory:'))
  const p = new JobPayments({ store, bridge: () => bridge, disputeWindowS: 120 })
  const pay = await p.forJob('ef'.repeat(16), manifest({ total: 2 }))
  await pay!.ensureEscrow!(0.5, 0)
  assert.equal(calls, [`deposit ${2n * E18}`])
  assert.is(state.reads, 0, 'no chain read before the deposit')
  assert.is(state.deposits[0].disputeWindow, 120)
  assert.is(store.escrow('ef'.repeat(16))?.deposited, 2n * E18)
  // a deposit whose receipt carried no JobDeposited event: the escrow is read from the chain after it
  state.noEvent = true
  state.escrow = 5n * E18
  const other = await p.forJob('ee'.repeat(16), manifest({ total: 1 }))
  await other!.ensureEscrow!(0.5, 0)
  assert.is(state.reads, 1)
  assert.is(store.escrow('ee'.repeat(16))?.deposited, 6n * E18, 'as the chain holds it after the deposit')
})

test('no budget: twice the predicted cost plus the reserve; spent escrow stops new work unless top-ups are allowed', async () => {
  const { bridge, calls } = fakeBridge()
  const store = new PaymentStore(openStore(':memory:'))
  const p = new JobPayments({ store, bridge: () => bridge })
  const job = 'cd'.repeat(16)
  const pay = await p.forJob(job, manifest())
  await pay!.ensureEscrow!(0.25, 0.5)
  assert.equal(calls, [`deposit ${decimalToUnits(1)}`])
  assert.is(pay!.exhausted!(), undefined)
  // the payer committed all of it (recorded before a restart): no new task may start, with a clear reason
  store.addPayment(job, { receiptKey: 'x', provider: 'p', payout: '0x0000000000000000000000000000000000000001', billed: E18, payable: E18, refused: 0n, limit: 'receipt', at: 1 })
  const restarted = new JobPayments({ store, bridge: () => bridge })
  const resumed = await restarted.forJob(job, manifest())
  assert.match(resumed!.exhausted!() ?? '', /--yes|top/)
  // allowed top-ups: the same job with --yes goes on
  const again = await restarted.forJob(job, manifest(), { allowTopUp: true })
  assert.is(again!.exhausted!(), undefined)
})

test('a top-up past the stated budget is refused without confirmation, done with it', async () => {
  const { bridge, calls } = fakeBridge()
  const jobs = new JobsSubsystem({ bridge: () => bridge })
  const payments = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge })
  jobs.payments = payments
  const job = 'ef'.repeat(16)
  const pay = await payments.forJob(job, manifest({ total: 1 }))
  await pay!.ensureEscrow!(0.1, 0)
  let err: unknown
  try { await jobs.topUp(job, '0.5', false) } catch (e) { err = e }
  assert.is((err as { code?: string }).code, 'TOP_UP_NEEDS_CONFIRMATION')
  assert.match((err as Error).message, /budget\.total/)
  const r = await jobs.topUp(job, '0.5', true)
  assert.is(r.deposited, '1.5')
  assert.equal(calls, [`deposit ${E18}`, `deposit ${E18 / 2n}`])
})

test('an ended job is closed, then refunded once the chain clock passes the dispute window', async () => {
  const { bridge, calls, state } = fakeBridge()
  const p = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge })
  const job = '12'.repeat(16)
  const pay = await p.forJob(job, manifest({ total: 1 }))
  await pay!.ensureEscrow!(0.1, 0)
  await p.finish(job)
  await p.finish(job)
  assert.equal(calls, [`deposit ${E18}`, 'close'])
  assert.equal(await p.refundDue(), [], 'not before the window')
  state.now += state.window
  const done = await p.refundDue()
  assert.is(done.length, 1)
  assert.equal(calls.slice(2), ['refund'])
  assert.equal(await p.refundDue(), [], 'once')
  const v = await p.view(job)
  assert.is(v?.refundTx, '0x3')
  p.stop()
})

test('a top-up of a job whose escrow was closed is refused at once, saying so (the chain would revert JobAlreadyClosed)', async () => {
  const { bridge, calls } = fakeBridge()
  const jobs = new JobsSubsystem({ bridge: () => bridge })
  const payments = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge })
  jobs.payments = payments
  const job = '34'.repeat(16)
  const pay = await payments.forJob(job, manifest({ total: 1 }))
  await pay!.ensureEscrow!(0.1, 0)
  await payments.finish(job)
  let err: unknown
  try { await jobs.topUp(job, '1', true) } catch (e) { err = e }
  assert.is((err as { code?: string }).code, 'JOB_CLOSED')
  assert.match((err as Error).message, /closed on chain .*takes no more deposits/)
  assert.equal(calls, [`deposit ${E18}`, 'close'], 'no deposit sent')
  payments.stop()
})

test('stake check (review F4): on by default, one read per payout address for every job of the node; off by chain.requireStake: false or verification.allowUnstaked', async () => {
  const { bridge } = fakeBridge()
  const reads: string[] = []
  ;(bridge as unknown as { stakeOf: (a: string) => Promise<{ gpus: number, amount: bigint }> }).stakeOf = async (a) => { reads.push(a); return { gpus: a.endsWith('1') ? 1 : 0, amount: 0n } }
  const owner1 = `0x${'0'.repeat(39)}1`
  const owner2 = `0x${'0'.repeat(39)}2`
  const p = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge })
  const a = await p.forJob('a1'.repeat(16), manifest())
  const b = await p.forJob('b1'.repeat(16), manifest())
  assert.ok(a?.stakes !== undefined && b?.stakes !== undefined, 'a paid job checks stake unless told not to')
  const m = await a.stakes([owner1, owner2])
  assert.equal([m.get(owner1)?.gpus, m.get(owner2)?.gpus], [1, 0])
  await b.stakes([owner1])
  assert.equal(reads, [owner1, owner2], 'the second job reuses the first one\'s read')
  const allow = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 9 } }, verification: { allowUnstaked: true } })
  assert.ok(allow.ok)
  assert.is((await p.forJob('c1'.repeat(16), allow.manifest))?.stakes, undefined, 'verification.allowUnstaked')
  const off = new JobPayments({ store: new PaymentStore(openStore(':memory:')), bridge: () => bridge, requireStake: false })
  assert.is((await off.forJob('d1'.repeat(16), manifest()))?.stakes, undefined, 'chain.requireStake: false')
})

test.run()
