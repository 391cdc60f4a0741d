// Task bundles at the provider (ComputePeerProvider.runBundle, the payment gate's bundle slot,
// ComputePeer.runBundle): a bundle takes ONE slot of the lease and of the peer, its tasks run one
// after another, each admitted by the credit rule as it starts and finished as it ends, and the
// slot goes back exactly once, whatever happens. The offer's bundle_max is signed.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { privateKeyToAccount } from 'viem/accounts'
import { ComputePeer, type BundleOutcome } from '../../../src/compute/index.js'
import { ComputePeerProvider, type ProviderTaskRecord } from '../../../src/jobs/compute-provider.js'
import { PaymentGate, LEASE_SLOT_QUEUE, type PaymentPort, type LeasePayment } from '../../../src/jobs/payment-gate.js'
import { leaseTaskPrice } from '../../../src/jobs/payment-gate-types.js'
import { signLease } from '../../../src/core/scheduler/ownership.js'
import { verifyOffer } from '../../../src/core/compute/offer.js'
import { TASK_BUNDLE_MAX } from '../../../src/core/scheduler/ports.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key, toHex } from '../../../src/core/identity/index.js'
import { escrowKeyOf, type EscrowRead } from '../../../src/core/settlement/credit.js'
import type { VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { encodeTileInput } from '../../../src/compute/mandelbrot.js'

const mod = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`../../../src/compute/modules/${name}.wasm`, import.meta.url)))
const square = mod('square')
const mandelbrot = mod('mandelbrot')
const payer = privateKeyToAccount(`0x${'44'.repeat(32)}`)
const PAYOUT = `0x${'ab'.repeat(20)}`
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }

interface Rig { records: ProviderTaskRecord[], peer: ComputePeer, gate: PaymentGate, provider: ComputePeerProvider, holder: Uint8Array, jobId: Uint8Array, chainJobId: string, leaseId: Uint8Array, calls: { slotFree: number, bundleDone: number, finished: number, admitted: number } }

/** A started peer (one CPU slot) behind a payment gate, a funded escrow and an open lease of 1 slot; the gate's slot calls counted. */
async function rig (creditTasks: number, expectedTaskMs = 2, bundles?: ProviderTaskRecord[][]): Promise<Rig & { offer: dbc.task.v1.IOffer }> {
  const escrows = new Map<string, EscrowRead>()
  const port: PaymentPort = { address: PAYOUT, domain: () => DOMAIN, escrow: async k => escrows.get(k), acceptVoucher: async () => {} }
  const holderKey = randomBytes(32)
  const holder = peerIdBytesFromEd25519Key(ed25519PublicKey(holderKey))
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false, payoutAddress: PAYOUT })
  await peer.start()
  const gate = new PaymentGate(port, { creditTasks, minRefreshMs: 0 })
  const calls = { slotFree: 0, bundleDone: 0, finished: 0, admitted: 0 }
  const g = gate as unknown as Record<string, (...a: unknown[]) => unknown>
  for (const name of ['slotFree', 'bundleDone', 'finished'] as const) {
    const orig = g[name].bind(gate)
    g[name] = (...a: unknown[]) => { calls[name]++; return orig(...a) }
  }
  const admit = g.admitTask.bind(gate)
  g.admitTask = async (...a: unknown[]) => { const d = await (admit(...a) as Promise<{ ok: boolean }>); if (d.ok) calls.admitted++; return d }
  const records: ProviderTaskRecord[] = []
  // `bundles`: the daemon's way, a bundle's records handed over together (onBundle)
  const provider = new ComputePeerProvider(peer, undefined, { payment: gate, onTask: rec => records.push(rec), ...(bundles !== undefined ? { onBundle: (rs: ProviderTaskRecord[]) => { bundles.push(rs) } } : {}) })
  const jobId = randomBytes(16)
  const chainJobId = escrowKeyOf(jobId, payer.address)
  const holderAuth = bytesFromHex(await payer.signTypedData(leaseAuthTypedData(chainJobId, holder, DOMAIN)))
  const payment = { chainId: DOMAIN.chainId, contract: bytesFromHex(DOMAIN.verifyingContract), chainJobId: bytesFromHex(chainJobId), payer: bytesFromHex(payer.address), holderAuth }
  escrows.set(chainJobId, { payer: payer.address.toLowerCase(), unspent: 10n ** 18n, refunded: false, closedAt: 0, disputeWindow: 3600 })
  const offer = provider.offer({ jobId, requester: holder, slots: 1, executor: 'wasm', expectedTaskMs, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000, payment, bundles: true })
  const leaseId = randomBytes(16)
  await provider.openLease(signLease(holderKey, { leaseId, offerId: offer.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000, payment }), holder)
  return { records, peer, gate, provider, holder, jobId, chainJobId, leaseId, calls, offer }
}

