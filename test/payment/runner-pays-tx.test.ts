// The runner pays in its steps' transactions (the daemon's layout: jobs and payments in one node
// store): while the pump runs, the copies queued for payment are recorded inside the next step's
// transaction, one commit for both, and their vouchers leave only once it is committed; a batch
// the payer refuses half-way is undone alone (a savepoint), the step's rows commit and the job runs on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { JobRunner, type RunnerPayment } from '../../src/jobs/runner.js'
import { JobPayer } from '../../src/jobs/payer.js'
import { JobStore } from '../../src/jobs/store.js'
import { PaymentStore } from '../../src/jobs/payment-store.js'
import { openStore, type Store } from '../../src/store/db.js'
import { voucherTypedData } from '../../src/core/settlement/voucher.js'
import { payoutBindingTypedData } from '../../src/core/settlement/payout-binding.js'
import type { FakeProvider } from '../../src/jobs/index.js'
import { key, manifest, providers, transport } from '../integration/jobs-helpers.js'

const owner = key(1)
const domain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }
const payerKey = privateKeyToAccount(generatePrivateKey())
const payoutKeys = Array.from({ length: 4 }, () => privateKeyToAccount(generatePrivateKey()))
const bindings = await Promise.all(payoutKeys.map(async (k, i) => Uint8Array.from(Buffer.from((await k.signTypedData(payoutBindingTypedData(key(100 + i).peerId, domain))).slice(2), 'hex'))))

interface Run { node: Store, pay: PaymentStore, payer: JobPayer, payMany: Array<{ inTransaction: boolean, copies: number }>, voucherSentInTransaction: number, errors: string[], status: string, billed: number }

async function runJob (jobId: string, opts: { failSecondRow?: boolean } = {}): Promise<Run> {
  // one node store for jobs and payments, as the daemon opens it (src/node/jobs-subsystem.ts)
  const node = openStore(':memory:')
  const jobs = new JobStore(node)
  const pay = new PaymentStore(node)
  const ps: FakeProvider[] = providers(4, i => ({ payoutAddress: payoutKeys[i].address.toLowerCase(), payoutBinding: bindings[i], slots: 2, delayMs: 2 }))
  const out: Run = { node, pay, payer: undefined as unknown as JobPayer, payMany: [], voucherSentInTransaction: 0, errors: [], status: '', billed: 0 }
  for (const p of ps) Object.assign(p, { acceptVoucher: (w: unknown) => { if (node.db.isTransaction) out.voucherSentInTransaction++; return w } })
  const tr = transport(ps, owner)
  const m = manifest({ inputs: { range: { from: 0, to: 119 } }, verification: { mode: 'off' } })
  const payer = new JobPayer({
    jobId, jobIdBytes: Uint8Array.from(Buffer.from(jobId, 'hex')), payerAddress: payerKey.address, store: pay, gpus: 0, cores: m.resources.cores, timeoutMs: m.task.timeoutMs,
    sign: async (v) => await payerKey.signTypedData(voucherTypedData(v, domain))
  })
  out.payer = payer
  const payMany = payer.payMany.bind(payer)
  let row = 0
  payer.payMany = (inputs) => { row = 0; out.payMany.push({ inTransaction: node.db.isTransaction, copies: inputs.length }); return payMany(inputs) }
  if (opts.failSecondRow === true) {
    // the second payment row of the first batch of several copies throws, after the first was written
    let failed = false
    const add = pay.addPayment.bind(pay)
    pay.addPayment = (j, p) => { if (++row === 2 && !failed) { failed = true; throw new Error('disk says no') } return add(j, p) }
  }
  const payment: RunnerPayment = {
    terms: { chainId: domain.chainId, contract: Uint8Array.from(Buffer.from(domain.verifyingContract.slice(2), 'hex')), chainJobId: new Uint8Array(32), payer: new Uint8Array(20) },
    payer,
    ensureEscrow: async () => {},
    onError: (err) => { out.errors.push(err.message) }
  }
  const summary = await new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), payment, store: jobs }).run()
  await payer.idle() // the final vouchers are signed and sent after the job's end
  tr.close()
  out.status = summary.status
  out.billed = jobs.accounting(jobId).billed
  return out
}

/** Payment rows per payout against its intended total and count: equal unless a batch half-committed. */
function consistent (r: Run, jobId: string): void {
  for (const v of r.pay.vouchers(jobId)) {
    const rows = r.pay.payments(jobId, v.payout).filter(p => p.payable > 0n)
    assert.is(rows.length, v.receiptCount, `payout ${v.payout}: its rows are what its total counts`)
    assert.is(rows.reduce((a, p) => a + p.payable, 0n), v.cumulative, `payout ${v.payout}: its total is the sum of its rows`)
  }
}

test('while the pump runs, payments are recorded in its steps\' transactions (no commit of their own); vouchers leave after the commit', async () => {
  const jobId = 'd1'.repeat(32)
  const r = await runJob(jobId)
  assert.is(r.status, 'finished')
  const inside = r.payMany.filter(c => c.inTransaction)
  assert.ok(inside.length > 0, `payMany calls: ${JSON.stringify(r.payMany)}`)
  // only the copies settled in the job's last step can be left to a batch of their own (after the pump stopped)
  assert.ok(r.payMany.filter(c => !c.inTransaction).length <= 1, JSON.stringify(r.payMany))
  assert.is(r.voucherSentInTransaction, 0, 'no voucher is sent from inside a transaction')
  assert.is(r.pay.payments(jobId).length, r.billed, 'every billed copy was paid')
  consistent(r, jobId)
  assert.equal(r.errors, [])
})

test('a payment batch that throws half-way is undone alone: the step it rode in commits, the job finishes, no payout counts rows it lacks', async () => {
  const jobId = 'd2'.repeat(32)
  const r = await runJob(jobId, { failSecondRow: true })
  assert.is(r.status, 'finished')
  assert.ok(r.errors.some(e => e.includes('disk says no')), `onError: ${JSON.stringify(r.errors)}`)
  // the failed batch left no row: fewer payments than billed copies (a restart's catch-up pays them), and every total matches its rows
  const rows = r.pay.payments(jobId).length
  assert.ok(rows < r.billed, `${rows} payment rows for ${r.billed} billed copies`)
  consistent(r, jobId)
  // the job's own rows committed: every task is stored done
  assert.is((r.node.db.prepare('SELECT COUNT(*) AS n FROM job_tasks WHERE job_id = ? AND status = ?').get(jobId, 'done') as { n: number }).n, 120)
})

test.run()
