// A paid job's start: the escrow deposit and the opening of the leases overlap (the transport
// opens its way to each provider while the deposit is mined), but no lease reaches a provider
// before the deposit is done, and a failed deposit sends none and ends the job.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { JobRunner, type RunnerPayment } from '../../../src/jobs/runner.js'
import { JobPayer } from '../../../src/jobs/payer.js'
import { PaymentStore } from '../../../src/jobs/payment-store.js'
import { LocalTransport, type LocalProvider } from '../../../src/jobs/index.js'
import { openStore } from '../../../src/store/db.js'
import { voucherTypedData } from '../../../src/core/settlement/voucher.js'
import { payoutBindingTypedData } from '../../../src/core/settlement/payout-binding.js'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { key, manifest, providers } from '../../integration/jobs-helpers.js'

const owner = key(1)
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const payoutKey = privateKeyToAccount(generatePrivateKey())
const bindingOf = async (peer: Uint8Array): Promise<Uint8Array> => Uint8Array.from(Buffer.from((await payoutKey.signTypedData(payoutBindingTypedData(peer, domain))).slice(2), 'hex'))
const turns = async (n: number): Promise<void> => { for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve)) }

function payment (jobId: string, m: ReturnType<typeof manifest>, ensureEscrow: () => Promise<void>): RunnerPayment {
  const payer = new JobPayer({
    jobId, jobIdBytes: Uint8Array.from(Buffer.from(jobId, 'hex')), payerAddress: payerKey.address, store: new PaymentStore(openStore(':memory:')), gpus: 0, cores: m.resources.cores, timeoutMs: m.task.timeoutMs,
    sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain))
  })
  return { terms: { chainId: domain.chainId, contract: Uint8Array.from(Buffer.from(domain.verifyingContract.slice(2), 'hex')), chainJobId: new Uint8Array(32), payer: new Uint8Array(20) }, payer, ensureEscrow }
}

/** Records when the runner asks for each lease (the transport may open its stream then) and when a provider gets it. */
async function setup (events: string[]): Promise<LocalTransport> {
  // two providers of one payout key (bound to each peer): payable, as a paid job requires
  const ps = providers(2, () => ({ slots: 2, payoutAddress: payoutKey.address.toLowerCase() }))
  for (const p of ps) Object.assign((p as unknown as { init: { payoutBinding?: Uint8Array } }).init, { payoutBinding: await bindingOf(p.peerId) })
  const locals: LocalProvider[] = ps.map((p, i) => ({
    id: `p${i}`,
    offer: (req, sender) => p.offer(req, sender),
    openLease: (lease, sender) => { events.push(`lease reached p${i}`); p.openLease(lease, sender) },
    runTask: async (task, sender) => await p.runTask(task, sender),
    closeLease: (id) => { p.closeLease(id) }
  }))
  class Recording extends LocalTransport {
    override async openLease (provider: string, lease: dbc.task.v1.ILease, opts: { ready?: Promise<unknown> } = {}): Promise<void> {
      events.push(`lease asked ${provider}`)
      await super.openLease(provider, lease, opts)
    }
  }
  return new Recording(locals, { sender: owner.peerId, heartbeatMs: 100 })
}

test('the leases are asked for while the deposit is mined; none reaches a provider before it is done', async () => {
  const events: string[] = []
  const tr = await setup(events)
  const jobId = 'e1'.repeat(32)
  const man = manifest({ inputs: { range: { from: 0, to: 9 } }, verification: { mode: 'off' } })
  const pay = payment(jobId, man, async () => { events.push('deposit sent'); await turns(20); events.push('deposit mined') })
  const summary = await new JobRunner({ jobId, manifest: man, holder: owner, transport: tr, code: new Uint8Array([1]), payment: pay }).run()
  tr.close()
  assert.is(summary.status, 'finished')
  const mined = events.indexOf('deposit mined')
  const asked = events.flatMap((e, i) => e.startsWith('lease asked') ? [i] : [])
  const reached = events.flatMap((e, i) => e.startsWith('lease reached') ? [i] : [])
  assert.is(asked.length, 2, events.join(', '))
  assert.ok(asked.every(i => i < mined), `asked while the deposit is mined: ${events.join(', ')}`)
  assert.is(reached.length, 2)
  assert.ok(reached.every(i => i > mined), `no lease before the deposit: ${events.join(', ')}`)
})

test('a failed deposit: no lease reaches a provider, no task runs, the job ends saying why', async () => {
  const events: string[] = []
  const tr = await setup(events)
  const jobId = 'e2'.repeat(32)
  const man = manifest({ inputs: { range: { from: 0, to: 9 } }, verification: { mode: 'off' } })
  const pay = payment(jobId, man, async () => { await turns(20); throw new Error('KEY_UNFUNDED: the bridge account holds 0 wei') })
  const summary = await new JobRunner({ jobId, manifest: man, holder: owner, transport: tr, code: new Uint8Array([1]), payment: pay }).run()
  tr.close()
  assert.is(summary.status, 'failed')
  assert.is(summary.done, 0)
  assert.is(summary.copies, 0)
  assert.ok(events.some(e => e.startsWith('lease asked')), events.join(', '))
  assert.not.ok(events.some(e => e.startsWith('lease reached')), events.join(', '))
  assert.match(JSON.stringify(summary), /no escrow: KEY_UNFUNDED/)
})

test.run()
