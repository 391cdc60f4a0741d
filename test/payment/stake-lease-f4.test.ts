// Review F4, through the runner: the submitter reads stake. Before, placement and leasing ignored
// whether a provider's payout address had staked, so identities were free: two peers with
// different payout keys (F3's one-owner rule does not join them) could hold both copies of a
// redundancy-2 task and agree on a wrong output. Now an offer whose owner has no stake
// (NOT_STAKED), or too little for the GPUs it offers (STAKE_TOO_LOW, or fewer slots leased), is
// not leased; the stake is read once per owner (src/jobs/stake-reads.ts), and a chain that does
// not answer makes the job wait (STAKE_UNKNOWN), not lease blind.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { JobRunner, type RunnerPayment } from '../../src/jobs/runner.js'
import { JobPayer } from '../../src/jobs/payer.js'
import { PaymentStore } from '../../src/jobs/payment-store.js'
import { StakeReads } from '../../src/jobs/stake-reads.js'
import { openStore } from '../../src/store/db.js'
import { voucherTypedData } from '../../src/core/settlement/voucher.js'
import { payoutBindingTypedData } from '../../src/core/settlement/payout-binding.js'
import type { StakeFigure } from '../../src/core/settlement/stake-check.js'
import type { FakeProvider, FakeProviderInit } from '../../src/jobs/fake-provider.js'
import type { JobEvent, ManifestInput } from '../../src/core/scheduler/index.js'
import { key, manifest, providers, transport } from '../integration/jobs-helpers.js'

const owner = key(1)
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const keys = Array.from({ length: 4 }, () => privateKeyToAccount(generatePrivateKey()))
const addr = (i: number): string => keys[i].address.toLowerCase()
const bindings = await Promise.all([0, 1, 2, 3].map(async i => Uint8Array.from(Buffer.from((await keys[i].signTypedData(payoutBindingTypedData(key(100 + i).peerId, domain))).slice(2), 'hex'))))

/** Provider i, paid to its own key i (bound to its peer id). */
const paidProviders = (n: number, f: (i: number) => Partial<FakeProviderInit> = () => ({})): FakeProvider[] =>
  providers(n, i => ({ slots: 2, delayMs: 2, payoutAddress: addr(i), payoutBinding: bindings[i], ...f(i) }))

let jobSeq = 0
async function runPaid (ps: FakeProvider[], m: Partial<ManifestInput>, stakes: RunnerPayment['stakes'], opts: { waitMs?: number } = {}): Promise<{ summary: Awaited<ReturnType<JobRunner['run']>>, accepted: Array<Extract<JobEvent, { type: 'accepted' }>> }> {
  const tr = transport(ps, owner)
  const jobId = (++jobSeq).toString(16).padStart(2, '0').repeat(32)
  const man = manifest(m)
  const store = new PaymentStore(openStore(':memory:'))
  const payer = new JobPayer({ jobId, jobIdBytes: Uint8Array.from(Buffer.from(jobId, 'hex')), payerAddress: payerKey.address, store, gpus: man.resources.gpu?.count ?? 0, cores: man.resources.cores, timeoutMs: man.task.timeoutMs, sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain)) })
  const payment: RunnerPayment = {
    terms: { chainId: domain.chainId, contract: Uint8Array.from(Buffer.from(domain.verifyingContract.slice(2), 'hex')), chainJobId: new Uint8Array(32), payer: new Uint8Array(20) },
    payer,
    ensureEscrow: async () => {},
    ...(stakes !== undefined ? { stakes } : {})
  }
  const accepted: Array<Extract<JobEvent, { type: 'accepted' }>> = []
  const r = new JobRunner({ jobId, manifest: man, holder: owner, transport: tr, code: new Uint8Array([1]), payment, ...(opts.waitMs !== undefined ? { waitMs: opts.waitMs } : {}), onEvent: e => { if (e.type === 'accepted') accepted.push(e) } })
  try {
    return { summary: await r.run(), accepted }
  } finally {
    tr.close()
  }
}

/** A chain double: the stake of each address (absent: 0), reads counted. */
function chain (staked: Record<string, number>): { reads: StakeReads, calls: () => number } {
  let calls = 0
  const reads = new StakeReads({ now: Date.now, read: async (o) => { calls++; return { gpus: staked[o] ?? 0 } } })
  return { reads, calls: () => calls }
}

test('two unstaked identities with different payout keys get no copy; staked providers run the job, and the wrong output they share is never accepted', async () => {
  const evil = new TextEncoder().encode('the same wrong answer')
  const ps = paidProviders(4, i => i < 2 ? { compute: () => evil, perfScore: 1000 } : {})
  const c = chain({ [addr(2)]: 1, [addr(3)]: 1 })
  const { summary, accepted } = await runPaid(ps, { inputs: { range: { from: 0, to: 19 } }, verification: { redundancy: 2, quorum: 2 } }, async (o, s) => await c.reads.stakesOf(o, s))
  assert.is(summary.status, 'finished', JSON.stringify(summary))
  assert.is(ps[0].tasksRun + ps[1].tasksRun, 0, 'the unstaked (and faster) identities ran nothing')
  assert.is(accepted.filter(e => e.provider === ps[0].id || e.provider === ps[1].id).length, 0)
  assert.ok((summary.refusals?.NOT_STAKED ?? 0) >= 2, `NOT_STAKED in the job's refusals: ${JSON.stringify(summary.refusals)}`)
  assert.ok(c.calls() <= 4, `one chain read per owner, not per offer or round: ${c.calls()} reads for 4 owners`)
})

