// The Bridge end to end on anvil (payer and providers are separate Bridges with their own keys
// and stores on one contract) and on the embedded EVM (the single-node sandbox): escrow,
// EIP-712 vouchers signed by the payer, checked and kept by the provider, redeemed by its loop
// exactly up to the signed total; refusals for vouchers a provider must not count; clear errors
// for a wrong chain id, an unreachable RPC, an unfunded key and an unstaked provider, with the
// vouchers kept and redeemed once the cause is fixed.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createPublicClient, createWalletClient, http } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { Bridge, DEV_PRIVATE_KEYS, chainJobIdOf, jobHashOf, dbcChain, settlementAbi, startAnvil, chainStatusLines, earningsLines, jobPaymentLines, walletLines, type AnvilHandle, type Hex } from '../../src/chain/index.js'
import { voucherTypedData, type Voucher } from '../../src/core/settlement/voucher.js'
import { openStore } from '../../src/store/db.js'
import { ChainError } from '../../src/errors.js'
import { Nodes } from './chain-backends.js'

const E18 = 10n ** 18n
const E15 = 10n ** 15n
const ROOT: Hex = `0x${'11'.repeat(32)}`
const voucher = (jobId: Hex, provider: string, cumulative: bigint, receiptCount = 1): Voucher => ({ escrowId: jobId, provider: provider as Hex, cumulative, receiptsRoot: ROOT, receiptCount })

let anvil: AnvilHandle
let nodes: Nodes

test('setup anvil', async () => {
  anvil = await startAnvil()
  nodes = new Nodes(anvil.url)
})

async function mine (seconds: number): Promise<void> {
  const client = createPublicClient({ chain: dbcChain(), transport: http(anvil.url) })
  await client.request({ method: 'evm_increaseTime' as never, params: [seconds] as never })
  await client.request({ method: 'evm_mine' as never, params: [] as never })
}

