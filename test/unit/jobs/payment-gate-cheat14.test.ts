// Review s14 (cheat) F1: a provider keeps a payer's voucher only for a job it worked under. Before,
// any payer that deposited 1 wei into an escrow of its own could send the provider a voucher for
// it and the provider stored it (its voucher book has no bound), and its redeem loop then read the
// chain twice for it on every tick (2 s) for as long as it stayed below one redeem's gas: one
// deposit per voucher bought a permanent share of the provider's redeem loop, which also redeems
// its honest vouchers. Now such a voucher is declined (not kept, not charged); a lease or a
// training round admitted here writes the job's ledger row at once, so a crash does not make an
// honest payer's next voucher look like a stranger's.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { privateKeyToAccount } from 'viem/accounts'
import { PaymentGate, PaymentDeclinedError, type PaymentPort } from '../../../src/jobs/payment-gate.js'
import { escrowKeyOf, taskPriceUnits, uint256Bytes, type EscrowRead } from '../../../src/core/settlement/credit.js'
import { voucherSigner, voucherTypedData, type SignedVoucher, type VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import { WireError } from '../../../src/errors.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { ProviderLedgerStore } from '../../../src/jobs/provider-ledger-store.js'
import { openStore } from '../../../src/store/db.js'

const payer = privateKeyToAccount(`0x${'31'.repeat(32)}`)
const PROVIDER = `0x${'ee'.repeat(20)}` as const
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }
const OFFER = { prices: { priceGpuHour: 1, priceCpuHour: 0.05 }, slot: { gpus: 0, cores: 1 } }
const TIMEOUT = 60_000
const PRICE = taskPriceUnits(OFFER.prices, 0, 1, TIMEOUT)
const HOLDER = new Uint8Array([0, 36, 8, 1, 18, 32, 9, 9])
const job = (n: number): Uint8Array => new Uint8Array([8, n])

class Chain implements PaymentPort {
  readonly address = PROVIDER
  escrows = new Map<string, EscrowRead>()
  kept: SignedVoucher[] = []
  escrowReads = 0
  domain (): VoucherDomain { return DOMAIN }
  async escrow (key: string): Promise<EscrowRead | undefined> { this.escrowReads++; return this.escrows.get(key) }
  async redeemed (): Promise<bigint> { return 0n }
  async acceptVoucher (sv: SignedVoucher): Promise<void> { this.kept.push(sv) }
}

/** The payer's own escrow for job n: what a 1-wei deposit gives it. */
const fund = (chain: Chain, n: number, unspent: bigint): void => {
  chain.escrows.set(escrowKeyOf(job(n), payer.address), { payer: payer.address.toLowerCase(), unspent, refunded: false, closedAt: 0, deadline: 0, disputeWindow: 3600 })
}

async function lease (n: number): Promise<dbc.task.v1.ILease> {
  const escrowId = escrowKeyOf(job(n), payer.address)
  const auth = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(escrowId, HOLDER, DOMAIN)))
  return { jobId: job(n), holder: HOLDER, payment: { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(escrowId), payer: bytesFromHex(payer.address), holderAuth: auth } }
}

async function voucher (n: number, cumulative: bigint): Promise<dbc.task.v1.IVoucher> {
  const v = { escrowId: escrowKeyOf(job(n), payer.address), provider: PROVIDER, cumulative, receiptsRoot: `0x${'00'.repeat(32)}` as const, receiptCount: 1 }
  const signature = await payer.signTypedData(voucherTypedData(v, DOMAIN))
  return { escrowId: bytesFromHex(v.escrowId), provider: bytesFromHex(PROVIDER), cumulative: uint256Bytes(cumulative), receiptsRoot: new Uint8Array(32), receiptCount: 1, signature: bytesFromHex(signature) }
}

async function refusal (p: Promise<unknown>): Promise<Error> {
  try { await p } catch (err) { return err as Error }
  throw new Error('not refused')
}

