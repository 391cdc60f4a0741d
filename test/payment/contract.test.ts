// Settlement v4 against anvil: escrow, dispute window, payer-signed cumulative vouchers redeemed
// by the provider alone, stake. Every rule of contracts/README.md is checked here, including the
// attacks of issue 13 (refund early, credit someone else, pay twice, replay, forged voucher).
// Vouchers are signed with viem signTypedData over voucher.ts's typed data, so the TS and
// Solidity EIP-712 encodings are proven to agree.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { getContractAddress, keccak256, parseEventLogs, toHex, type Address, type Hex } from 'viem'
import { settlementAbi, settlementBytecode } from '../../src/chain/index.js'
import { escrowIdOfHash, stakeForGpu, stakeRequired } from '../../src/core/settlement/index.js'
import { voucherDigest, type Voucher } from '../../src/core/settlement/voucher.js'
import {
  CREATE2_DEPLOYER, E18, TEST_SALT, deploySettlement, redeemArgs, revertOf, signVoucher, simulateRevert, startChainFixture,
  type ChainFixture, type Wallet
} from './chain-fixture.js'

const h32 = (n: number): Hex => `0x${n.toString(16).padStart(64, '0')}`
const ROOT = h32(0x1234)
const HOUR = 3600n
const WINDOW = 600

let f: ChainFixture
let payer: Wallet
let provider: Wallet
let provider2: Wallet
let stranger: Wallet
let jobSeq = 0

type JobTuple = readonly [Address, bigint, bigint, bigint, bigint, number, boolean]
const jobOf = async (jobId: Hex): Promise<{ payer: Address, escrow: bigint, paid: bigint, deadline: bigint, closedAt: bigint, disputeWindow: number, refunded: boolean }> => {
  const [p, escrow, paid, deadline, closedAt, disputeWindow, refunded] = await f.read<JobTuple>('jobs', [jobId])
  return { payer: p, escrow, paid, deadline, closedAt, disputeWindow, refunded }
}
const v = (jobId: Hex, to: Wallet, cumulative: bigint, receiptCount = 10): Voucher => ({ escrowId: jobId, provider: to.account.address, cumulative, receiptsRoot: ROOT, receiptCount })
const balance = async (w: Wallet): Promise<bigint> => await f.publicClient.getBalance({ address: w.account.address })

/** The job hash each escrow id was deposited under (top-ups name the job hash, not the escrow id). */
const hashOf = new Map<Hex, Hex>()
const escrowOf = (by: Wallet, jobId: Hex): Hex => escrowIdOfHash(by.account.address, jobId)

/** A new job funded by `by` with `coins` DBC, deadline in an hour, the test dispute window; returns its escrow id. */
async function newJob (coins: bigint, by: Wallet = payer): Promise<Hex> {
  const jobId = keccak256(toHex(`job-${++jobSeq}`))
  await f.send(by, 'deposit', [jobId, (await f.now()) + HOUR, WINDOW], coins * E18)
  const id = escrowOf(by, jobId)
  hashOf.set(id, jobId)
  return id
}

/** Redeems as `w`; returns what its balance gained net of gas, and the Redeemed events. */
async function redeem (w: Wallet, svs: Awaited<ReturnType<typeof signVoucher>>[]): Promise<{ gained: bigint, events: Array<{ escrowId: Hex, provider: Address, amount: bigint, cumulative: bigint }>, gasUsed: bigint }> {
  const before = await balance(w)
  const r = await f.send(w, 'redeem', redeemArgs(svs))
  const after = await balance(w)
  const events = parseEventLogs({ abi: settlementAbi, logs: r.logs, eventName: 'Redeemed' }).map(e => e.args)
  return { gained: after - before + r.gasUsed * r.effectiveGasPrice, events, gasUsed: r.gasUsed }
}