test('[anvil] vouchers: signed by the payer, checked and kept by the provider, redeemed once up to the signed total', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const alice = await nodes.node(DEV_PRIVATE_KEYS[1])
  const bob = await nodes.node(DEV_PRIVATE_KEYS[2])
  for (const p of [alice, bob]) await p.stake(1)
  const job = chainJobIdOf('job-vouchers', payer.account)
  const dep = await payer.deposit(jobHashOf('job-vouchers'), 5n * E15, { disputeWindow: 120 })
  assert.is(dep.escrow, 5n * E15)
  const esc = await payer.escrow(job)
  assert.is(esc.payer.toLowerCase(), payer.account.toLowerCase())
  assert.is(esc.unspent, 5n * E15)
  assert.is(esc.disputeWindow, 120)
  assert.equal(await payer.domain(), { chainId: 19880818, verifyingContract: nodes.contract })

  // Three cumulative vouchers to alice, one to bob; alice receives them out of order.
  const a1 = await payer.signVoucher(voucher(job, alice.account, 1n * E15, 1))
  const a2 = await payer.signVoucher(voucher(job, alice.account, 2n * E15, 2))
  const a3 = await payer.signVoucher(voucher(job, alice.account, 3n * E15, 3))
  const b1 = await payer.signVoucher(voucher(job, bob.account, 1n * E15, 1))
  assert.is((await payer.verifyVoucher(a1)).ok, true)
  const r2 = await alice.acceptVoucher(a2)
  assert.is(r2.ok, true)
  assert.is((await alice.acceptVoucher(a1)).ok === false && (await alice.acceptVoucher(a1) as { code: string }).code, 'STALE')
  assert.equal(await alice.acceptVoucher(b1), { ok: false, code: 'WRONG_PROVIDER', reason: `the voucher pays ${bob.account.toLowerCase()}, not this node (${alice.account})` })
  // Signed by someone other than the job's payer: refused, names both.
  const mallory = privateKeyToAccount(DEV_PRIVATE_KEYS[5])
  const forgedV = voucher(job, alice.account, 4n * E15, 9)
  const forged = { voucher: forgedV, signature: await mallory.signTypedData(voucherTypedData(forgedV, await alice.domain())) }
  const rf = await alice.acceptVoucher(forged)
  assert.is(rf.ok === false && rf.code, 'WRONG_PAYER')
  assert.match((rf as { reason: string }).reason, new RegExp(mallory.address.toLowerCase()))
  // A payer's signature over another field (tampered total) recovers someone else.
  const tampered = { voucher: { ...a3.voucher, cumulative: 5n * E15 }, signature: a3.signature }
  const rt = await alice.acceptVoucher(tampered)
  assert.is(rt.ok === false && rt.code, 'WRONG_PAYER')
  const rb = await alice.acceptVoucher({ voucher: a3.voucher, signature: '0x1234' })
  assert.is(rb.ok === false && rb.code, 'BAD_SIGNATURE')
  // No escrow for a job: refused with the words the issue asks for.
  const nojob = chainJobIdOf('job-without-escrow', payer.account)
  const rn = await alice.acceptVoucher(await payer.signVoucher(voucher(nojob, alice.account, E15)))
  assert.is(rn.ok === false && rn.code, 'NO_ESCROW')
  assert.match((rn as { reason: string }).reason, /no escrow for job 0x[0-9a-f]{64} on chain 19880818/)

  assert.is((await alice.acceptVoucher(a3)).ok, true)
  assert.is((await bob.acceptVoucher(b1)).ok, true)
  const before = await alice.earnings()
  assert.is(before.totals.signed, 3n * E15)
  assert.is(before.totals.pending, 3n * E15)
  const balanceBefore = await alice.balance()

  const tick = await alice.redeemNow()
  assert.is(tick.redeemable, 0)
  await bob.redeemNow()
  assert.is(await alice.redeemed(job), 3n * E15)
  assert.is(await bob.redeemed(job), 1n * E15)
  const after = await alice.earnings()
  assert.equal(after.jobs.map(j => [j.signed, j.redeemed, j.pending]), [[3n * E15, 3n * E15, 0n]])
  const history = alice.redeemHistory(job)
  assert.is(history.length, 1, 'one redeem tx for the three vouchers (only the latest is kept)')
  // (the entry itself when it fails: its state and note say why it holds no Redeemed events; seen once in CI under a CPU hog)
  assert.equal(history[0].paid, [{ chainJobId: job, amount: 3n * E15, cumulative: 3n * E15 }], JSON.stringify(history[0], (_k, v) => typeof v === 'bigint' ? v.toString() : v).slice(0, 2000))
  const gas = history[0].gasUsed ?? 0n
  const fee = gas * (await alice.connectionInfo.publicClient.getTransactionReceipt({ hash: history[0].txHash })).effectiveGasPrice
  assert.is(await alice.balance(), balanceBefore + 3n * E15 - fee, 'the redeem paid the provider\'s own account')
  assert.match(earningsLines(after).join('\n'), /0\.003 DBC/)

  // Redeeming again (even the same voucher by hand) pays nothing: the loop sends no tx at all.
  assert.is((await alice.redeemNow()).confirmed.length, 0)
  const conn = alice.connectionInfo
  const logs = await conn.publicClient.getContractEvents({ address: nodes.contract!, abi: settlementAbi, eventName: 'Redeemed', args: { escrowId: job }, fromBlock: 0n })
  const sum = (who: string): bigint => logs.filter(l => l.args.provider?.toLowerCase() === who.toLowerCase()).reduce((s, l) => s + (l.args.amount ?? 0n), 0n)
  assert.is(sum(alice.account), 3n * E15)
  assert.is(sum(bob.account), 1n * E15)

  // The submitter's view: escrow, what it signed per provider, what each redeemed, the refund.
  const view = await payer.jobPayments(job)
  assert.is(view.paid, 4n * E15)
  assert.is(view.unspent, 1n * E15)
  assert.equal(view.providers.map(p => [p.provider, p.signed, p.redeemed]).sort(), [[alice.account.toLowerCase(), 3n * E15, 3n * E15], [bob.account.toLowerCase(), 1n * E15, 1n * E15]].sort())
  assert.is(view.refundable, false)
  const lines = jobPaymentLines(view, Math.floor(Date.now() / 1000)).join('\n')
  assert.match(lines, /this node/)
  assert.match(lines, /not yet/)
})