const taskOf = (r: Rig, n: number, code?: Uint8Array): dbc.task.v1.ITask => ({ taskId: randomBytes(8), jobId: r.jobId, leaseId: r.leaseId, index: n, attempt: 1, executor: 'wasm', ...(code !== undefined ? { code } : {}), codeHash: sha256(square), entry: 'run', input: new TextEncoder().encode(String(n)), deadlineMs: 20_000 })
function sha256 (b: Uint8Array): Uint8Array { return new Uint8Array(createHash('sha256').update(b).digest()) }
const lp = (r: Rig): LeasePayment => (r.provider as unknown as { payments: Map<string, LeasePayment> }).payments.get(toHex(r.leaseId))!

test('the offer carries bundle_max from the request\'s expected task time, under its signature; the lease remembers it', async () => {
  const r = await rig(1, 2)
  try {
    assert.is(r.offer.bundleMax, 16, '50 ms / 2 ms, at most TASK_BUNDLE_MAX')
    assert.ok(verifyOffer(r.offer, Date.now()).ok)
    assert.not.ok(verifyOffer({ ...r.offer, bundleMax: 3 }, Date.now()).ok, 'a changed bundle_max fails the signature')
    assert.is(r.provider.leaseBundleMax(r.leaseId), 16)
    // a task far slower than a bundle's wall time: no bundles (the field stays absent, as an older provider's)
    const slow = r.provider.offer({ jobId: r.jobId, requester: r.holder, slots: 1, executor: 'wasm', expectedTaskMs: 40, requestExpiresAt: Date.now() + 10_000, bundles: true })
    assert.is(slow.bundleMax ?? 0, 0)
    // an older submitter does not ask: no field 15, so its re-encoding of the decoded offer (the field dropped) still verifies
    const old = r.provider.offer({ jobId: r.jobId, requester: r.holder, slots: 1, executor: 'wasm', expectedTaskMs: 2, requestExpiresAt: Date.now() + 10_000 })
    assert.is(old.bundleMax ?? 0, 0)
    const reencoded = dbc.task.v1.Offer.decode(dbc.task.v1.Offer.encode(old).finish())
    assert.ok(verifyOffer({ ...reencoded, bundleMax: 0 }, Date.now()).ok)
    assert.is(dbc.task.v1.Offer.encode(old).finish().length, dbc.task.v1.Offer.encode({ ...old, bundleMax: 0 }).finish().length, 'no bundle_max on the wire')
    r.provider.closeLease(r.leaseId)
    assert.is(r.provider.leaseBundleMax(r.leaseId), undefined)
  } finally { await r.peer.stop() }
})

test('a bundle takes one slot of the lease, its tasks are admitted and finished one by one, the slot goes back once', async () => {
  const r = await rig(1)
  try {
    const tasks = Array.from({ length: 5 }, (_, i) => taskOf(r, i, i === 0 ? square : undefined))
    const results = await r.provider.runBundle(tasks, r.holder)
    assert.equal(results.map(x => x.ok), [true, true, true, true, true], results.map(x => x.error).join(' '))
    assert.equal(results.map(x => toHex(x.taskId ?? new Uint8Array())), tasks.map(t => toHex(t.taskId ?? new Uint8Array())))
    assert.ok(results.every(x => (x.output?.length ?? 0) > 0), 'the code sent with the first task ran them all (the others name it by hash)')
    assert.equal(r.calls, { slotFree: 1, bundleDone: 1, finished: 5, admitted: 5 })
    assert.equal(r.records.map(x => [x.task, x.outcome]), [[0, 'ok'], [1, 'ok'], [2, 'ok'], [3, 'ok'], [4, 'ok']], 'one log record per task')
    assert.is(lp(r).inflight, 0, 'the lease\'s slot is free again')
    assert.is(r.gate.ledgerOf(r.chainJobId)?.inflight, 0)
  } finally { await r.peer.stop() }
})

