// `dbc earnings` names the job its provider knows (found by helper user: it listed escrow ids only,
// `0x6ece092a…ea72`, which nothing else the operator sees prints). The payment gate keeps the job's
// id from the lease (grid: hex, as the submitter's `dbc job list` and this provider's log print it)
// or the training invitation (its text, made printable and bounded: peer input) on the ledger row,
// across a restart; the earnings route adds it and the tasks run to each row, and the CLI prints it.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { privateKeyToAccount } from 'viem/accounts'
import { PaymentGate, LEDGER_SAVE_MS, type PaymentPort } from '../../../src/jobs/payment-gate.js'
import { gridJobLabel, trainingJobLabel } from '../../../src/jobs/payment-gate-types.js'
import { ProviderLedgerStore } from '../../../src/jobs/provider-ledger-store.js'
import { escrowKeyOf, type EscrowRead } from '../../../src/core/settlement/credit.js'
import type { VoucherDomain } from '../../../src/core/settlement/voucher.js'
import { bytesFromHex } from '../../../src/core/settlement/hex.js'
import { leaseAuthTypedData } from '../../../src/core/settlement/lease-auth.js'
import { namedEarnings } from '../../../src/chain/earnings.js'
import { earningsLines } from '../../../src/chain/format.js'
import type { EarningsView } from '../../../src/chain/types.js'
import { openStore } from '../../../src/store/db.js'

const payer = privateKeyToAccount(`0x${'11'.repeat(32)}`)
const DOMAIN: VoucherDomain = { chainId: 31337, verifyingContract: `0x${'c'.repeat(40)}` }
const OFFER = { prices: { priceGpuHour: 1, priceCpuHour: 0.05 }, slot: { gpus: 0, cores: 1 } }
const HOLDER = new Uint8Array([0, 36, 8, 1, 18, 32, 9, 9])
/** A grid job id as the submitter makes it: 32 bytes, printed as 64 hex digits. */
const JOB_HEX = '8e006c22ba88717d82fba0d31f89ab40c039992cd14be394ecd7755431c45653'
const JOB = bytesFromHex(`0x${JOB_HEX}`)
const KEY = escrowKeyOf(JOB, payer.address)

const chain: PaymentPort = {
  address: `0x${'ee'.repeat(20)}`,
  domain: () => DOMAIN,
  escrow: async (): Promise<EscrowRead> => ({ payer: payer.address.toLowerCase(), unspent: 10n ** 18n, refunded: false, closedAt: 0, deadline: 0, disputeWindow: 3600 }),
  redeemed: async () => 0n,
  acceptVoucher: async () => {}
}

const lease = async (): Promise<{ jobId: Uint8Array, holder: Uint8Array, payment: object }> => ({
  jobId: JOB,
  holder: HOLDER,
  payment: {
    chainId: DOMAIN.chainId,
    contract: bytesFromHex(DOMAIN.verifyingContract),
    chainJobId: bytesFromHex(KEY),
    payer: bytesFromHex(payer.address),
    holderAuth: bytesFromHex(await payer.signTypedData(leaseAuthTypedData(KEY, HOLDER, DOMAIN)))
  }
})

test('the ledger row keeps the job id the lease named, with the tasks run, across a restart', async () => {
  const store = new ProviderLedgerStore(openStore(':memory:'))
  const gate = new PaymentGate(chain, { ledger: store })
  const lp = await gate.admitLease(await lease(), OFFER)
  assert.ok((await gate.admitTask(lp, 60_000)).ok)
  gate.finished(lp, 60_000, { amount: '1000', wallMs: 10, cpuMs: 10, gpuSeconds: 0 })
  assert.equal(gate.jobOf(KEY), { jobId: JOB_HEX, tasks: 1 })
  assert.is(gate.status()[0].jobId, JOB_HEX, '`dbc node status --json` compute.payments names it too')
  // a small delivery is written within LEDGER_SAVE_MS; then the provider restarts: the row comes back with the job's id
  await new Promise(resolve => setTimeout(resolve, LEDGER_SAVE_MS + 200))
  const again = new PaymentGate(chain, { ledger: store })
  assert.equal(again.jobOf(KEY), { jobId: JOB_HEX, tasks: 1 })
  assert.is(again.jobOf(`0x${'ab'.repeat(32)}`), undefined)
})

test('job ids from peers are bounded and printable', () => {
  assert.is(gridJobLabel(new Uint8Array([0xab, 0x01])), 'ab01')
  assert.is(gridJobLabel(new Uint8Array(0)), undefined)
  assert.is(gridJobLabel(new Uint8Array(1000).fill(0xff)), `${'ff'.repeat(32)}…`)
  assert.is(trainingJobLabel(new TextEncoder().encode('791c31a6069a058c')), '791c31a6069a058c')
  assert.is(trainingJobLabel(new TextEncoder().encode('a\u001b[2Jb\n')), 'a?[2Jb?')
  assert.is(trainingJobLabel(new TextEncoder().encode('x'.repeat(5000))), `${'x'.repeat(64)}…`)
})

test('`dbc earnings` prints the job id (16 digits, as `dbc job list`) and the tasks; the chain job id on the line below', () => {
  const view: EarningsView = {
    account: `0x${'ee'.repeat(20)}`,
    chainId: 31337,
    jobs: [
      { chainJobId: KEY, payer: payer.address, signed: 5n, receiptCount: 5, redeemed: 0n, pending: 5n, receivedAt: 2 },
      { chainJobId: `0x${'ab'.repeat(32)}`, payer: payer.address, signed: 1n, receiptCount: 1, redeemed: 1n, pending: 0n, receivedAt: 1 }
    ],
    totals: { signed: 6n, redeemed: 1n, pending: 5n },
    inFlight: 0
  }
  const named = namedEarnings(view, k => k === KEY ? { jobId: JOB_HEX, tasks: 1000 } : undefined)
  assert.is(named.jobs[0].jobId, JOB_HEX)
  assert.is(named.jobs[0].tasks, 1000)
  assert.is(named.jobs[1].jobId, undefined, 'a voucher no lease of this node named keeps its chain job id only')
  const lines = earningsLines(named)
  const row = lines.find(l => l.startsWith(JOB_HEX.slice(0, 16)))
  assert.ok(row !== undefined, lines.join('\n'))
  assert.match(row, /\s1000\s+5$/)
  assert.ok(lines.includes(`  chain job ${KEY}, payer ${payer.address}`), lines.join('\n'))
  assert.ok(lines.some(l => l.startsWith('0xabababab…abab')), 'the unnamed job by its chain job id')
})

test.run()
