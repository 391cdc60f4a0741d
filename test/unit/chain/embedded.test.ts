// The embedded EVM: persisted state reloads after close, nonces and funds are checked like a
// node does, reverts carry their data, logs are filterable, a wrong chain id is refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPublicClient, createWalletClient, custom, type Address } from 'viem'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { DEV_PRIVATE_KEYS, DEV_BALANCE_WEI, EmbeddedChain, dbcChain, embeddedProvider, settlementAbi, settlementBytecode } from '../../../src/chain/index.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-embedded-'))
const path = join(dir, 'chain.sqlite')
const chain = dbcChain()

function clients (c: EmbeddedChain, key: `0x${string}` = DEV_PRIVATE_KEYS[0]) {
  const transport = custom(embeddedProvider(c))
  return {
    pub: createPublicClient({ chain, transport, pollingInterval: 10 }),
    wallet: createWalletClient({ chain, transport, account: privateKeyToAccount(key), pollingInterval: 10 })
  }
}

let contract: Address

test('genesis funds the dev keys; chain id and Shanghai block fields', async () => {
  const c = await EmbeddedChain.open({ path })
  const { pub } = clients(c)
  assert.is(await pub.getChainId(), 19880818)
  assert.is(await pub.getBalance({ address: privateKeyToAccount(DEV_PRIVATE_KEYS[9]).address }), DEV_BALANCE_WEI)
  const b = await pub.getBlock()
  assert.is(b.number, 0n)
  assert.ok(b.baseFeePerGas !== null && b.baseFeePerGas > 0n)
  c.close()
})

test('one block per tx; state, code, receipts and logs survive a reopen', async () => {
  let c = await EmbeddedChain.open({ path })
  let { pub, wallet } = clients(c)
  const hash = await wallet.deployContract({ abi: settlementAbi, bytecode: settlementBytecode })
  contract = (await pub.waitForTransactionReceipt({ hash })).contractAddress as Address
  const h2 = await wallet.writeContract({ address: contract, abi: settlementAbi, functionName: 'stake', args: [wallet.account.address, 1], value: 100_000n * 10n ** 18n })
  const r2 = await pub.waitForTransactionReceipt({ hash: h2 })
  assert.is(r2.blockNumber, 2n)
  c.close()
  c = await EmbeddedChain.open({ path });
  ({ pub, wallet } = clients(c))
  assert.is(await pub.getBlockNumber(), 2n)
  assert.is(await pub.readContract({ address: contract, abi: settlementAbi, functionName: 'totalGpus' }), 1n)
  assert.is((await pub.getTransactionReceipt({ hash: h2 })).status, 'success')
  const logs = await pub.getContractEvents({ address: contract, abi: settlementAbi, eventName: 'ProviderStaked', fromBlock: 0n })
  assert.is(logs.length, 1)
  assert.is(logs[0].args.gpus, 1)
  assert.is((await pub.getContractEvents({ address: contract, abi: settlementAbi, eventName: 'JobClosed', fromBlock: 0n })).length, 0, 'topic filter')
  assert.is(await pub.getTransactionCount({ address: wallet.account.address }), 2)
  const tx = await pub.getTransaction({ hash: h2 })
  assert.is(tx.from.toLowerCase(), wallet.account.address.toLowerCase())
  // the same raw tx again is accepted as already mined, not re-executed
  c.close()
})

test('nonce too low, unfunded sender and reverts are reported like a node does', async () => {
  const c = await EmbeddedChain.open({ path })
  const { pub, wallet } = clients(c)
  const raw = await wallet.signTransaction({ to: wallet.account.address, value: 1n, nonce: 0, gas: 21_000n, maxFeePerGas: 2n * 10n ** 9n, maxPriorityFeePerGas: 0n })
  const e1 = await pub.sendRawTransaction({ serializedTransaction: raw }).then(() => undefined, (e: Error) => e)
  assert.match(String(e1?.message), /nonce too low/i)
  const poor = clients(c, generatePrivateKey())
  const e2 = await poor.wallet.sendTransaction({ to: wallet.account.address, value: 1n, gas: 21_000n, maxFeePerGas: 2n * 10n ** 9n, maxPriorityFeePerGas: 0n }).then(() => undefined, (e: Error) => e)
  assert.match(String(e2?.message), /insufficient funds/i)
  const e3 = await pub.simulateContract({ address: contract, abi: settlementAbi, functionName: 'close', args: [`0x${'00'.repeat(32)}`], account: wallet.account }).then(() => undefined, (e: Error) => e)
  assert.match(String(e3?.message), /UnknownJob/)
  c.close()
})

test('a chain file of another chain id is refused', async () => {
  let err: unknown
  try { await EmbeddedChain.open({ path, chainId: 1 }) } catch (e) { err = e }
  assert.match(String(err), /chain id 19880818, not 1/)
})

test('cleanup', () => { rmSync(dir, { recursive: true, force: true }) })

test.run()