test('setup: anvil, CREATE2 deploy at the predicted address, a second deploy is a no-op', async () => {
  f = await startChainFixture()
  const predicted = getContractAddress({ opcode: 'CREATE2', from: CREATE2_DEPLOYER, salt: TEST_SALT, bytecode: settlementBytecode })
  assert.is(f.contract.toLowerCase(), predicted.toLowerCase())
  // The deployer reverts on a taken address; deploySettlement sees the code and returns it.
  assert.is((await deploySettlement(f.publicClient, f.wallet(1), TEST_SALT)).toLowerCase(), predicted.toLowerCase())
  payer = f.wallet(0)
  provider = f.wallet(1)
  provider2 = f.wallet(2)
  stranger = f.wallet(3)
  for (const p of [provider, provider2]) await f.send(p, 'stake', [p.account.address, 1], await f.read<bigint>('stakeRequired', [1]))
})

test('EIP-712: the contract digest equals voucher.ts voucherDigest', async () => {
  const vo = v(h32(7), provider, 123n * E18, 42)
  const onChain = await f.read<Hex>('voucherDigest', [{ ...vo }])
  assert.is(onChain, voucherDigest(vo, f.domain))
})

test('stake: per-GPU formula, network count, overpay returned, unstake', async () => {
  for (const g of [1n, 10_000n, 10_001n, 20_000n, 31_337n]) assert.is(await f.read<bigint>('stakeForGpu', [g]), stakeForGpu(g), `GPU ${g}`)
  const total = await f.read<bigint>('totalGpus')
  assert.is(total, 2n)
  assert.is(await f.read<bigint>('stakeRequired', [3]), stakeRequired(2, 3))
  const w = await f.freshWallet(1_000_000n)
  const before = await balance(w)
  const r = await f.send(w, 'stake', [w.account.address, 2], 300_000n * E18)
  assert.is(before - (await balance(w)) - r.gasUsed * r.effectiveGasPrice, 200_000n * E18, 'the excess comes back')
  assert.ok(await f.read<boolean>('isStaked', [w.account.address]))
  assert.is((await simulateRevert(f, w, 'stake', [w.account.address, 1], 1n)).name, 'StakeTooLow')
  assert.is((await simulateRevert(f, w, 'stake', [w.account.address, 0], 0n)).name, 'InvalidGpuCount')
  await f.send(w, 'unstake', [])
  assert.not.ok(await f.read<boolean>('isStaked', [w.account.address]))
  assert.is(await f.read<bigint>('totalGpus'), 2n)
  assert.is((await simulateRevert(f, w, 'unstake', [])).name, 'NotStaked')
})

test('deposit: payer set, dispute window bounds, future deadline, top-ups payer-only, deadline only extends', async () => {
  const now = await f.now()
  const hash = keccak256(toHex('deposit-rules'))
  const id = escrowOf(payer, hash)
  assert.is(await f.read<Hex>('escrowIdOf', [payer.account.address, hash]), id, 'escrowIdOf on chain = the TS one')
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now + HOUR, 59], E18)).name, 'InvalidDisputeWindow')
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now + HOUR, 30 * 86400 + 1], E18)).name, 'InvalidDisputeWindow')
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now + HOUR, 30 * 86400], E18)).name, 'did not revert')
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now + HOUR, 60], E18)).name, 'did not revert')
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now - 1n, 60], E18)).name, 'DeadlinePassed')
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now + HOUR, 60], 0n)).name, 'ZeroAmount')
  await f.send(payer, 'deposit', [hash, now + HOUR, 120], 5n * E18)
  let j = await jobOf(id)
  assert.is(j.payer.toLowerCase(), payer.account.address.toLowerCase())
  assert.equal([j.escrow, j.paid, j.deadline, j.disputeWindow, j.refunded], [5n * E18, 0n, now + HOUR, 120, false])
  // Someone else's deposit under the same job id is its own escrow: the payer's is untouched.
  await f.send(stranger, 'deposit', [hash, now + 2n * HOUR, 60], 1n)
  assert.equal([(await jobOf(id)).escrow, (await jobOf(escrowOf(stranger, hash))).escrow], [5n * E18, 1n])
  // Top-up: a shorter deadline is ignored, a longer one extends; the window stays.
  await f.send(payer, 'deposit', [hash, now + 10n, 60], E18)
  await f.send(payer, 'deposit', [hash, now + 3n * HOUR, 30 * 86400], E18)
  j = await jobOf(id)
  assert.equal([j.escrow, j.deadline, j.disputeWindow], [7n * E18, now + 3n * HOUR, 120])
  assert.is(await f.read<bigint>('unspent', [id]), 7n * E18)
  await f.send(payer, 'close', [id])
  await f.send(payer, 'close', [id]) // idempotent
  assert.is((await simulateRevert(f, payer, 'deposit', [hash, now + 4n * HOUR, 60], E18)).name, 'JobAlreadyClosed')
  assert.is((await simulateRevert(f, stranger, 'close', [id])).name, 'NotPayer')
  assert.is((await jobOf(escrowOf(stranger, hash))).closedAt, 0n, 'the stranger\'s escrow is not closed by the payer\'s close')
  assert.is((await simulateRevert(f, payer, 'close', [h32(0xdead)])).name, 'UnknownJob')
})

