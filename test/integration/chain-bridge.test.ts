// The Bridge end to end, on the embedded EVM and on anvil: receipts verified, batched by the
// policy, settled once; unstaked providers not paid; clear errors for a wrong chain id, an
// unreachable RPC and an unfunded key, with the batch kept in the outbox and settled later.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createWalletClient, http, parseEventLogs } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { Bridge, DEV_PRIVATE_KEYS, dbcChain, settlementAbi, startAnvil, settlementLines, chainStatusLines, walletLines, type AnvilHandle } from '../../src/chain/index.js'
import { fakeProviders, fakeSignedReceipts } from '../../src/chain/testing.js'
import { openStore, type Store } from '../../src/store/db.js'
import { ChainError } from '../../src/errors.js'

const E18 = 10n ** 18n
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const providers = fakeProviders(10, 'bridge-test')
const dirs: string[] = []
const stores: Store[] = []
function tempStore (): { dir: string, store: Store } {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-bridge-'))
  dirs.push(dir)
  const store = openStore(join(dir, 'node.sqlite'))
  stores.push(store)
  return { dir, store }
}

let anvil: AnvilHandle

test('setup anvil', async () => { anvil = await startAnvil() })

for (const kind of ['embedded', 'anvil'] as const) {
  test(`[${kind}] receipts settle once, in policy-sized batches; the unstaked provider is not paid`, async () => {
    const { dir, store } = tempStore()
    const bridge = new Bridge({
      store,
      dataDir: dir,
      chain: kind === 'embedded' ? { kind: 'embedded' } : { kind: 'rpc', url: anvil.url, chainId: 19880818 },
      privateKey: kind === 'anvil' ? DEV_PRIVATE_KEYS[0] : undefined,
      confirmations: 1,
      tickMs: 0,
      batching: { maxReceipts: 40, maxAgeMs: 60_000 }
    })
    await bridge.start()
    try {
      const jobId = `job-${kind}`
      const dep = await bridge.deposit(jobId, 5n * E18)
      assert.is(dep.escrow, 5n * E18)
      for (const p of providers.slice(0, 9)) await bridge.stake(1, { provider: p.payoutAddress })
      const receipts = fakeSignedReceipts(enc(jobId), providers, 100, 10n ** 15n)
      const forged = fakeSignedReceipts(enc('another-job'), providers, 1, 1n)
      const sub = bridge.submitReceipts(jobId, [...receipts, ...forged])
      assert.equal(sub, { accepted: 100, duplicates: 0, rejected: [{ index: 100, reason: 'receipt belongs to another job' }] })
      const results = await bridge.settleNow(jobId)
      assert.is(results.length, 3, '100 receipts at 40 per batch')
      assert.equal(results.map(r => r.receiptCount).sort(), [20, 40, 40])
      for (const r of results) assert.is(r.state, 'confirmed')
      const lines = settlementLines(results).join('\n')
      assert.match(lines, /WITHHELD/)
      // The unstaked provider (index 9) got nothing; each staked one got 10 receipts' worth.
      const unstaked = await bridge.payouts({ provider: providers[9].payoutAddress })
      assert.is(unstaked.totalPaid, 0n)
      assert.is(unstaked.withheld.length, 3)
      const staked = await bridge.payouts({ provider: providers[0].payoutAddress })
      assert.is(staked.totalPaid, 10n * 10n ** 15n)
      assert.is(staked.withdrawable, 10n * 10n ** 15n)
      // Submitting the same receipts again settles nothing new.
      assert.equal(bridge.submitReceipts(jobId, receipts), { accepted: 0, duplicates: 100, rejected: [] })
      assert.is((await bridge.settleNow(jobId)).length, 3)
      const conn = bridge.connectionInfo
      const logs = await conn.publicClient.getContractEvents({ address: bridge.contract!, abi: settlementAbi, eventName: 'BatchSettled', fromBlock: 0n })
      assert.is(logs.filter(l => results.some(r => r.batchId === l.args.batchId)).length, 3, 'one BatchSettled per batch')
      const job = await bridge.job(jobId)
      assert.is(job.escrow, 5n * E18 - 90n * 10n ** 15n, 'escrow pays exactly the staked providers')
      const status = await bridge.status()
      assert.is(status.reachable, true)
      assert.equal(status.outbox, { built: 0, sent: 0, confirmed: 3, conflict: 0 })
      assert.match(chainStatusLines(status).join('\n'), /3 confirmed/)
      assert.match(walletLines(status).join('\n'), /address/)
    } finally {
      await bridge.stop()
    }
  })
}