test('with onBundle, a bundle\'s records are handed over in one call as it ends (none to onTask); a lone task still goes to onTask', async () => {
  const bundles: ProviderTaskRecord[][] = []
  const r = await rig(1, 2, bundles)
  try {
    const tasks = Array.from({ length: 4 }, (_, i) => taskOf(r, i, i === 0 ? square : undefined))
    tasks.push({ ...taskOf(r, 4), codeHash: new Uint8Array(32) }) // a module this provider does not hold: refused before running
    const results = await r.provider.runBundle(tasks, r.holder)
    assert.equal(results.map(x => x.ok), [true, true, true, true, false])
    assert.is(bundles.length, 1)
    assert.equal(bundles[0].map(x => [x.task, x.outcome]).sort(), [[0, 'ok'], [1, 'ok'], [2, 'ok'], [3, 'ok'], [4, 'refused']])
    assert.is(r.records.length, 0, 'nothing went to onTask')
    await r.provider.runTask(taskOf(r, 9), r.holder)
    assert.equal(r.records.map(x => [x.task, x.outcome]), [[9, 'ok']])
    assert.is(bundles.length, 1)
  } finally { await r.peer.stop() }
})

test('a credit refusal in the middle of a bundle: the task that ran counts before the next is admitted; the slot goes back once', async () => {
  // credit 0: no unsigned work at all, so once the first task's work is delivered the next ones wait for a voucher
  const r = await rig(0)
  try {
    const first = { ...taskOf(r, 0), code: mandelbrot, codeHash: sha256(mandelbrot), input: encodeTileInput(-2, -1.25, 2.5 / 128, 128, 128, 3000) }
    const rest = [1, 2].map(i => ({ ...taskOf(r, i), codeHash: sha256(mandelbrot), input: first.input }))
    const results = await r.provider.runBundle([first, ...rest], r.holder)
    assert.is(results[0].ok, true, results[0].error ?? '')
    for (const x of results.slice(1)) {
      assert.is(x.ok, false)
      assert.match(x.error ?? '', /^PAYER_BEHIND: /)
      assert.ok(x.receipt == null, 'refused: nothing run, nothing billed')
    }
    assert.equal(r.calls, { slotFree: 1, bundleDone: 1, finished: 1, admitted: 1 })
    assert.equal(r.records.map(x => [x.task, x.outcome, x.code]), [[0, 'ok', undefined], [1, 'refused', 'PAYER_BEHIND'], [2, 'refused', 'PAYER_BEHIND']])
    assert.is(lp(r).inflight, 0)
    assert.is(r.gate.ledgerOf(r.chainJobId)?.inflight, 0)
  } finally { await r.peer.stop() }
})

test('the slot goes back once when the peer throws mid-bundle, and an admitted task is finished unbilled', async () => {
  const r = await rig(1)
  try {
    r.peer.runBundle = async (_tasks, opts = {}): Promise<BundleOutcome[]> => { await opts.admit?.(0); throw new Error('worker died') }
    const results = await r.provider.runBundle([taskOf(r, 0, square), taskOf(r, 1)], r.holder)
    assert.equal(results.map(x => x.code), ['REFUSED', 'REFUSED'])
    assert.equal(r.calls, { slotFree: 1, bundleDone: 1, finished: 1, admitted: 1 })
    assert.is(lp(r).inflight, 0)
    assert.is(r.gate.ledgerOf(r.chainJobId)?.inflight, 0)
  } finally { await r.peer.stop() }
})