test('without the stake check (verification.allowUnstaked: no `stakes`) the same colluders do get copies: the check is what keeps them out', async () => {
  const ps = paidProviders(4, i => i < 2 ? { perfScore: 1000 } : {})
  const { summary } = await runPaid(ps, { inputs: { range: { from: 0, to: 19 } }, verification: { redundancy: 2, quorum: 2 } }, undefined)
  assert.is(summary.status, 'finished')
  assert.ok(ps[0].tasksRun + ps[1].tasksRun > 0)
})

test('a stake that does not cover the GPUs one task needs: STAKE_TOO_LOW, no task; one that covers them runs the job', async () => {
  // three: the default spot checks put a second copy of a new provider's task on another one
  const ps = paidProviders(3, i => i === 0 ? { perfScore: 1000 } : {})
  const c = chain({ [addr(0)]: 1, [addr(1)]: 2, [addr(2)]: 2 })
  const { summary } = await runPaid(ps, { inputs: { range: { from: 0, to: 9 } }, resources: { gpu: { count: 2 }, cores: 1, memoryMib: 256, network: false } }, async (o, s) => await c.reads.stakesOf(o, s))
  assert.is(summary.status, 'finished', JSON.stringify(summary))
  assert.is(ps[0].tasksRun, 0, 'staked 1 GPU, offers 2-GPU tasks')
  assert.ok(ps[1].tasksRun + ps[2].tasksRun > 0)
  assert.ok((summary.refusals?.STAKE_TOO_LOW ?? 0) >= 1, JSON.stringify(summary.refusals))
})

test('a stake that covers some of the slots offered: the lease runs only that many tasks at once', async () => {
  const ps = paidProviders(2, () => ({ slots: 4, delayMs: 15 }))
  const max = ps.map(p => { let cur = 0; let top = 0; const run = p.runTask.bind(p); p.runTask = async (t, s) => { cur++; top = Math.max(top, cur); try { return await run(t, s) } finally { cur-- } }; return () => top })
  const c = chain({ [addr(0)]: 1, [addr(1)]: 4 })
  // expectedMs 1000: no read-ahead copies beyond the slots (runner-leases READ_AHEAD_BELOW_MS)
  const { summary } = await runPaid(ps, { inputs: { range: { from: 0, to: 39 } }, resources: { gpu: { count: 1 }, cores: 1, memoryMib: 256, network: false }, task: { timeoutMs: 5000, expectedMs: 1000 } }, async (o, s) => await c.reads.stakesOf(o, s))
  assert.is(summary.status, 'finished', JSON.stringify(summary))
  assert.ok(ps[0].tasksRun > 0, 'the 1-GPU owner works')
  assert.is(max[0](), 1, 'one task at a time on the owner that staked one GPU (offered 4 slots)')
  assert.ok(max[1]() > 1, `the owner that staked 4 runs several at once (${max[1]()})`)
})

test('a chain that cannot be read: offers wait as STAKE_UNKNOWN (nothing leased blind) and the job goes on once it answers', async () => {
  const ps = paidProviders(2)
  let down = 3
  let calls = 0
  const reads = new StakeReads({ now: Date.now, waitMs: 50, read: async (): Promise<StakeFigure> => { calls++; if (down-- > 0) throw new Error('fetch failed (ECONNREFUSED)'); return { gpus: 1 } } })
  const { summary } = await runPaid(ps, { inputs: { range: { from: 0, to: 9 } } }, async (o, s) => await reads.stakesOf(o, s))
  assert.is(summary.status, 'finished', JSON.stringify(summary))
  assert.ok((summary.refusals?.STAKE_UNKNOWN ?? 0) >= 1, JSON.stringify(summary.refusals))
  assert.ok(calls >= 4, `read again after each failure (${calls})`)
})

test('a chain that never answers: the job waits up to its wait, then fails saying the stake could not be read', async () => {
  const ps = paidProviders(2)
  const reads = new StakeReads({ now: Date.now, waitMs: 20, read: async (): Promise<StakeFigure> => await new Promise(() => {}) })
  const { summary } = await runPaid(ps, { inputs: { range: { from: 0, to: 3 } } }, async (o, s) => await reads.stakesOf(o, s), { waitMs: 600 })
  assert.is(summary.status, 'failed')
  assert.is(ps[0].tasksRun + ps[1].tasksRun, 0, 'nothing leased while the stake is unknown')
  assert.match(summary.failures[0]?.reason ?? '', /stake could not be read/)
})

test.run()
