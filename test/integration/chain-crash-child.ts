// A bridge process for the crash test: `crash` sets up a job and settles it, killing itself
// with SIGKILL at the fault point; `resume` restarts on the same data dir and settles.
// Prints one JSON line for the parent.
//   chain-crash-child.ts crash|resume DATADIR embedded|URL afterBroadcast|beforeBroadcast
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { Bridge, DEV_PRIVATE_KEYS, settlementAbi } from '../../src/chain/index.js'
import { fakeProviders, fakeSignedReceipts } from '../../src/chain/testing.js'
import { openStore } from '../../src/store/db.js'

const [mode, dataDir, chainArg, fault] = process.argv.slice(2)
const store = openStore(join(dataDir, 'node.sqlite'))
const kill = (point: string) => (batchId: string, txHash: string): void => {
  if (mode !== 'crash' || fault !== point) return
  writeSync(1, JSON.stringify({ killedAt: point, batchId, txHash }) + '\n')
  process.kill(process.pid, 'SIGKILL')
}
const bridge = new Bridge({
  store,
  dataDir,
  chain: chainArg === 'embedded' ? { kind: 'embedded' } : { kind: 'rpc', url: chainArg, chainId: 19880818 },
  privateKey: chainArg === 'embedded' ? undefined : DEV_PRIVATE_KEYS[0],
  confirmations: Number(process.env.DBC_TEST_CONFIRMATIONS ?? 1),
  tickMs: 0,
  beforeBroadcast: kill('beforeBroadcast'),
  afterBroadcast: kill('afterBroadcast')
})
await bridge.start()
const jobId = 'crash-job'
const providers = fakeProviders(4, 'crash')
if (mode === 'crash') {
  await bridge.deposit(jobId, 10n ** 18n)
  for (const p of providers) await bridge.stake(1, { provider: p.payoutAddress })
  bridge.submitReceipts(jobId, fakeSignedReceipts(new TextEncoder().encode(jobId), providers, 20, 10n ** 15n))
  await bridge.settleNow(jobId)
  writeSync(1, JSON.stringify({ error: 'the fault point was never reached' }) + '\n')
  process.exit(3)
}
const before = bridge.outboxEntries().map(e => ({ batchId: e.batchId, state: e.state, txHash: e.txHash }))
const results = await bridge.settleNow()
const conn = bridge.connectionInfo
const events = await conn.publicClient.getContractEvents({ address: bridge.contract!, abi: settlementAbi, eventName: 'BatchSettled', fromBlock: 0n })
const paid = await conn.publicClient.getContractEvents({ address: bridge.contract!, abi: settlementAbi, eventName: 'ProviderPaid', fromBlock: 0n })
const credited = await Promise.all(providers.map(async p => (await bridge.payouts({ provider: p.payoutAddress })).withdrawable.toString()))
const status = await bridge.status()
writeSync(1, JSON.stringify({
  before,
  after: results.map(r => ({ batchId: r.batchId, state: r.state, txHash: r.txHash })),
  settledEvents: events.map(e => ({ batchId: e.args.batchId, txHash: e.transactionHash })),
  providerPaidEvents: paid.length,
  credited,
  outbox: status.outbox,
  pendingReceipts: status.pendingReceipts
}) + '\n')
await bridge.stop()
store.close()