test('no slot free and the lease\'s queue full: every task of the bundle is refused LEASE_SLOTS_BUSY, no slot taken or given back', async () => {
  const r = await rig(1)
  try {
    const held = lp(r)
    assert.ok(await r.gate.slotFree(held), 'the lease\'s one slot, taken by another task')
    const waiting = Array.from({ length: LEASE_SLOT_QUEUE }, async () => await r.gate.slotFree(held))
    const results = await r.provider.runBundle([taskOf(r, 0, square), taskOf(r, 1)], r.holder)
    assert.equal(results.map(x => x.code), ['LEASE_SLOTS_BUSY', 'LEASE_SLOTS_BUSY'])
    assert.equal(r.calls, { slotFree: 1 + LEASE_SLOT_QUEUE + 1, bundleDone: 0, finished: 0, admitted: 0 })
    assert.is(held.inflight, 1)
    // the held slot goes to each waiter in turn
    for (let i = 0; i <= LEASE_SLOT_QUEUE; i++) r.gate.bundleDone(held)
    assert.equal(await Promise.all(waiting), Array(LEASE_SLOT_QUEUE).fill(true))
    assert.is(held.inflight, 0)
  } finally { await r.peer.stop() }
})

test('ComputePeer.runBundle: one slot for the bundle, one executor run and receipt per task, a cancel per task, the cut', async () => {
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 2, memoryMib: 1024, benchmark: false })
  await peer.start()
  try {
    const events: string[] = []
    peer.events.on('event', e => { if (e.type === 'started' || e.type === 'finished') events.push(e.type) })
    const t = (n: number): dbc.task.v1.ITask => ({ taskId: randomBytes(8), jobId: new Uint8Array([1]), executor: 'wasm', code: square, entry: 'run', input: new TextEncoder().encode(String(n)) })
    const cancelled = new AbortController()
    cancelled.abort(new Error('the submitter cancelled it'))
    const tasks = Array.from({ length: TASK_BUNDLE_MAX }, (_, i) => t(i))
    let admitted = 0
    const ran: number[] = []
    const outs = await peer.runBundle(tasks, { signals: tasks.map((_, i) => i === 3 ? cancelled.signal : undefined), admit: async () => { admitted++; return undefined }, ran: i => ran.push(i) })
    assert.equal(events, ['started', 'finished'], 'one slot for the whole bundle')
    assert.is(admitted, TASK_BUNDLE_MAX - 1, 'asked for each task that starts')
    assert.equal(ran, [...Array(TASK_BUNDLE_MAX).keys()].filter(i => i !== 3), 'told in order, as each ends')
    const ok = outs.filter((o): o is Exclude<BundleOutcome, { refused: Error }> => !('refused' in o))
    assert.is(ok.length, TASK_BUNDLE_MAX - 1)
    assert.is(new Set(ok.map(o => toHex(o.receipt.signature))).size, TASK_BUNDLE_MAX - 1, 'each task its own signed receipt')
    assert.match(('refused' in outs[3] ? outs[3].refused : new Error('')).message, /cancelled before it started/)
    // `dbc node status`'s tasks run counts each task that ran (it counted the slot's one 'finished' event: 1)
    assert.is(peer.tasksRun, TASK_BUNDLE_MAX - 1, 'each task that ran counts, the cancelled one not')
    // the cut: once the bundle ran cutMs no further task starts; the rest are LEASE_SLOTS_BUSY (sent again)
    const cut = await peer.runBundle([t(1), t(2), t(3)], { cutMs: 0 })
    assert.ok(!('refused' in cut[0]), 'the first task always runs')
    for (const o of cut.slice(1)) assert.is('refused' in o ? (o.refused as { code?: string }).code : 'ran', 'LEASE_SLOTS_BUSY')
    // a refusal by admit answers that task only
    const some = await peer.runBundle([t(1), t(2)], { admit: async i => i === 0 ? Object.assign(new Error('no credit'), { code: 'PAYER_BEHIND' }) : undefined })
    assert.is('refused' in some[0] ? (some[0].refused as { code?: string }).code : 'ran', 'PAYER_BEHIND')
    assert.ok(!('refused' in some[1]))
    assert.is(peer.tasksRun, TASK_BUNDLE_MAX - 1 + 1 + 1, 'of the cut bundle its first task, of the admit refusal the other')
    assert.is(peer.executing, 0)
    // a drain that begins mid-bundle: the task running ends, the rest are not started (sent again: NOT_RUN)
    const drained = await peer.runBundle([t(1), t(2), t(3)], { admit: async i => { if (i === 0) peer.drain(); return undefined } })
    assert.ok(!('refused' in drained[0]))
    assert.equal(drained.slice(1).map(o => 'refused' in o ? (o.refused as { code?: string }).code : 'ran'), ['LEASE_SLOTS_BUSY', 'LEASE_SLOTS_BUSY'])
    // a bundle that arrives while the peer drains waits for the stop, as a task does: PEER_STOPPED
    const late = peer.runBundle([t(4), t(5)])
    assert.is(peer.waiting, 2, 'held by the drain (counted as the call starts)')
    await peer.stop()
    assert.equal((await late).map(o => 'refused' in o ? (o.refused as { code?: string }).code : 'ran'), ['PEER_STOPPED', 'PEER_STOPPED'])
  } finally { await peer.stop() }
})