test('redeem: the provider gets the signed cumulative from that job escrow, one transfer, one event', async () => {
  const job = await newJob(10n)
  const other = await newJob(10n)
  const sv = await signVoucher(payer, v(job, provider, 3n * E18, 30), f.domain)
  const res = await redeem(provider, [sv])
  assert.is(res.gained, 3n * E18)
  assert.equal(res.events.map(e => [e.escrowId, e.amount, e.cumulative]), [[job, 3n * E18, 3n * E18]])
  assert.is(await f.read<bigint>('redeemed', [job, provider.account.address]), 3n * E18)
  assert.is((await jobOf(job)).paid, 3n * E18)
  assert.is(await f.read<bigint>('unspent', [job]), 7n * E18)
  assert.is(await f.read<bigint>('unspent', [other]), 10n * E18, 'another job escrow is untouched')
  // A larger voucher pays only the difference.
  const sv2 = await signVoucher(payer, v(job, provider, 5n * E18, 50), f.domain)
  assert.is((await redeem(provider, [sv2])).gained, 2n * E18)
})

test('attack: the same voucher twice (two txs, or twice in one batch) pays once', async () => {
  const job = await newJob(10n)
  const sv = await signVoucher(payer, v(job, provider, 4n * E18), f.domain)
  assert.is((await redeem(provider, [sv, sv])).gained, 4n * E18)
  const again = await redeem(provider, [sv])
  assert.is(again.gained, 0n)
  assert.is(again.events.length, 0)
  assert.is((await jobOf(job)).paid, 4n * E18)
})

test('attack: an older voucher after a newer one pays nothing', async () => {
  const job = await newJob(10n)
  const old = await signVoucher(payer, v(job, provider, 1n * E18, 1), f.domain)
  const newer = await signVoucher(payer, v(job, provider, 2n * E18, 2), f.domain)
  assert.is((await redeem(provider, [newer])).gained, 2n * E18)
  assert.is((await redeem(provider, [old])).gained, 0n)
  // Reordered inside one batch: still only the highest total.
  const job2 = await newJob(10n)
  const a = await signVoucher(payer, v(job2, provider, 1n * E18), f.domain)
  const b = await signVoucher(payer, v(job2, provider, 3n * E18), f.domain)
  assert.is((await redeem(provider, [b, a])).gained, 3n * E18)
})

test('attack: only the payee can redeem; the payer can not credit anyone else', async () => {
  const job = await newJob(10n)
  const sv = await signVoucher(payer, v(job, provider, E18), f.domain)
  // Unstaked callers stop at NotStaked; staked ones that are not the payee at NotPayee.
  assert.is((await simulateRevert(f, payer, 'redeem', redeemArgs([sv]))).name, 'NotStaked')
  const staked = await f.freshWallet()
  await f.send(staked, 'stake', [staked.account.address, 1], await f.read<bigint>('stakeRequired', [1]))
  await f.send(payer, 'stake', [payer.account.address, 1], await f.read<bigint>('stakeRequired', [1]))
  for (const w of [staked, payer, provider2]) {
    const r = await simulateRevert(f, w, 'redeem', redeemArgs([sv]))
    assert.is(r.name, 'NotPayee', `submitted by ${w.account.address}`)
    assert.is((r.args[2] as string).toLowerCase(), w.account.address.toLowerCase())
  }
  // A voucher naming provider2, slipped into provider's batch, reverts the whole batch.
  const forOther = await signVoucher(payer, v(job, provider2, E18), f.domain)
  assert.is((await simulateRevert(f, provider, 'redeem', redeemArgs([sv, forOther]))).name, 'NotPayee')
  assert.is(await f.read<bigint>('unspent', [job]), 10n * E18)
})