test('[anvil] wrong chain id: clear error, nothing sent, the batch waits in the outbox', async () => {
  const { dir, store } = tempStore()
  const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: anvil.url, chainId: 1 }, privateKey: DEV_PRIVATE_KEYS[0], tickMs: 0 })
  await bridge.start()
  try {
    assert.is((await bridge.status()).lastError?.code, 'CHAIN_ID_MISMATCH')
    bridge.submitReceipts('job-x', fakeSignedReceipts(enc('job-x'), providers, 3, 1n))
    const err = await bridge.settleNow('job-x').then(() => undefined, (e: unknown) => e)
    assert.instance(err, ChainError)
    assert.is((err as ChainError).code, 'CHAIN_ID_MISMATCH')
    assert.match((err as ChainError).message, /chain id 19880818, but the config says 1/)
    assert.is(bridge.outboxEntries('job-x')[0].state, 'built')
  } finally { await bridge.stop() }
})

test('[rpc] unreachable RPC: clear error, the batch waits in the outbox', async () => {
  const port = await freePort()
  const { dir, store } = tempStore()
  const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: `http://127.0.0.1:${port}`, chainId: 19880818 }, privateKey: DEV_PRIVATE_KEYS[0], tickMs: 0, requestTimeoutMs: 2000 })
  await bridge.start()
  try {
    const st = await bridge.status()
    assert.is(st.reachable, false)
    assert.is(st.lastError?.code, 'CHAIN_UNREACHABLE')
    assert.match(chainStatusLines(st).join('\n'), /UNREACHABLE/)
    bridge.submitReceipts('job-y', fakeSignedReceipts(enc('job-y'), providers, 3, 1n))
    const err = await bridge.settleNow('job-y').then(() => undefined, (e: unknown) => e) as ChainError
    assert.is(err?.code, 'CHAIN_UNREACHABLE')
    assert.ok(err.hint !== undefined && /outbox/.test(err.hint))
    assert.is(bridge.outboxEntries('job-y').length, 1)
    assert.is(bridge.outboxEntries('job-y')[0].state, 'built')
  } finally { await bridge.stop() }
})

test('[anvil] unfunded key: clear error; once funded, the kept batch settles', async () => {
  const { dir, store } = tempStore()
  const key = generatePrivateKey()
  // Deploy with a funded bridge first so the unfunded one only has to settle.
  const funded = tempStore()
  const deployer = new Bridge({ store: funded.store, dataDir: funded.dir, chain: { kind: 'rpc', url: anvil.url, chainId: 19880818 }, privateKey: DEV_PRIVATE_KEYS[1], tickMs: 0, confirmations: 1 })
  await deployer.start()
  const contract = await deployer.ready()
  await deployer.stop()
  const bridge = new Bridge({ store, dataDir: dir, chain: { kind: 'rpc', url: anvil.url, chainId: 19880818 }, privateKey: key, contract, deploy: false, tickMs: 0, confirmations: 1 })
  await bridge.start()
  try {
    const err = await bridge.deposit('job-z', E18).then(() => undefined, (e: unknown) => e) as ChainError
    assert.is(err?.code, 'KEY_UNFUNDED')
    bridge.submitReceipts('job-z', fakeSignedReceipts(enc('job-z'), providers, 3, 1n))
    const err2 = await bridge.settleNow('job-z').then(() => undefined, (e: unknown) => e) as ChainError
    assert.is(err2?.code, 'KEY_UNFUNDED')
    assert.is(bridge.outboxEntries('job-z')[0].state, 'built')
    assert.match(bridge.outboxEntries('job-z')[0].lastError ?? '', /KEY_UNFUNDED/)
    // fund it, deposit, and the kept batch settles
    const faucet = createWalletClient({ chain: dbcChain(), transport: http(anvil.url), account: privateKeyToAccount(DEV_PRIVATE_KEYS[2]) })
    const h = await faucet.sendTransaction({ to: bridge.account, value: 10n * E18 })
    await bridge.connectionInfo.publicClient.waitForTransactionReceipt({ hash: h })
    await bridge.deposit('job-z', E18)
    const res = await bridge.settleNow('job-z')
    assert.is(res[0].state, 'confirmed')
  } finally { await bridge.stop() }
})

test('teardown', async () => {
  await anvil.stop()
  for (const s of stores) s.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function freePort (): Promise<number> {
  return await new Promise(resolve => {
    const srv = createServer()
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port
      srv.close(() => resolve(port))
    })
  })
}

void parseEventLogs
test.run()
