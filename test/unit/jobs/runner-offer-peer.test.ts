// Paid leases go to the peer that answered, on its own signed offer: a peer replaying another's
// offer and payout binding gets no lease and is no payee (OFFER_FORGED); a provider whose offers
// carry no binding yet (still signing it) counts as BUSY for a while, so the job waits for it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { base58btc } from 'multiformats/bases/base58'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { JobRunner, type RunnerPayment } from '../../../src/jobs/runner.js'
import { JobPayer } from '../../../src/jobs/payer.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { LocalTransport, type FakeProvider, type LocalProvider } from '../../../src/jobs/index.js'
import { answeringPeer } from '../../../src/jobs/runner-leases.js'
import { openStore } from '../../../src/store/db.js'
import { voucherTypedData } from '../../../src/core/settlement/voucher.js'
import { payoutBindingTypedData } from '../../../src/core/settlement/payout-binding.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { key, manifest, providers } from '../../integration/jobs-helpers.js'

const owner = key(1)
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const payoutKey = privateKeyToAccount(generatePrivateKey())
const payout = payoutKey.address.toLowerCase()
const bindingOf = async (peer: Uint8Array): Promise<Uint8Array> => Uint8Array.from(Buffer.from((await payoutKey.signTypedData(payoutBindingTypedData(peer, domain))).slice(2), 'hex'))
const peerIdString = (bytes: Uint8Array): string => base58btc.baseEncode(bytes)

function payment (jobId: string, m: ReturnType<typeof manifest>): { payment: RunnerPayment, payer: JobPayer } {
  const payer = new JobPayer({
    jobId, jobIdBytes: Uint8Array.from(Buffer.from(jobId, 'hex')), payerAddress: payerKey.address, store: new PaymentStore(openStore(':memory:')), gpus: 0, cores: m.resources.cores, timeoutMs: m.task.timeoutMs,
    sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain))
  })
  return {
    payer,
    payment: { terms: { chainId: domain.chainId, contract: Uint8Array.from(Buffer.from(domain.verifyingContract.slice(2), 'hex')), chainJobId: new Uint8Array(32), payer: new Uint8Array(20) }, payer, ensureEscrow: async () => {} }
  }
}

/** A FakeProvider under its libp2p peer id string (what the libp2p transport names providers by). */
function asPeer (p: FakeProvider): LocalProvider {
  return {
    id: peerIdString(p.peerId),
    offer: (req, sender) => p.offer(req, sender),
    openLease: (lease, sender) => { p.openLease(lease, sender) },
    runTask: async (task, sender) => await p.runTask(task, sender),
    closeLease: (id) => { p.closeLease(id) }
  }
}

test('answeringPeer: libp2p Ed25519 ids give their bytes; in-process ids give none', () => {
  const k = key(7)
  assert.equal(answeringPeer(peerIdString(k.peerId)), k.peerId)
  assert.is(answeringPeer('fa12bc34de56ef78'), undefined)
  assert.is(answeringPeer('child-1'), undefined)
})

test('a peer replaying an honest provider\'s offer and payout binding gets no lease and is no payee (OFFER_FORGED)', async () => {
  const [honest, mallory] = providers(2, () => ({ slots: 2, payoutAddress: payout }))
  Object.assign((honest as unknown as { init: { payoutBinding?: Uint8Array } }).init, { payoutBinding: await bindingOf(honest.peerId) })
  const h = asPeer(honest)
  let malloryLeases = 0
  let malloryTasks = 0
  // mallory forwards the honest provider's own signed offer (its binding included) and accepts any lease
  const m: LocalProvider = {
    id: peerIdString(mallory.peerId),
    offer: (req, sender) => honest.offer(req, sender),
    openLease: () => { malloryLeases++ },
    runTask: async (task) => { malloryTasks++; return { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code: 'TASK_REFUSED', error: 'mallory' } }
  }
  const tr = new LocalTransport([h, m], { sender: owner.peerId, heartbeatMs: 100 })
  const jobId = 'd1'.repeat(32)
  const man = manifest({ inputs: { range: { from: 0, to: 9 } }, verification: { mode: 'off' } })
  const s = payment(jobId, man)
  const summary = await new JobRunner({ jobId, manifest: man, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment }).run()
  tr.close()
  assert.is(summary.status, 'finished')
  assert.is(malloryLeases, 0, 'the replayer got no lease')
  assert.is(malloryTasks, 0, 'and no task')
  assert.equal(s.payer.providersOf(payout), [h.id], 'only the peer the binding names is paid through the address')
  assert.ok((summary.refusals?.OFFER_FORGED ?? 0) > 0, JSON.stringify(summary.refusals))
  assert.is(honest.tasksRun, 10)
})

test('a provider whose offers carry no payout binding yet counts as BUSY: the job waits for the binding', async () => {
  // the same key twice: without a binding for its first offers, then with it (the binding was being signed)
  const [early] = providers(1, () => ({ slots: 2, payoutAddress: payout }))
  const [late] = providers(1, () => ({ slots: 2, payoutAddress: payout }))
  Object.assign((late as unknown as { init: { payoutBinding?: Uint8Array } }).init, { payoutBinding: await bindingOf(late.peerId) })
  let offers = 0
  const current = (): FakeProvider => offers > 3 ? late : early
  const p: LocalProvider = {
    id: early.id,
    offer: (req: dbc.task.v1.ILeaseRequest, sender?: Uint8Array) => { offers++; return current().offer(req, sender) },
    openLease: (lease, sender) => { current().openLease(lease, sender) },
    runTask: async (task, sender) => await current().runTask(task, sender),
    closeLease: (id) => { current().closeLease(id) }
  }
  const tr = new LocalTransport([p], { sender: owner.peerId, heartbeatMs: 100 })
  const jobId = 'd2'.repeat(32)
  const man = manifest({ inputs: { range: { from: 0, to: 5 } }, verification: { mode: 'off' } })
  const s = payment(jobId, man)
  const summary = await new JobRunner({ jobId, manifest: man, holder: owner, transport: tr, code: new Uint8Array([1]), payment: s.payment }).run()
  tr.close()
  assert.is(summary.status, 'finished')
  assert.is(late.tasksRun, 6)
  assert.ok((summary.refusals?.BUSY ?? 0) >= 3, `the unbound offers counted as busy: ${JSON.stringify(summary.refusals)}`)
  assert.is(summary.refusals?.PAYOUT_NOT_BOUND, undefined)
})

test.run()
