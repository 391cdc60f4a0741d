// The RPC goes down mid-run: batches cut while it is down wait in the outbox (the bridge's own
// loop keeps retrying and reports CHAIN_UNREACHABLE), and settle once anvil is back on the same
// port with its state; every batch exactly once.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Bridge, DEV_PRIVATE_KEYS, settlementAbi, startAnvil, type AnvilHandle } from '../../src/chain/index.js'
import { fakeProviders, fakeSignedReceipts } from '../../src/chain/testing.js'
import { openStore } from '../../src/store/db.js'
import { ChainError } from '../../src/errors.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

test('batches wait in the outbox while the RPC is down and settle when it returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-rpcdown-'))
  const statePath = join(dir, 'anvil-state.json')
  let anvil: AnvilHandle | undefined = await startAnvil({ statePath })
  const store = openStore(join(dir, 'node.sqlite'))
  const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: anvil.url, chainId: 19880818 }, privateKey: DEV_PRIVATE_KEYS[0], confirmations: 1, tickMs: 100, requestTimeoutMs: 1000, batching: { maxReceipts: 10, maxAgeMs: 60_000 } })
  try {
    await bridge.start()
    const providers = fakeProviders(3, 'rpc-down')
    await bridge.deposit('job-down', 10n ** 18n)
    for (const p of providers) await bridge.stake(1, { provider: p.payoutAddress })
    const receipts = fakeSignedReceipts(enc('job-down'), providers, 30, 10n ** 15n)
    bridge.submitReceipts('job-down', receipts.slice(0, 10))
    const first = await bridge.settleNow('job-down')
    assert.equal(first.map(r => r.state), ['confirmed'])

    const port = anvil.port
    await anvil.stop()
    anvil = undefined
    // 20 more receipts: the loop cuts 2 batches (size 10) and can not send them.
    bridge.submitReceipts('job-down', receipts.slice(10))
    await sleep(600)
    const down = await bridge.status()
    assert.is(down.reachable, false)
    assert.is(down.lastError?.code, 'CHAIN_UNREACHABLE')
    assert.is(down.outbox.built, 2, 'two batches wait in the outbox')
    const err = await bridge.settleNow('job-down').then(() => undefined, (e: unknown) => e)
    assert.instance(err, ChainError)
    assert.is((err as ChainError).code, 'CHAIN_UNREACHABLE')

    anvil = await startAnvil({ port, statePath })
    const t0 = Date.now()
    while (Date.now() - t0 < 15_000) {
      const s = await bridge.status()
      if (s.outbox.confirmed === 3) break
      await sleep(100)
    }
    const up = await bridge.status()
    assert.equal(up.outbox, { built: 0, sent: 0, confirmed: 3, conflict: 0 }, 'the loop settled the waiting batches by itself')
    assert.is(up.lastError, undefined)
    const conn = bridge.connectionInfo
    const events = await conn.publicClient.getContractEvents({ address: bridge.contract!, abi: settlementAbi, eventName: 'BatchSettled', fromBlock: 0n })
    const ids = bridge.outboxEntries('job-down').map(e => e.batchId)
    assert.is(ids.length, 3)
    for (const id of ids) assert.is(events.filter(e => e.args.batchId === id).length, 1, `batch ${id} settled once`)
    for (const p of providers) assert.is((await bridge.payouts({ provider: p.payoutAddress })).withdrawable, 10n * 10n ** 15n)
  } finally {
    await bridge.stop()
    store.close()
    await anvil?.stop()
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