test('attack: a voucher not signed by the payer reverts (provider-signed, stranger-signed)', async () => {
  const job = await newJob(10n)
  for (const signer of [provider, stranger]) {
    const forged = await signVoucher(signer, v(job, provider, E18), f.domain)
    const r = await simulateRevert(f, provider, 'redeem', redeemArgs([forged]))
    assert.is(r.name, 'NotSignedByPayer')
    assert.is((r.args[2] as string).toLowerCase(), signer.account.address.toLowerCase())
  }
  // Payer of another job: its signature does not count for this one.
  const otherPayer = await f.freshWallet()
  const forged = await signVoucher(otherPayer, v(job, provider, E18), f.domain)
  assert.is((await simulateRevert(f, provider, 'redeem', redeemArgs([forged]))).name, 'NotSignedByPayer')
  assert.is((await simulateRevert(f, provider, 'redeem', redeemArgs([await signVoucher(payer, v(h32(0xdead), provider, E18), f.domain)]))).name, 'UnknownJob')
})

test('attack: a voucher for another job, chain or contract (wrong domain or fields) reverts', async () => {
  const job = await newJob(10n)
  const job2 = await newJob(10n)
  const good = await signVoucher(payer, v(job, provider, E18), f.domain)
  const cases: Array<[string, Awaited<ReturnType<typeof signVoucher>>]> = [
    ['other chain id', await signVoucher(payer, v(job, provider, E18), { ...f.domain, chainId: 19850818 })],
    ['other contract', await signVoucher(payer, v(job, provider, E18), { ...f.domain, verifyingContract: '0x00000000000000000000000000000000000000aa' })],
    // Signed for job, presented as job2 (same payer): the digest differs, so the signer does.
    ['moved to another job', { voucher: { ...good.voucher, escrowId: job2 }, signature: good.signature }],
    ['amount raised', { voucher: { ...good.voucher, cumulative: 2n * E18 }, signature: good.signature }],
    ['receipt count changed', { voucher: { ...good.voucher, receiptCount: 11 }, signature: good.signature }]
  ]
  for (const [what, sv] of cases) assert.is((await simulateRevert(f, provider, 'redeem', redeemArgs([sv]))).name, 'NotSignedByPayer', what)
  assert.is((await redeem(provider, [good])).gained, E18)
})

test('malformed signatures revert: high-s twin, bad v, wrong length; length mismatch', async () => {
  const job = await newJob(10n)
  const sv = await signVoucher(payer, v(job, provider, E18), f.domain)
  const sig = sv.signature.slice(2)
  const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n
  const s = BigInt('0x' + sig.slice(64, 128))
  const vByte = parseInt(sig.slice(128, 130), 16)
  assert.ok(vByte === 27 || vByte === 28, `viem signs with v = 27/28 (got ${vByte})`)
  const twin = `0x${sig.slice(0, 64)}${(N - s).toString(16).padStart(64, '0')}${(vByte === 27 ? 28 : 27).toString(16)}` as Hex
  const badV = `0x${sig.slice(0, 128)}${(vByte - 27).toString(16).padStart(2, '0')}` as Hex
  for (const [what, signature] of [['high s', twin], ['v 0/1', badV], ['64 bytes', `0x${sig.slice(0, 128)}`], ['empty', '0x']] as Array<[string, Hex]>) {
    assert.is((await simulateRevert(f, provider, 'redeem', redeemArgs([{ voucher: sv.voucher, signature }]))).name, 'MalformedSignature', what)
  }
  assert.is((await simulateRevert(f, provider, 'redeem', [[redeemArgs([sv])[0][0]], []])).name, 'LengthMismatch')
})

test('an unstaked provider can not redeem', async () => {
  const job = await newJob(10n)
  const w = await f.freshWallet()
  const sv = await signVoucher(payer, v(job, w, E18), f.domain)
  assert.is((await simulateRevert(f, w, 'redeem', redeemArgs([sv]))).name, 'NotStaked')
})