test('[anvil] escrow short: partial redeem, the rest after a top-up; a refund before the window reverts; after it, vouchers pay nothing', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const carol = await nodes.node(DEV_PRIVATE_KEYS[3])
  await carol.stake(1)
  const job = chainJobIdOf('job-short', payer.account)
  await payer.deposit(jobHashOf('job-short'), 2n * E15, { disputeWindow: 60 })
  assert.is((await carol.acceptVoucher(await payer.signVoucher(voucher(job, carol.account, 3n * E15)))).ok, true)
  const t1 = await carol.redeemNow()
  assert.is(await carol.redeemed(job), 2n * E15, 'paid what the escrow held')
  assert.is(t1.redeemable, 0, 'the rest is blocked, not retried every tick')
  assert.match(t1.blocked[0]?.reason ?? '', /escrow is used up/)
  const e1 = await carol.earnings()
  assert.is(e1.jobs[0].pending, 1n * E15)
  assert.match(e1.jobs[0].note ?? '', /top it up/)
  await payer.deposit(jobHashOf('job-short'), 5n * E15)
  await carol.redeemNow()
  assert.is(await carol.redeemed(job), 3n * E15, 'the rest after the top-up, nothing more')
  // Refund before the window: refused by the contract, named, with a hint.
  await payer.close(job)
  const early = await payer.refund(job).then(() => undefined, (e: unknown) => e) as ChainError
  assert.instance(early, ChainError)
  assert.is(early.code, 'CONTRACT_REVERTED')
  assert.match(early.message, /DisputeWindowOpen/)
  assert.ok(early.hint !== undefined)
  // A voucher signed before the refund but delivered after it: pays nothing, shows as lost.
  const late = await payer.signVoucher(voucher(job, carol.account, 4n * E15))
  await mine(61)
  const r = await payer.refund(job)
  assert.is(r.amount, 4n * E15)
  assert.is((await carol.acceptVoucher(late)).ok, true)
  const t2 = await carol.redeemNow()
  assert.is(t2.redeemable, 0)
  assert.match(t2.blocked[0]?.reason ?? '', /refunded/)
  assert.is(await carol.redeemed(job), 3n * E15)
  const e2 = await carol.earnings()
  assert.match(e2.jobs[0].note ?? '', /refunded/)
  const view = await payer.jobPayments(job)
  assert.is(view.refunded, true)
  assert.match(jobPaymentLines(view, 0).join('\n'), /refund {5}done/)
})

test('[anvil] a stranger front-runs the deposit with 1 wei under the same job id (review M3): the payer\'s escrow, its provider\'s redeem and its refund still work and touch only the payer\'s escrow', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const stranger = await nodes.node(DEV_PRIVATE_KEYS[5])
  const gus = await nodes.node(DEV_PRIVATE_KEYS[9])
  await gus.stake(1)
  const hash = jobHashOf('job-front-run')
  const fake = (await stranger.deposit(hash, 1n, { disputeWindow: 60 })).chainJobId
  const dep = await payer.deposit(hash, 5n * E15, { disputeWindow: 60 })
  const real = dep.chainJobId
  assert.is(real, chainJobIdOf('job-front-run', payer.account))
  assert.ok(real !== fake)
  assert.equal([(await payer.escrow(real, { fresh: true })).escrow, (await payer.escrow(fake, { fresh: true })).escrow], [5n * E15, 1n])
  // the payer's voucher, pointed at the stranger's escrow, is refused by the provider (not signed by that escrow's payer)
  const sv = await payer.signVoucher(voucher(real, gus.account, 3n * E15))
  const moved = await gus.acceptVoucher({ voucher: { ...sv.voucher, escrowId: fake }, signature: sv.signature })
  assert.is(moved.ok, false)
  assert.is((moved as { code: string }).code, 'WRONG_PAYER')
  assert.is((await gus.acceptVoucher(sv)).ok, true)
  await gus.redeemNow()
  assert.is(await gus.redeemed(real), 3n * E15)
  assert.is(await gus.redeemed(fake), 0n)
  await payer.close(real)
  await mine(61)
  assert.is((await payer.refund(real)).amount, 2n * E15, 'escrow - paid back to the payer')
  const f = await stranger.escrow(fake, { fresh: true })
  assert.equal([f.escrow, f.paid, f.closedAt, f.refunded], [1n, 0n, 0, false], 'the stranger\'s escrow untouched')
})

