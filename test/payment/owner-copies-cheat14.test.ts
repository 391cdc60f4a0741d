// Review s14 (cheat) F3, through the runner: two provider peers whose offers name one payout
// address, each with that key's binding to its own peer id (one operator, two identities, one
// stake), return the same wrong output. With redundancy 2 they could hold both copies of a task
// and agree with each other: the runner accepted their output. Now a paid lease names its bound
// payout as the lease's owner (runner-leases.ts), and the job machine keeps a task's copies on
// distinct owners: every task is checked by an honest provider, no wrong output is accepted.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { JobRunner, type RunnerPayment } from '../../src/jobs/runner.js'
import { JobPayer } from '../../src/jobs/payer.js'
import { PaymentStore } from '../../src/jobs/payment-store.js'
import { openStore } from '../../src/store/db.js'
import { voucherTypedData } from '../../src/core/settlement/voucher.js'
import { payoutBindingTypedData } from '../../src/core/settlement/payout-binding.js'
import type { JobEvent } from '../../src/core/scheduler/index.js'
import { key, manifest, providers, transport } from '../integration/jobs-helpers.js'

const owner = key(1)
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const keys = Array.from({ length: 4 }, () => privateKeyToAccount(generatePrivateKey()))
/** Peer i's payout: the colluders 0 and 1 share key 0 (bound to each of them), 2 and 3 their own. */
const payoutKeyOf = (i: number): number => i < 2 ? 0 : i
const bind = async (i: number): Promise<Uint8Array> => Uint8Array.from(Buffer.from((await keys[payoutKeyOf(i)].signTypedData(payoutBindingTypedData(key(100 + i).peerId, domain))).slice(2), 'hex'))
const bindings = await Promise.all([0, 1, 2, 3].map(bind))

test('two peers of one payout key never hold both copies of a task: their shared wrong output is not accepted', async () => {
  const evil = new TextEncoder().encode('the same wrong answer')
  const ps = providers(4, i => ({ slots: 2, delayMs: 2, payoutAddress: keys[payoutKeyOf(i)].address.toLowerCase(), payoutBinding: bindings[i], ...(i < 2 ? { compute: () => evil } : {}) }))
  const tr = transport(ps, owner)
  const jobId = 'c5'.repeat(32)
  const m = manifest({ inputs: { range: { from: 0, to: 39 } }, verification: { redundancy: 2, quorum: 2 } })
  const store = new PaymentStore(openStore(':memory:'))
  const payer = new JobPayer({ jobId, jobIdBytes: Uint8Array.from(Buffer.from(jobId, 'hex')), payerAddress: payerKey.address, store, gpus: 0, cores: m.resources.cores, timeoutMs: m.task.timeoutMs, sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain)) })
  const payment: RunnerPayment = {
    terms: { chainId: domain.chainId, contract: Uint8Array.from(Buffer.from(domain.verifyingContract.slice(2), 'hex')), chainJobId: new Uint8Array(32), payer: new Uint8Array(20) },
    payer,
    ensureEscrow: async () => {}
  }
  const accepted: Array<Extract<JobEvent, { type: 'accepted' }>> = []
  const r = new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment, onEvent: e => { if (e.type === 'accepted') accepted.push(e) } })
  const summary = await r.run()
  tr.close()
  const colluders = new Set([ps[0].id, ps[1].id])
  assert.ok(accepted.length > 0, JSON.stringify(summary))
  const wrong = accepted.filter(e => colluders.has(e.provider))
  assert.is(wrong.length, 0, `tasks accepted on the colluders' shared output: ${wrong.map(e => e.index).join(', ')}`)
  assert.ok(ps[0].tasksRun + ps[1].tasksRun > 0, 'the colluders did get copies (one per task at most)')
})

test.run()