test('escrow short: partial pay, the rest after a top-up; never more than the job escrow', async () => {
  const job = await newJob(5n)
  const a = await signVoucher(payer, v(job, provider, 4n * E18), f.domain)
  const b = await signVoucher(payer, v(job, provider2, 4n * E18), f.domain)
  assert.is((await redeem(provider, [a])).gained, 4n * E18)
  const part = await redeem(provider2, [b])
  assert.is(part.gained, 1n * E18, 'only what is left in escrow')
  assert.equal(part.events.map(e => [e.amount, e.cumulative]), [[E18, E18]])
  assert.is(await f.read<bigint>('redeemed', [job, provider2.account.address]), E18)
  assert.is(await f.read<bigint>('unspent', [job]), 0n)
  assert.is((await redeem(provider2, [b])).gained, 0n, 'empty escrow pays nothing (no revert)')
  await f.send(payer, 'deposit', [hashOf.get(job)!, 0n, 0], 10n * E18)
  assert.is((await redeem(provider2, [b])).gained, 3n * E18, 'the rest after the top-up')
  assert.is((await redeem(provider2, [b])).gained, 0n)
  const j = await jobOf(job)
  assert.equal([j.escrow, j.paid], [15n * E18, 8n * E18])
})

test('attack: refund before the dispute window reverts; after it the payer gets escrow - paid; then vouchers pay nothing', async () => {
  const job = await newJob(10n) // deadline now + 1 h, window 600 s
  const sv = await signVoucher(payer, v(job, provider, 3n * E18), f.domain)
  assert.is((await redeem(provider, [sv])).gained, 3n * E18)
  const later = await signVoucher(payer, v(job, provider, 5n * E18), f.domain)
  const j = await jobOf(job)
  let r = await simulateRevert(f, payer, 'refund', [job])
  assert.is(r.name, 'DisputeWindowOpen')
  assert.is(r.args[1], j.deadline + BigInt(WINDOW))
  assert.is(await f.read<bigint>('refundableAt', [job]), j.deadline + BigInt(WINDOW))
  await f.increaseTime(3600) // past the deadline, inside the window: the provider can still redeem
  assert.is((await simulateRevert(f, payer, 'refund', [job])).name, 'DisputeWindowOpen')
  assert.is((await simulateRevert(f, stranger, 'refund', [job])).name, 'NotPayer')
  await f.increaseTime(WINDOW + 5)
  const before = await balance(payer)
  const rr = await f.send(payer, 'refund', [job])
  assert.is(await balance(payer) - before + rr.gasUsed * rr.effectiveGasPrice, 7n * E18)
  assert.is(parseEventLogs({ abi: settlementAbi, logs: rr.logs, eventName: 'EscrowRefunded' })[0].args.amount, 7n * E18)
  assert.ok((await jobOf(job)).refunded)
  assert.is(await f.read<bigint>('unspent', [job]), 0n)
  // The signed-but-unredeemed voucher now pays nothing; refund and deposit are closed.
  const late = await redeem(provider, [later])
  assert.is(late.gained, 0n)
  assert.is(late.events.length, 0)
  assert.is((await simulateRevert(f, payer, 'refund', [job])).name, 'JobAlreadyRefunded')
  assert.is((await simulateRevert(f, payer, 'deposit', [hashOf.get(job)!, (await f.now()) + HOUR, 60], E18)).name, 'JobAlreadyRefunded')
  // Forgeries still revert on a refunded job: a bad voucher never passes silently.
  r = await simulateRevert(f, provider, 'redeem', redeemArgs([await signVoucher(stranger, v(job, provider, 9n * E18), f.domain)]))
  assert.is(r.name, 'NotSignedByPayer')
})

