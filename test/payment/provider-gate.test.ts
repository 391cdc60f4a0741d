// A provider's payment gate in a real `dbc node start` process on the network's shared anvil
// (demo/network.ts LocalNetwork). This test is the submitter, by hand: its own libp2p identity on
// /dbc/task and its own EVM key on the chain, so each rule is seen from outside the provider:
// - a lease with no escrow does not open, and says "no escrow for job J on chain C" (not charged);
// - a stranger leasing against that escrow (it saw the job's id and payer) is refused and charged:
//   the payer authorised only its own holder (PaymentTerms.holder_auth), and the payer is not blocked;
// - with escrow, tasks run while vouchers follow; a task that fails (runs to its timeout) is the
//   provider's risk and counts for nothing; a payer that stops signing gets the configured credit
//   (here 0: DBC_CREDIT_TASKS) plus the task admitted at its edge, then "payer is N DBC behind";
//   a voucher lets work go on;
// - a voucher signed by someone else than the on-chain payer is charged to its sender (the
//   node's peer score), a lower total is answered with the higher one held (not charged), and
//   garbage, another payee and a made-up job are charged (the fuzzer's hostile cases).
process.env.DBC_SKIP_BENCHMARK = '1'
process.env.DBC_CREDIT_TASKS = '0' // no free work: the second unsigned ok task is refused
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { privateKeyToAccount } from 'viem/accounts'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'
import { FramedStream } from '../../src/net/framed.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { signLease, signTask } from '../../src/core/scheduler/ownership.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import { DEV_PRIVATE_KEYS } from '../../src/chain/index.js'
import { fundJob, holderAuth, paymentTerms, providerChain } from './raw-payer.js'
import { escrowKeyOf, taskPriceUnits, uint256Bytes } from '../../src/core/settlement/credit.js'
import { voucherTypedData, type VoucherDomain } from '../../src/core/settlement/voucher.js'
import { bytesFromHex } from '../../src/core/settlement/hex.js'
import { decimalToUnits } from '../../src/core/compute/pricing.js'
import { newIdentity, type FuzzIdentity } from '../fuzz/live-fuzzer.js'
import { runHostileProbes } from '../fuzz/hostile-probes.js'
import { waitFor as waitForAt } from '../helpers/wait.js'

const TASK = '/dbc/task/1.0.0'
const loop = new Uint8Array(readFileSync(new URL('../../src/compute/modules/loop.wasm', import.meta.url)))
const square = new Uint8Array(readFileSync(new URL('../../src/compute/modules/square.wasm', import.meta.url)))
/** loop.wasm never returns: it runs to this timeout and fails. */
const TIMEOUT_MS = 1000
/** square.wasm's deadline: it returns ok well before, billing its run time. */
const OK_MS = 5000
const OFFER_PRICES = { priceGpuHour: 1, priceCpuHour: 0.05 } // the provider's default policy
const PRICE = taskPriceUnits(OFFER_PRICES, 0, 1, OK_MS)

/** A voucher's cumulative total as a number (protobufjs hands out Buffers). */
const total = (v: dbc.task.v1.IVoucher | null | undefined): bigint | undefined => v?.cumulative == null ? undefined : BigInt(`0x${Buffer.from(v.cumulative).toString('hex') || '0'}`)

type Reply = { msg?: dbc.task.v1.TaskMessage, error?: { code: string, message: string } }

/** One request on its own /dbc/task stream: the first frame back, as a message or a ProtocolError. */
async function ask (id: FuzzIdentity, node: LocalNode, msg: dbc.task.v1.ITaskMessage, keep = false): Promise<Reply & { framed: FramedStream }> {
  const stream = await id.host.dialProtocol(multiaddr(node.addrs[0]), TASK, { signal: AbortSignal.timeout(10_000) })
  const framed = new FramedStream(stream, { maxFrameBytes: 16 << 20 })
  await framed.write(dbc.task.v1.TaskMessage.encode(msg).finish(), { signal: AbortSignal.timeout(10_000) })
  const frame = await framed.read({ signal: AbortSignal.timeout(60_000) })
  if (!keep) await framed.close({ signal: AbortSignal.timeout(5000) }).catch(() => { framed.abort(new Error('done')) })
  if (frame === undefined) return { framed }
  try {
    const m = dbc.task.v1.TaskMessage.decode(frame)
    if (m.offer != null || m.heartbeat != null || m.result != null || m.voucher != null) return { msg: m, framed }
  } catch {}
  const e = dbc.common.v1.ProtocolError.decode(frame)
  return { error: { code: e.code, message: e.message }, framed }
}