test('a voucher for an escrow no lease of this provider named is not kept: 1-wei escrows do not fill its book', async () => {
  const chain = new Chain()
  const gate = new PaymentGate(chain, { now: () => 1_000_000 })
  for (let n = 0; n < 20; n++) {
    fund(chain, n, 1n)
    const e = await refusal(gate.acceptVoucher(await voucher(n, 1n)))
    assert.instance(e, PaymentDeclinedError, e.message)
    assert.not.instance(e, WireError, 'not charged')
    assert.is((e as PaymentDeclinedError).code, 'VOUCHER_UNKNOWN_JOB')
  }
  assert.is(chain.kept.length, 0, 'nothing reached the voucher book (the redeem loop reads each voucher there every tick)')
  assert.is(gate.status().length, 0, 'no ledger rows either')
  // the same payer's job that ran here: its voucher is kept
  fund(chain, 30, 10n ** 18n)
  const lp = await gate.admitLease(await lease(30), OFFER, TIMEOUT)
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  gate.finished(lp, TIMEOUT, { amount: PRICE.toString(), wallMs: TIMEOUT, cpuMs: TIMEOUT, gpuSeconds: 0 })
  assert.equal((await gate.acceptVoucher(await voucher(30, PRICE))).cumulative, uint256Bytes(PRICE))
  assert.is(chain.kept.length, 1)
})

test('review L7: a voucher for a job that never ran here is declined before any chain read or signature recovery', async () => {
  const chain = new Chain()
  let recoveries = 0
  const gate = new PaymentGate(chain, { now: () => 1_000_000, recover: async (sv, d) => { recoveries++; return await voucherSigner(sv, d) } })
  for (let n = 0; n < 50; n++) {
    fund(chain, 100 + n, 1n)
    const e = await refusal(gate.acceptVoucher(await voucher(100 + n, 1n)))
    assert.is((e as PaymentDeclinedError).code, 'VOUCHER_UNKNOWN_JOB', e.message)
  }
  assert.is(chain.escrowReads, 0, 'no escrow read for a job without a ledger row (before: 50, one per voucher)')
  assert.is(recoveries, 0, 'no signature recovery either (before: 50)')
  // a job that ran here still pays for its checks: read and recovered once
  fund(chain, 31, 10n ** 18n)
  const lp = await gate.admitLease(await lease(31), OFFER, TIMEOUT)
  const readsAfterLease = chain.escrowReads
  assert.ok((await gate.admitTask(lp, TIMEOUT)).ok)
  gate.finished(lp, TIMEOUT, { amount: PRICE.toString(), wallMs: TIMEOUT, cpuMs: TIMEOUT, gpuSeconds: 0 })
  assert.equal((await gate.acceptVoucher(await voucher(31, PRICE))).cumulative, uint256Bytes(PRICE))
  assert.is(recoveries, 1, 'the known job\'s voucher was recovered')
  assert.ok(chain.escrowReads >= readsAfterLease, 'its escrow was read (or reused from the cache)')
})

test('a lease writes its job\'s row at once: after a crash before any delivery was written, the payer\'s voucher is still kept', async () => {
  const store = new ProviderLedgerStore(openStore(':memory:'))
  const chain = new Chain()
  fund(chain, 40, 10n ** 18n)
  const first = new PaymentGate(chain, { now: () => 1_000_000, ledger: store })
  const lp = await first.admitLease(await lease(40), OFFER, TIMEOUT)
  assert.ok((await first.admitTask(lp, TIMEOUT)).ok)
  // a small delivery waits up to LEDGER_SAVE_MS to be written; the process dies before that
  first.finished(lp, TIMEOUT, { amount: (PRICE / 100n).toString(), wallMs: 600, cpuMs: 600, gpuSeconds: 0 })
  const again = new PaymentGate(chain, { now: () => 1_000_000, ledger: store })
  assert.equal((await again.acceptVoucher(await voucher(40, PRICE / 100n))).cumulative, uint256Bytes(PRICE / 100n))
  assert.is(chain.kept.length, 1, 'the honest payer\'s voucher after the restart is kept')
})

test.run()
