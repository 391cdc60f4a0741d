// The RPC goes down mid-run: the provider keeps accepting vouchers of jobs it knows (a job's payer
// never changes), its redeem loop keeps retrying and reports CHAIN_UNREACHABLE, and once anvil is
// back on the same port with its state the loop redeems by itself: each job paid exactly its
// latest signed total, once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEV_PRIVATE_KEYS, chainJobIdOf, jobHashOf, settlementAbi, startAnvil, type AnvilHandle, type Hex } from '../../src/chain/index.js'
import { ChainError } from '../../src/errors.js'
import { Nodes } from './chain-backends.js'

const E15 = 10n ** 15n
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const ROOT: Hex = `0x${'33'.repeat(32)}`

test('vouchers wait while the RPC is down and are redeemed when it returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-rpcdown-'))
  const statePath = join(dir, 'anvil-state.json')
  let anvil: AnvilHandle | undefined = await startAnvil({ statePath })
  const nodes = new Nodes(anvil.url)
  try {
    const payer = await nodes.node(DEV_PRIVATE_KEYS[0])
    const provider = await nodes.node(DEV_PRIVATE_KEYS[1], { tickMs: 100, requestTimeoutMs: 1000 })
    await provider.stake(1)
    const jobs = [chainJobIdOf('down-a', payer.account), chainJobIdOf('down-b', payer.account)]
    for (const j of ['down-a', 'down-b']) await payer.deposit(jobHashOf(j), 10n ** 18n)
    const sign = async (j: Hex, n: bigint): Promise<void> => {
      const r = await provider.acceptVoucher(await payer.signVoucher({ escrowId: j, provider: provider.account, cumulative: n * E15, receiptsRoot: ROOT, receiptCount: Number(n) }))
      assert.is(r.ok, true, r.ok ? '' : r.reason)
    }
    await sign(jobs[0], 1n)
    await sign(jobs[1], 1n)
    const t0 = Date.now()
    while (Date.now() - t0 < 15_000 && (await provider.redeemed(jobs[0]) < E15 || await provider.redeemed(jobs[1]) < E15)) await sleep(100)
    assert.is(await provider.redeemed(jobs[0]), E15, 'the loop redeemed by itself')

    const port = anvil.port
    await anvil.stop()
    anvil = undefined
    // Newer vouchers arrive while the chain is down: checked against the known payer, kept.
    await sign(jobs[0], 4n)
    await sign(jobs[1], 6n)
    let down = await provider.status()
    const t1 = Date.now()
    while (Date.now() - t1 < 15_000 && down.lastError?.code !== 'CHAIN_UNREACHABLE') { await sleep(100); down = await provider.status() }
    assert.is(down.reachable, false)
    assert.is(down.lastError?.code, 'CHAIN_UNREACHABLE')
    const err = await provider.redeemNow({ waitMs: 0 }).then(() => undefined, (e: unknown) => e)
    assert.instance(err, ChainError)
    assert.is((err as ChainError).code, 'CHAIN_UNREACHABLE')

    anvil = await startAnvil({ port, statePath })
    const t2 = Date.now()
    while (Date.now() - t2 < 20_000) {
      if (await provider.redeemed(jobs[0]).catch(() => 0n) === 4n * E15 && await provider.redeemed(jobs[1]).catch(() => 0n) === 6n * E15) break
      await sleep(100)
    }
    assert.is(await provider.redeemed(jobs[0]), 4n * E15)
    assert.is(await provider.redeemed(jobs[1]), 6n * E15)
    const events = await provider.connectionInfo.publicClient.getContractEvents({ address: nodes.contract!, abi: settlementAbi, eventName: 'Redeemed', args: { provider: provider.account }, fromBlock: 0n })
    for (const [i, total] of [[0, 4n], [1, 6n]] as const) {
      assert.is(events.filter(e => e.args.escrowId === jobs[i]).reduce((s, e) => s + (e.args.amount ?? 0n), 0n), total * E15, `job ${i}: the events add up to the signed total`)
    }
    const t3 = Date.now()
    while (Date.now() - t3 < 5000 && (await provider.status()).lastError !== undefined) await sleep(100)
    const up = await provider.status()
    assert.is(up.lastError, undefined)
    assert.is(up.redeems.sent, 0)
    const e = await provider.earnings()
    assert.is(e.totals.pending, 0n)
  } finally {
    await nodes.stop()
    await anvil?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