async function penalized (node: LocalNode): Promise<Set<string>> {
  const st = await node.api.call<{ penalizedPeers: Array<{ peer: string }>, overlay?: { penalizedPeers?: Array<{ peer: string }> } }>('GET', '/v1/status')
  return new Set([...st.penalizedPeers, ...(st.overlay?.penalizedPeers ?? [])].map(p => p.peer))
}

/** Waits up to 60 s by default. */
const waitFor = async <T>(what: string, get: () => Promise<T | undefined>, ms = 60_000): Promise<T> => await waitForAt(what, get, ms)

test('a provider node works only against escrow on its chain and stops when the payer stops signing', async () => {
  const net = new LocalNetwork()
  const submitter = await newIdentity()
  const forger = await newIdentity()
  const thief = await newIdentity()
  try {
    const { chainId } = await net.chain()
    const prov = await net.start({ name: 'provider', location: '52.52,13.40', extra: ['--no-connection-monitor'] }, [], { timeoutMs: 120_000 })
    const chain = await providerChain(net, prov)
    assert.is(chain.chainId, chainId)
    const domain: VoucherDomain = chain.domain
    const payer = privateKeyToAccount(DEV_PRIVATE_KEYS[1])
    const stranger = privateKeyToAccount(DEV_PRIVATE_KEYS[0])
    const holderSign = nodeSigner(submitter.secret.subarray(0, 32))

    const jobId = randomBytes(16)
    const key = escrowKeyOf(jobId, payer.address)
    // the payer authorises its own holder (the submitter's peer id) to lease against the escrow
    const payment = { ...paymentTerms(chain, jobId, payer.address), holderAuth: await holderAuth(chain, jobId, submitter.peerBytes, payer) }
    const request = { jobId, requester: submitter.peerBytes, slots: 1, executor: 'wasm', expectedTaskMs: TIMEOUT_MS, maxInputBytes: 64, requestExpiresAt: Date.now() + 60_000, payment }
    const lease = async (): Promise<Reply & { framed: FramedStream, leaseId: Uint8Array }> => {
      const o = await ask(submitter, prov, { leaseRequest: { ...request, requestExpiresAt: Date.now() + 60_000 } })
      const offer = o.msg?.offer
      assert.ok(offer != null && (offer.refusal ?? '') === '', `no offer: ${JSON.stringify(o.error ?? offer?.refusal)}`)
      assert.is((offer.payoutAddress ?? '').toLowerCase(), chain.account.toLowerCase(), 'the offer names the provider\'s payout address')
      const leaseId = randomBytes(16)
      const l = signLease(holderSign, { leaseId, offerId: offer.offerId, jobId, holder: submitter.peerBytes, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 1000, payment })
      return { ...await ask(submitter, prov, { lease: l }, true), leaseId }
    }

    // 1. another chain: refused in the offer; no escrow: the lease does not open, not charged
    const elsewhere = await ask(submitter, prov, { leaseRequest: { ...request, payment: { ...payment, chainId: 19850818 } } })
    assert.match(elsewhere.msg?.offer?.refusal ?? '', /^PAYMENT_WRONG_CHAIN: job 0x[0-9a-f]{8}… pays on chain 19850818/)
    const unfunded = await lease()
    unfunded.framed.abort(new Error('done'))
    assert.is(unfunded.error?.code, 'NO_ESCROW', JSON.stringify(unfunded))
    assert.is(unfunded.error?.message, `no escrow for job ${key.slice(0, 10)}… on chain ${chainId}`)

    // 2. the payer deposits 1 DBC: the lease opens
    await fundJob(chain, jobId, 10n ** 18n, payer)
    const open = await waitFor('a lease on the funded job', async () => {
      await new Promise(resolve => setTimeout(resolve, 1100)) // "no escrow" is trusted for a second
      const l = await lease()
      if (l.msg?.heartbeat != null) return l
      l.framed.abort(new Error('retry'))
      return undefined
    }, 30_000)
    assert.not.ok((await penalized(prov)).has(submitter.peerId), 'refusals for want of escrow are not charged')

    // 2b. a stranger that saw the job's id, payer and authorisation leases against the payer's escrow:
    // refused and charged (the authorisation names another holder; one it signs itself: unit test)
    const stolen = async (terms: dbc.task.v1.IPaymentTerms): Promise<Reply> => {
      const o = await ask(thief, prov, { leaseRequest: { ...request, requester: thief.peerBytes, payment: terms, requestExpiresAt: Date.now() + 60_000 } })
      const offer = o.msg?.offer
      assert.ok(offer != null && (offer.refusal ?? '') === '', `no offer to the stranger: ${JSON.stringify(o.error ?? offer?.refusal)}`)
      const l = signLease(nodeSigner(thief.secret.subarray(0, 32)), { leaseId: randomBytes(16), offerId: offer.offerId, jobId, holder: thief.peerBytes, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 1000, payment: terms })
      const r = await ask(thief, prov, { lease: l }, true)
      r.framed.abort(new Error('done'))
      return r
    }
    const replayed = await stolen(payment)
    assert.is(replayed.error?.code, 'LEASE_NOT_AUTHORISED', JSON.stringify(replayed.error ?? replayed.msg?.toJSON()))
    await waitFor('the stranger charged', async () => (await penalized(prov)).has(thief.peerId) ? true : undefined, 15_000)

    let n = 0
    const run = async (code = loop, deadlineMs = TIMEOUT_MS): Promise<dbc.task.v1.ITaskResult> => {
      const t = signTask(holderSign, { taskId: randomBytes(8), jobId, leaseId: open.leaseId, index: n, attempt: 1, executor: 'wasm', code, entry: 'run', input: new TextEncoder().encode(String(n)), deadlineMs })
      n++
      const r = await ask(submitter, prov, { task: t })
      assert.ok(r.msg?.result != null, `no result: ${JSON.stringify(r.error)}`)
      return r.msg.result
    }
    const billedBy = (r: dbc.task.v1.ITaskResult): bigint => r.receipt == null ? 0n : BigInt(dbc.receipt.v1.UsageReceipt.decode(r.receipt.receipt ?? new Uint8Array()).amount)
    let signed = 0n
    const voucherFor = async (cumulative: bigint, by = payer): Promise<dbc.task.v1.IVoucher> => {
      const v = { escrowId: key, provider: chain.account.toLowerCase() as `0x${string}`, cumulative, receiptsRoot: `0x${'00'.repeat(32)}` as const, receiptCount: n }
      const signature = await by.signTypedData(voucherTypedData(v, domain))
      return { escrowId: bytesFromHex(key), provider: bytesFromHex(v.provider), cumulative: uint256Bytes(cumulative), receiptsRoot: new Uint8Array(32), receiptCount: n, signature: bytesFromHex(signature) }
    }

    // 3. two tasks, each followed by the payer's voucher for what it billed (the payer is not blocked)
    for (let i = 0; i < 2; i++) {
      const r = await run(square, OK_MS)
      assert.is(r.ok, true, r.error ?? '')
      signed += billedBy(r)
      const held = await ask(submitter, prov, { voucher: await voucherFor(signed) })
      assert.is(total(held.msg?.voucher), signed, `voucher not held: ${JSON.stringify(held.error ?? held.msg?.toJSON())}`)
    }
    // 4. a task that fails (runs to its timeout) is the provider's risk: it adds nothing owed
    const failed = await run()
    assert.match(failed.error ?? '', /TIMEOUT/, 'loop.wasm runs to its timeout')
    // the payer stops signing: ok tasks run until the unsigned work passes the credit (0 here)
    // a square task may bill 0 on a fast machine (under 1 ms of CPU): zero-billed work adds no debt
    let free = 0
    let billedFree = 0
    let refusal = ''
    for (let i = 0; i < 8; i++) {
      const r = await run(square, OK_MS)
      if ((r.error ?? '').startsWith('PAYER_BEHIND')) { refusal = r.error ?? ''; assert.ok(r.receipt == null, 'a refused task bills nothing'); break }
      free++
      if (billedBy(r) > 0n) billedFree++
    }
    if (billedFree === 0) {
      assert.is(free, 8, 'only zero-billed tasks ran, and none was refused')
    } else {
      assert.match(refusal, /^PAYER_BEHIND: payer is 0\.0000[0-9]+ DBC behind on job 0x[0-9a-f]{8}… \(delivered [0-9.]+ DBC, signed [0-9.]+ DBC, credit 0 DBC\): send a voucher$/)
      assert.is(billedFree, 1, `${billedFree} unsigned billed tasks ran (credit 0: only the one admitted at its edge; the failed one counts for nothing)`)
    }
    const st = await prov.api.call<{ compute: { payments: Array<{ chainJobId: string, maxBehind: string, refusals: number }> } }>('GET', '/v1/status')
    const row = st.compute.payments.find(p => p.chainJobId === key)
    assert.ok(row !== undefined, 'the job appears in the provider\'s payment status')
    const maxBehindWei = decimalToUnits(row.maxBehind.replace(/ DBC$/, ''))
    assert.ok(maxBehindWei <= PRICE, `unsigned work ${row.maxBehind} DBC stayed within one task (${PRICE} wei)`)
    if (billedFree > 0) assert.ok(maxBehindWei > 0n && row.refusals >= 1, 'the billed unsigned task shows as debt and the next was refused')

    // 5. vouchers: another signer is charged; a lower total is answered with the held one (not charged)
    const forged = await ask(forger, prov, { voucher: await voucherFor(signed + 10n ** 15n, stranger) })
    assert.is(forged.error?.code, 'VOUCHER_BAD_SIGNER', JSON.stringify(forged))
    const lower = await ask(submitter, prov, { voucher: await voucherFor(signed / 2n) })
    assert.is(total(lower.msg?.voucher), signed, 'a lower total is answered with the held one')
    await waitFor('the forger charged', async () => (await penalized(prov)).has(forger.peerId) ? true : undefined, 15_000)
    assert.not.ok((await penalized(prov)).has(submitter.peerId), 'a reordered (lower) voucher is not charged')

    // 6. the payer catches up: work goes on
    signed += 10n * PRICE
    const caught = await ask(submitter, prov, { voucher: await voucherFor(signed) })
    assert.is(total(caught.msg?.voucher), signed)
    const after = await run(square, OK_MS)
    assert.is(after.ok, true, after.error ?? '')

    // 7. the fuzzer's voucher cases: garbage and another payee: each sender charged; a made-up job
    // is declined VOUCHER_UNKNOWN_JOB before any chain read and not charged (review s14 L7: an honest
    // payer's voucher for a row evicted here reads the same)
    const probes = (await runHostileProbes({ target: { peerId: prov.peerId, addr: prov.addrs[0] }, protocols: [TASK] })).filter(p => p.name.startsWith('voucher-'))
    assert.is(probes.length, 3)
    for (const p of probes) assert.match(p.reply, p.replyPattern ?? /./, `${p.name}: ${p.reply}`)
    const mustCharge = probes.filter(p => p.charge === 'must')
    assert.is(mustCharge.length, 2, JSON.stringify(probes.map(p => [p.name, p.charge])))
    await waitFor('the voucher probes charged', async () => {
      const pen = await penalized(prov)
      return mustCharge.every(p => pen.has(p.peerId) || p.disconnected) ? true : undefined
    }, 15_000)
    const unknownJob = probes.find(p => p.charge === 'no')
    assert.ok(unknownJob !== undefined && /VOUCHER_UNKNOWN_JOB/.test(unknownJob.reply), JSON.stringify(unknownJob))
    assert.not.ok((await penalized(prov)).has(unknownJob.peerId), 'a voucher for a job never run here is declined, not charged')
    open.framed.abort(new Error('done'))
  } finally {
    await Promise.all([submitter.host.stop(), forger.host.stop(), thief.host.stop()].map(async p => await Promise.resolve(p).catch(() => {})))
    await net.stop()
  }
})

test.run()