test('[anvil] unstaked provider: the redeem reverts NotStaked with a hint, the voucher waits; staked, it is paid', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const dave = await nodes.node(DEV_PRIVATE_KEYS[4])
  const job = chainJobIdOf('job-unstaked', payer.account)
  await payer.deposit(jobHashOf('job-unstaked'), E18)
  assert.is((await dave.acceptVoucher(await payer.signVoucher(voucher(job, dave.account, E15)))).ok, true)
  const t = await dave.redeemNow()
  assert.is(t.redeemable, 0, 'nothing payable until the cause is gone (redeemNow returns at once)')
  assert.match(t.blocked[0]?.reason ?? '', /NotStaked/)
  assert.match(dave.receivedVouchers(job)[0].lastError ?? '', /NotStaked/)
  await dave.stake(1)
  await dave.redeemNow()
  assert.is(await dave.redeemed(job), E15)
  assert.is(dave.receivedVouchers(job)[0].lastError, undefined)
})

test('[anvil] unfunded key: KEY_UNFUNDED, the voucher waits; once funded, it is redeemed', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const key = generatePrivateKey()
  const poor = await nodes.node(key)
  const job = chainJobIdOf('job-unfunded', payer.account)
  await payer.deposit(jobHashOf('job-unfunded'), E18)
  await payer.stake(1, { provider: poor.account })
  assert.is((await poor.acceptVoucher(await payer.signVoucher(voucher(job, poor.account, 7n * E15)))).ok, true)
  const err = await poor.redeemNow().then(() => undefined, (e: unknown) => e) as ChainError
  assert.is(err?.code, 'KEY_UNFUNDED')
  assert.is((await poor.status()).lastError?.code, 'KEY_UNFUNDED')
  assert.is(poor.receivedVouchers().length, 1)
  const faucet = createWalletClient({ chain: dbcChain(), transport: http(anvil.url), account: privateKeyToAccount(DEV_PRIVATE_KEYS[6]) })
  const h = await faucet.sendTransaction({ to: poor.account, value: E18 })
  await poor.connectionInfo.publicClient.waitForTransactionReceipt({ hash: h })
  await poor.redeemNow()
  assert.is(await poor.redeemed(job), 7n * E15)
  assert.is((await poor.status()).lastError, undefined)
})

