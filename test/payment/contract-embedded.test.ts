// Settlement v4 on the embedded EVM (the single-node sandbox chain): the EIP-712 digest, the
// ecrecover path and the core voucher rules behave as on anvil (contract.test.ts has them all).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createPublicClient, createWalletClient, custom, keccak256, toHex, type Address, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { DEV_PRIVATE_KEYS, EmbeddedChain, dbcChain, embeddedProvider, settlementAbi, settlementBytecode } from '../../src/chain/index.js'
import { voucherDigest, type Voucher } from '../../src/core/settlement/voucher.js'
import { escrowIdOfHash } from '../../src/core/settlement/batch.js'
import { E18, redeemArgs, revertOf, signVoucher, type Wallet } from './chain-fixture.js'

let chain: EmbeddedChain
let contract: Address
const c = dbcChain()
let transport: ReturnType<typeof custom>
let pub: ReturnType<typeof createPublicClient>
const wallet = (i: number): Wallet => createWalletClient({ chain: c, transport, account: privateKeyToAccount(DEV_PRIVATE_KEYS[i]) })
const send = async (w: Wallet, functionName: string, args: readonly unknown[], value?: bigint): Promise<bigint> => {
  const hash = await w.writeContract({ address: contract, abi: settlementAbi, functionName, args, value } as never)
  const r = await pub.waitForTransactionReceipt({ hash, pollingInterval: 10 })
  assert.is(r.status, 'success', functionName)
  return r.gasUsed * r.effectiveGasPrice
}
const read = async <T>(functionName: string, args: readonly unknown[]): Promise<T> => await pub.readContract({ address: contract, abi: settlementAbi, functionName, args } as never) as T

test('deploy on the embedded EVM', async () => {
  chain = await EmbeddedChain.open({ path: ':memory:' })
  transport = custom(embeddedProvider(chain), { retryCount: 0 })
  pub = createPublicClient({ chain: c, transport })
  const hash = await wallet(0).deployContract({ abi: settlementAbi, bytecode: settlementBytecode })
  contract = (await pub.waitForTransactionReceipt({ hash, pollingInterval: 10 })).contractAddress as Address
  assert.ok(contract)
})

test('voucher digest, redeem once, replay pays nothing, forged and early refund revert', async () => {
  const payer = wallet(0)
  const provider = wallet(1)
  const domain = { chainId: c.id, verifyingContract: contract }
  const hash = keccak256(toHex('embedded-job'))
  // the escrow id: keyed by payer and job (escrowIdOf on chain = the TS one)
  const jobId = escrowIdOfHash(payer.account.address, hash)
  assert.is(await read<Hex>('escrowIdOf', [payer.account.address, hash]), jobId)
  const v: Voucher = { escrowId: jobId, provider: provider.account.address, cumulative: 2n * E18, receiptsRoot: `0x${'11'.repeat(32)}` as Hex, receiptCount: 3 }
  assert.is(await read<Hex>('voucherDigest', [v]), voucherDigest(v, domain))
  await send(provider, 'stake', [provider.account.address, 1], await read<bigint>('stakeRequired', [1]))
  const now = (await pub.getBlock()).timestamp
  await send(payer, 'deposit', [hash, now + 3600n, 600], 5n * E18)
  const sv = await signVoucher(payer, v, domain)
  const b0 = await pub.getBalance({ address: provider.account.address })
  const gas1 = await send(provider, 'redeem', redeemArgs([sv]))
  const gas2 = await send(provider, 'redeem', redeemArgs([sv]))
  assert.is(await pub.getBalance({ address: provider.account.address }) - b0 + gas1 + gas2, 2n * E18)
  const forged = await signVoucher(provider, { ...v, cumulative: 5n * E18 }, domain)
  assert.is((await revertOf(pub.simulateContract({ address: contract, abi: settlementAbi, functionName: 'redeem', args: redeemArgs([forged]), account: provider.account }))).name, 'NotSignedByPayer')
  assert.is((await revertOf(pub.simulateContract({ address: contract, abi: settlementAbi, functionName: 'refund', args: [jobId], account: payer.account }))).name, 'DisputeWindowOpen')
  assert.is(await read<bigint>('unspent', [jobId]), 3n * E18)
})

test('stop', () => { chain.close() })

test.run()
