// Issue 13: a submitter and three providers as separate OS processes on ONE anvil. A grid job
// pays each provider what its receipts bill within the offered price (signed vouchers, escrow
// locked first), every receipt bounded by the offer's price for the time the submitter measured,
// and each provider's own node reads its payment from the chain.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decimalToUnits } from '../../src/core/compute/pricing.js'
import { withPaidNetwork, runTiles, redeemAll, redeemedOnChain, PRICE_CPU_HOUR, TASK_TIMEOUT_MS } from './paid-network.js'
import { dbcAsync } from '../helpers/cli.js'

test('a job pays each provider its receipts within its offer; each provider reads its payment from the chain', async () => {
  await withPaidNetwork(3, {}, async (p) => {
    const budget = 5
    // every task on all three providers (all must agree): placement alone may leave one provider idle
    const { jobId, status } = await runTiles(p, { budget: { total: budget, maxPricePerHour: 2 * PRICE_CPU_HOUR }, verification: { redundancy: 3, quorum: 3 } })
    assert.is(status.status, 'finished', JSON.stringify(status.summary?.failures ?? status))
    assert.is(status.summary?.payment?.unit, 'DBC')

    const settle = await p.submitter.api.call<Record<string, any>>('POST', `/v1/jobs/${jobId}/settle`, undefined, { timeoutMs: 120_000 })
    // the escrow was locked before any lease: budget.total plus the providers' reserve (one task at
    // its timeout price per leased offer, refunded at the end), on the shared chain
    const offer = decimalToUnits(PRICE_CPU_HOUR) // one core's slot per hour, smallest units
    const reserve = BigInt(settle.reserve ?? '0')
    assert.ok(reserve > 0n && reserve <= 3n * offer * BigInt(TASK_TIMEOUT_MS) / 3_600_000n + 10n ** 6n, `reserve ${reserve}: one task at its timeout per leased offer`)
    assert.is(BigInt(settle.deposited), decimalToUnits(budget) + reserve)
    assert.is(BigInt(settle.chain.escrow), decimalToUnits(budget) + reserve)
    assert.is(settle.chain.payer.toLowerCase(), p.accounts.get(p.submitter))
    // honest receipts: billed in full, nothing refused
    assert.is(settle.payment.refused, '0', JSON.stringify(settle.payment.refusals))
    assert.ok(BigInt(settle.payment.committed) > 0n, 'the job paid something')
    assert.is(settle.payment.committed, settle.payment.billed)
    const signedTo = new Map<string, bigint>(settle.payment.providers.map((x: Record<string, string>) => [x.payout.toLowerCase(), BigInt(x.signed)]))
    let sum = 0n
    for (const v of signedTo.values()) sum += v
    assert.is(sum, BigInt(settle.payment.committed), 'every payable amount is signed')
    const working = p.providers.filter(n => signedTo.has(p!.accounts.get(n)!))
    // each receipt was bounded: paid = min(billed, the offer's price for min(measured, timeout))
    const receipts = settle.payment.receipts as Array<{ provider: string, billed: string, paid: string, limit: string, measuredMs?: number }>
    assert.ok(receipts.length > 0)
    for (const r of receipts) {
      assert.ok(r.measuredMs !== undefined && r.measuredMs > 0, `receipt ${JSON.stringify(r)} records the measured time`)
      const timeCap = offer * BigInt(Math.ceil(Math.min(r.measuredMs, TASK_TIMEOUT_MS))) / 3_600_000n
      const want = BigInt(r.billed) < timeCap ? BigInt(r.billed) : timeCap
      assert.is(BigInt(r.paid), want, `receipt ${JSON.stringify(r)}: paid min(billed, ${timeCap})`)
    }
    if (working.length < 3) {
      const explain = await p.submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}/explain?task=0`)
      process.stderr.write(`task 0: ${JSON.stringify(explain.task?.copies)}\nstatus: ${JSON.stringify(status)}\nsettle: ${JSON.stringify(settle)}\n`)
    }
    assert.is(working.length, 3, `${working.length} of 3 providers were paid`)
    for (const node of p.providers) assert.ok((signedTo.get(p.accounts.get(node)!) ?? 0n) > 0n, `${node.spec.name} was paid`)

    // each provider redeems with its own key, and reads its payment through its own node
    const rows = await redeemAll(p, settle.chainJobId, working)
    const { contract } = await p.submitter.api.call<{ contract: string }>('GET', '/v1/wallet')
    for (const node of working) {
      const account = p.accounts.get(node)!
      const row = rows.get(node)
      assert.ok(row !== undefined, `${node.spec.name} has an earnings row for the job`)
      assert.is(BigInt(row.signed), signedTo.get(account), `${node.spec.name}: the voucher it holds is what the submitter signed`)
      assert.is(BigInt(row.redeemed), signedTo.get(account), `${node.spec.name}: redeemed all of it`)
      assert.is(await redeemedOnChain(p, contract, settle.chainJobId, account), signedTo.get(account), 'and the contract agrees')
    }
    // what the providers redeemed left the escrow; the submitter's view sees it too
    const after = await p.submitter.api.call<Record<string, any>>('GET', `/v1/jobs/${jobId}/payments`)
    assert.is(BigInt(after.chain.paid), sum)
    assert.ok(after.closedAt !== undefined, 'the job was closed on chain at its end')

    // a closed job takes no more escrow: refused at once, before any question of confirmation
    // (a top-up past budget.total needing --yes: test/unit/node/job-payments.test.ts)
    const refused = await p.submitter.api.call('POST', `/v1/jobs/${jobId}/top-up`, { amount: '0.5', allowTopUp: true }).then(() => undefined, (err: { code?: string }) => err)
    assert.is(refused?.code, 'JOB_CLOSED')
    // `dbc job list` shows the job with what it paid, in DBC
    const list = await dbcAsync(['--data-dir', p.submitter.dataDir, 'job', 'list'], { timeoutMs: 60_000 })
    assert.is(list.code, 0, list.stderr)
    assert.match(list.stdout, /KIND/)
    assert.match(list.stdout, new RegExp(`${jobId.slice(0, 16)}\\s+grid`))
    assert.match(list.stdout, /\d DBC/)
  })
})

test.run()