test('[anvil] redeem policy: the loop waits while a voucher is worth less than 10 redeems\' gas, redeems it once worth it or once the job closes, and reports what never beats the gas', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const erin = await nodes.node(generatePrivateKey(), { redeemPolicy: { minGasMultiple: 10 } })
  const faucet = createWalletClient({ chain: dbcChain(), transport: http(anvil.url), account: privateKeyToAccount(DEV_PRIVATE_KEYS[6]) })
  await erin.connectionInfo.publicClient.waitForTransactionReceipt({ hash: await faucet.sendTransaction({ to: erin.account, value: E18 }) })
  await payer.stake(1, { provider: erin.account })
  // One redeem of one voucher is well under 200k gas: 2 x that is below 10 redeems' gas, 40 x above it.
  const price = await erin.connectionInfo.publicClient.getGasPrice()
  const unit = 200_000n * (price > 0n ? price : 1n)
  const open = chainJobIdOf('job-policy-open', payer.account)
  const closed = chainJobIdOf('job-policy-closed', payer.account)
  const dust = chainJobIdOf('job-policy-dust', payer.account)
  for (const j of ['job-policy-open', 'job-policy-closed', 'job-policy-dust']) await payer.deposit(jobHashOf(j), E18, { disputeWindow: 3600 })
  for (const [j, v] of [[open, 2n * unit], [closed, 2n * unit], [dust, 1000n]] as const) assert.is((await erin.acceptVoucher(await payer.signVoucher(voucher(j, erin.account, v)))).ok, true)
  const t1 = await erin.redeemNow({ force: false })
  assert.is(erin.redeemHistory().length, 0, 'nothing worth its gas yet: no redeem sent')
  assert.is(t1.waiting, 3)
  for (const j of [open, closed, dust]) assert.is(await erin.redeemed(j), 0n)
  const e1 = await erin.earnings()
  assert.ok(e1.jobs.every(r => r.hold === 'waiting' && /waiting: .* below 10x the gas/.test(r.note ?? '')), JSON.stringify(e1.jobs.map(r => r.note)))
  // The payer closes two jobs: no more vouchers will come; what beats the gas goes, in one tx.
  await payer.close(closed)
  await payer.close(dust)
  const t2 = await erin.redeemNow({ force: false })
  const sent = erin.redeemHistory()
  assert.is(sent.length, 1)
  assert.equal(sent[0].items.map(i => i.chainJobId), [closed])
  assert.is(await erin.redeemed(closed), 2n * unit)
  assert.is(await erin.redeemed(open), 0n, 'the open job still waits')
  assert.is(t2.notWorth, 1)
  const e2 = await erin.earnings()
  const dustRow = e2.jobs.find(r => r.chainJobId === dust)
  assert.is(dustRow?.hold, 'not-worth')
  assert.match(dustRow?.note ?? '', /not worth redeeming: 0\.000000000000001 DBC pending/)
  assert.match(earningsLines(e2).join('\n'), /not worth redeeming/)
  // The open job's voucher grows past 10 redeems' gas: redeemed while the job is still open.
  assert.is((await erin.acceptVoucher(await payer.signVoucher(voucher(open, erin.account, 40n * unit)))).ok, true)
  await erin.redeemNow({ force: false })
  assert.equal(erin.redeemHistory(open).map(c => c.items.map(i => i.chainJobId)), [[open]])
  assert.is(await erin.redeemed(open), 40n * unit)
  // Asked by the operator (force, the default of redeemNow): dust that never beats the gas still stays.
  await erin.redeemNow()
  assert.is(erin.redeemHistory(dust).length, 0)
  assert.is(erin.redeemHistory().length, 2)
  assert.is(await erin.redeemed(dust), 0n)
})

test('[anvil] redeem policy: a job never closed is redeemed once its deadline passed, before the payer can refund', async () => {
  const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
  const fay = await nodes.node(generatePrivateKey(), { redeemPolicy: { minGasMultiple: 10 } })
  const faucet = createWalletClient({ chain: dbcChain(), transport: http(anvil.url), account: privateKeyToAccount(DEV_PRIVATE_KEYS[6]) })
  await fay.connectionInfo.publicClient.waitForTransactionReceipt({ hash: await faucet.sendTransaction({ to: fay.account, value: E18 }) })
  await payer.stake(1, { provider: fay.account })
  const price = await fay.connectionInfo.publicClient.getGasPrice()
  const unit = 200_000n * (price > 0n ? price : 1n)
  const job = chainJobIdOf('job-policy-deadline', payer.account)
  const now = Number((await fay.connectionInfo.publicClient.getBlock()).timestamp)
  // deadline in 10 minutes, window 2 minutes: refundable in 12 min, margin min(60 s, 10 min) = 60 s
  await payer.deposit(jobHashOf('job-policy-deadline'), E18, { deadline: now + 600, disputeWindow: 120 })
  assert.is((await fay.acceptVoucher(await payer.signVoucher(voucher(job, fay.account, 2n * unit)))).ok, true)
  await fay.redeemNow({ force: false })
  assert.is(fay.redeemHistory().length, 0)
  await mine(600 + 120 - 50) // past the deadline, 50 s before the refund time
  await fay.redeemNow({ force: false })
  assert.is(fay.redeemHistory().length, 1)
  assert.is(await fay.redeemed(job), 2n * unit)
  const early = await payer.refund(job).then(() => undefined, (e: unknown) => e) as ChainError
  assert.match(early?.message ?? '', /DisputeWindowOpen/, 'the provider was paid before the payer could refund')
})