test('under the default credit of one task, a bundle of 16 tiny tasks runs in one go (what its tasks may bill together: one task\'s price plus its cut\'s)', async () => {
  const r = await rig(1)
  try {
    const wasm = (r.peer as unknown as { executors: Map<string, { run: (...a: unknown[]) => unknown, runBundle: (...a: unknown[]) => Promise<unknown[]> }> }).executors.get('wasm')!
    let runs = 0
    const sizes: number[] = []
    const run = wasm.run.bind(wasm)
    wasm.run = (...a) => { runs++; return run(...a) }
    const runBundle = wasm.runBundle.bind(wasm)
    wasm.runBundle = async (...a) => { sizes.push((a[0] as unknown[]).length); return await runBundle(...a) }
    for (let b = 0; b < 2; b++) {
      const results = await r.provider.runBundle(Array.from({ length: 16 }, (_, i) => taskOf(r, b * 16 + i, i === 0 ? square : undefined)), r.holder)
      assert.ok(results.every(x => x.ok === true), results.map(x => x.error).join(' '))
    }
    // (at full price each, review20 found 2 together and 14 one by one)
    assert.equal(sizes, [16, 16])
    assert.is(runs, 0)
    assert.is(r.gate.ledgerOf(r.chainJobId)?.inflight, 0)
    assert.is(lp(r).inflight, 0)
  } finally { await r.peer.stop() }
})

test('a payer at the credit: the bundle\'s tasks run one at a time, and none is counted refused (review20: the one the pre-pass refused, asked again and run, was)', async () => {
  const r = await rig(1)
  try {
    // delivered one task's full price, nothing signed: at the credit of 1
    const price = leaseTaskPrice(lp(r), 20_000)
    assert.ok((await r.gate.admitTask(lp(r), 20_000)).ok)
    r.gate.finished(lp(r), 20_000, { amount: price.toString(), wallMs: 20_000, cpuMs: 20_000 * Math.max(1, lp(r).cores), gpuSeconds: 0 })
    assert.is(r.gate.ledgerOf(r.chainJobId)?.delivered, price)
    const results = await r.provider.runBundle(Array.from({ length: 3 }, (_, i) => taskOf(r, i, i === 0 ? square : undefined)), r.holder)
    // the first together with a second would pass the credit: the second is asked again once the first ended, and runs (its receipt's units round to 0)
    assert.equal(results.map(x => x.ok === true ? 'ok' : x.code), ['ok', 'ok', 'ok'])
    const row = r.gate.status().find(x => x.chainJobId === r.chainJobId.toLowerCase())
    assert.is(row?.refusals, 0, 'no task was refused')
  } finally { await r.peer.stop() }
})

test.run()