test('close starts the refund clock early: refundable at closedAt + window, not before', async () => {
  const job = await newJob(10n)
  await f.send(payer, 'close', [job])
  const j = await jobOf(job)
  assert.ok(j.closedAt > 0n)
  assert.is(await f.read<bigint>('refundableAt', [job]), j.closedAt + BigInt(WINDOW))
  assert.is((await simulateRevert(f, payer, 'refund', [job])).name, 'DisputeWindowOpen')
  // Closed but inside the window: the provider still redeems.
  assert.is((await redeem(provider, [await signVoucher(payer, v(job, provider, E18), f.domain)])).gained, E18)
  await f.increaseTime(WINDOW + 5)
  const before = await balance(payer)
  const rr = await f.send(payer, 'refund', [job])
  assert.is(await balance(payer) - before + rr.gasUsed * rr.effectiveGasPrice, 9n * E18)
})

test('one redeem tx over several jobs pays the sum in one transfer', async () => {
  const j1 = await newJob(10n)
  const p2 = await f.freshWallet()
  const j2 = await newJob(10n, p2)
  const res = await redeem(provider, [await signVoucher(payer, v(j1, provider, 2n * E18), f.domain), await signVoucher(p2, v(j2, provider, 3n * E18), f.domain)])
  assert.is(res.gained, 5n * E18)
  assert.equal(res.events.map(e => e.escrowId), [j1, j2])
  assert.is(await f.read<bigint>('unspent', [j2]), 7n * E18)
})

test('attack (review M3): a stranger front-runs the deposit under the job id with 1 wei; the payer\'s escrow, its providers\' redeems and its refund still work and touch only the real escrow', async () => {
  const hash = keccak256(toHex('front-run-me'))
  const now = await f.now()
  // the stranger saw the payer's deposit in the mempool and got in first
  await f.send(stranger, 'deposit', [hash, now + HOUR, 60], 1n)
  await f.send(payer, 'deposit', [hash, now + HOUR, WINDOW], 10n * E18)
  const real = escrowOf(payer, hash)
  const fake = escrowOf(stranger, hash)
  assert.ok(real !== fake)
  const [r0, k0] = [await jobOf(real), await jobOf(fake)]
  assert.equal([r0.payer.toLowerCase(), r0.escrow], [payer.account.address.toLowerCase(), 10n * E18])
  assert.equal([k0.payer.toLowerCase(), k0.escrow], [stranger.account.address.toLowerCase(), 1n])
  // the job's providers redeem the payer's vouchers: paid from the real escrow only
  const a = await signVoucher(payer, v(real, provider, 3n * E18), f.domain)
  const b = await signVoucher(payer, v(real, provider2, 2n * E18), f.domain)
  assert.is((await redeem(provider, [a])).gained, 3n * E18)
  const rb = await redeem(provider2, [b])
  assert.is(rb.gained, 2n * E18)
  assert.equal(rb.events.map(e => e.escrowId), [real])
  assert.equal([(await jobOf(real)).paid, (await jobOf(fake)).paid, await f.read<bigint>('unspent', [fake])], [5n * E18, 0n, 1n])
  // the payer's vouchers can not be pointed at the stranger's 1 wei escrow: not signed by ITS payer
  let r = await simulateRevert(f, provider, 'redeem', redeemArgs([{ voucher: { ...a.voucher, escrowId: fake }, signature: a.signature }]))
  assert.is(r.name, 'NotSignedByPayer')
  r = await simulateRevert(f, provider, 'redeem', redeemArgs([await signVoucher(payer, v(fake, provider, 1n), f.domain)]))
  assert.is(r.name, 'NotSignedByPayer', 'even a voucher the payer signed for the stranger\'s escrow: its payer is the stranger')
  // the stranger can neither close nor refund the real escrow; the payer's close and refund touch only it
  assert.is((await simulateRevert(f, stranger, 'close', [real])).name, 'NotPayer')
  await f.send(payer, 'close', [real])
  await f.increaseTime(WINDOW + 5)
  assert.is((await simulateRevert(f, stranger, 'refund', [real])).name, 'NotPayer')
  const before = await balance(payer)
  const rr = await f.send(payer, 'refund', [real])
  assert.is(await balance(payer) - before + rr.gasUsed * rr.effectiveGasPrice, 5n * E18, 'escrow - paid back to the payer')
  const k1 = await jobOf(fake)
  assert.equal([k1.escrow, k1.paid, k1.closedAt, k1.refunded], [1n, 0n, 0n, false], 'the stranger\'s escrow untouched')
})

test('stop', async () => { await f.stop() })

test.run()