test('[anvil] wrong chain id: clear error, nothing sent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-bridge-'))
  const store = openStore(join(dir, 'node.sqlite'))
  const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: anvil.url, chainId: 1 }, privateKey: DEV_PRIVATE_KEYS[7], contract: nodes.contract, tickMs: 0 })
  await bridge.start()
  try {
    const st = await bridge.status()
    assert.is(st.lastError?.code, 'CHAIN_ID_MISMATCH')
    assert.match(st.lastError?.message ?? '', /chain id 19880818, but the config says 1/)
    const err = await bridge.deposit(jobHashOf('x'), E15).then(() => undefined, (e: unknown) => e) as ChainError
    assert.is(err?.code, 'CHAIN_ID_MISMATCH')
  } finally { await bridge.stop(); store.close(); rmSync(dir, { recursive: true, force: true }) }
})

test('[rpc] unreachable RPC: status says so; accepting a voucher throws CHAIN_UNREACHABLE (no one is blamed)', async () => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'dbc-bridge-'))
  const store = openStore(join(dir, 'node.sqlite'))
  const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: `http://127.0.0.1:${port}`, chainId: 19880818 }, privateKey: DEV_PRIVATE_KEYS[8], tickMs: 0, requestTimeoutMs: 2000 })
  await bridge.start()
  try {
    const st = await bridge.status()
    assert.is(st.reachable, false)
    assert.is(st.lastError?.code, 'CHAIN_UNREACHABLE')
    assert.match(chainStatusLines(st).join('\n'), /UNREACHABLE/)
    const v = voucher(chainJobIdOf('y', bridge.account), bridge.account, E15)
    const signer = privateKeyToAccount(DEV_PRIVATE_KEYS[0])
    const sv = { voucher: v, signature: await signer.signTypedData(voucherTypedData(v, { chainId: 19880818, verifyingContract: bridge.account })) }
    const err = await bridge.acceptVoucher(sv).then(() => undefined, (e: unknown) => e) as ChainError
    assert.is(err?.code, 'CHAIN_UNREACHABLE')
    assert.ok(err.hint !== undefined && /retried/.test(err.hint))
  } finally { await bridge.stop(); store.close(); rmSync(dir, { recursive: true, force: true }) }
})

test('[embedded] the single-node sandbox: deposit, stake, a voucher to itself, redeemed once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-bridge-'))
  const store = openStore(join(dir, 'node.sqlite'))
  const bridge = new Bridge({ store, dataDir: dir, tickMs: 0 })
  await bridge.start()
  try {
    const job = chainJobIdOf('sandbox-job', bridge.account)
    await bridge.deposit(jobHashOf('sandbox-job'), E18)
    await bridge.stake(1)
    const sv = await bridge.signVoucher(voucher(job, bridge.account, 5n * E15, 5))
    assert.is((await bridge.acceptVoucher(sv)).ok, true)
    await bridge.redeemNow()
    assert.is(await bridge.redeemed(job), 5n * E15)
    const e = await bridge.earnings()
    assert.equal([e.totals.signed, e.totals.redeemed, e.totals.pending], [5n * E15, 5n * E15, 0n])
    const view = await bridge.jobPayments(job)
    assert.equal(view.providers.map(p => p.signed), [5n * E15])
    const st = await bridge.status()
    assert.equal(st.redeems, { sent: 0, confirmed: 1, dropped: 0 })
    assert.equal(st.vouchers, { received: 1, issued: 1 })
    assert.match(walletLines(st).join('\n'), /1 GPU/)
  } finally { await bridge.stop(); store.close(); rmSync(dir, { recursive: true, force: true }) }
})

test('teardown', async () => {
  await nodes.stop()
  await anvil.stop()
})

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

test.run()
