// A provider process for the chain crash tests: `crash` sets up two jobs (a payer deposits and
// signs a voucher for each), accepts the vouchers and redeems them, killing itself with SIGKILL
// at the fault point; `resume` restarts on the same data dir and redeems. Prints JSON lines.
// On the embedded chain the node pays itself (the single-node sandbox).
//   chain-crash-child.ts crash|resume DATADIR embedded|URL afterBroadcast|beforeBroadcast
import { writeSync } from 'node:fs'
import { join } from 'node:path'
import { privateKeyToAccount } from 'viem/accounts'
import { Bridge, DEV_PRIVATE_KEYS, chainJobIdOf, jobHashOf, settlementAbi, type Hex } from '../../src/chain/index.js'
import { openStore } from '../../src/store/db.js'

const [mode, dataDir, chainArg, fault] = process.argv.slice(2)
const chain = chainArg === 'embedded' ? { kind: 'embedded' as const } : { kind: 'rpc' as const, url: chainArg, chainId: 19880818 }
const confirmations = Number(process.env.DBC_TEST_CONFIRMATIONS ?? 1)
const kill = (point: string) => (id: number, txHash: string): void => {
  if (mode !== 'crash' || fault !== point) return
  writeSync(1, JSON.stringify({ killedAt: point, id, txHash }) + '\n')
  process.kill(process.pid, 'SIGKILL')
}
const store = openStore(join(dataDir, 'node.sqlite'))
const provider = new Bridge({
  store,
  dataDir,
  chain,
  privateKey: chainArg === 'embedded' ? undefined : DEV_PRIVATE_KEYS[1],
  contract: process.env.DBC_TEST_CONTRACT as Hex | undefined,
  confirmations,
  tickMs: 0,
  beforeBroadcast: kill('beforeBroadcast'),
  afterBroadcast: kill('afterBroadcast')
})
await provider.start()
const labels = [`${dataDir}:a`, `${dataDir}:b`]
// the escrows are keyed by payer and job: the payer is the provider itself on the embedded chain
const payerAccount = chainArg !== 'embedded' ? privateKeyToAccount(DEV_PRIVATE_KEYS[0]).address : provider.account
const jobs = labels.map(l => chainJobIdOf(l, payerAccount))
const owed = [3n * 10n ** 15n, 5n * 10n ** 15n]
if (mode === 'crash') {
  let payer = provider
  let payerStore
  if (chainArg !== 'embedded') {
    payerStore = openStore(join(dataDir, 'payer.sqlite'))
    payer = new Bridge({ store: payerStore, dataDir: join(dataDir, 'payer'), chain, privateKey: DEV_PRIVATE_KEYS[0], contract: await provider.ready(), confirmations, tickMs: 0 })
    await payer.start()
  }
  if ((await provider.stakeOf()).gpus === 0) await provider.stake(1)
  for (let i = 0; i < jobs.length; i++) {
    await payer.deposit(jobHashOf(labels[i]), 10n ** 18n)
    const sv = await payer.signVoucher({ escrowId: jobs[i], provider: provider.account, cumulative: owed[i], receiptsRoot: `0x${'22'.repeat(32)}`, receiptCount: 4 })
    const r = await provider.acceptVoucher(sv)
    if (!r.ok) throw new Error(r.reason)
  }
  await provider.redeemNow()
  writeSync(1, JSON.stringify({ error: 'the fault point was never reached' }) + '\n')
  process.exit(3)
}
const before = provider.redeemHistory().map(e => ({ id: e.id, state: e.state, txHash: e.txHash }))
await provider.redeemNow()
const conn = provider.connectionInfo
const events = await conn.publicClient.getContractEvents({ address: provider.contract!, abi: settlementAbi, eventName: 'Redeemed', args: { provider: provider.account }, fromBlock: 0n })
const status = await provider.status()
writeSync(1, JSON.stringify({
  before,
  after: provider.redeemHistory().map(e => ({ id: e.id, state: e.state, txHash: e.txHash })),
  redeemed: events.filter(e => jobs.includes(e.args.escrowId as Hex)).map(e => ({ jobId: e.args.escrowId, amount: String(e.args.amount), txHash: e.transactionHash })),
  onChain: await Promise.all(jobs.map(async j => String(await provider.redeemed(j)))),
  owed: owed.map(String),
  jobs,
  redeems: status.redeems
}) + '\n')
await provider.stop()
store.close()
