// The Settlement contract, the same checks against the embedded EVM and against anvil:
// a batch settles once, resubmitting it is a no-op, a conflicting root reverts; stake values
// match the formula; unstaked providers are not paid; escrow refund rules; events.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { BaseError, ContractFunctionRevertedError, parseEventLogs, type Address, type Hex } from 'viem'
import { settlementAbi, settlementBytecode } from '../../src/chain/index.js'
import { stakeForGpu, stakeRequired } from '../../src/core/settlement/index.js'
import { openBackend, type Backend, type BackendKind } from './chain-backends.js'

const h32 = (n: number): Hex => `0x${n.toString(16).padStart(64, '0')}`
const E18 = 10n ** 18n

async function revertName (p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) {
    const r = err instanceof BaseError ? err.walk(e => e instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null : null
    return r?.data?.errorName ?? `not a contract revert: ${(err as Error).message.slice(0, 200)}`
  }
  return 'did not revert'
}

for (const kind of ['embedded', 'anvil'] as BackendKind[]) {
  let b: Backend
  let address: Address
  const owner = (): ReturnType<Backend['wallet']> => b.wallet(0)
  const send = async (w: ReturnType<Backend['wallet']>, functionName: string, args: unknown[], value?: bigint) => {
    const hash = await w.writeContract({ address, abi: settlementAbi, functionName, args, value } as never)
    const receipt = await b.publicClient.waitForTransactionReceipt({ hash })
    assert.is(receipt.status, 'success')
    return receipt
  }
  const read = async <T>(functionName: string, args: unknown[] = []): Promise<T> => await b.publicClient.readContract({ address, abi: settlementAbi, functionName, args } as never) as T

  test(`[${kind}] deploy`, async () => {
    b = await openBackend(kind)
    const hash = await owner().deployContract({ abi: settlementAbi, bytecode: settlementBytecode })
    const r = await b.publicClient.waitForTransactionReceipt({ hash })
    assert.ok(r.contractAddress)
    address = r.contractAddress as Address
  })

  test(`[${kind}] stakeForGpu at GPU 1, 10,000, 10,001, 20,000 equals the TS formula`, async () => {
    for (const g of [1n, 10_000n, 10_001n, 20_000n, 31_337n]) assert.is(await read<bigint>('stakeForGpu', [g]), stakeForGpu(g), `GPU ${g}`)
    assert.is(await read<bigint>('stakeForGpu', [20_000n]), 50_000n * E18)
  })

  test(`[${kind}] staking 10,000 GPUs then 2 more charges by the network count`, async () => {
    const provider = b.wallet(1).account.address
    assert.is(await read<bigint>('stakeRequired', [10_000]), stakeRequired(0, 10_000))
    const big = await send(b.wallet(1), 'stake', [provider, 10_000], 10_000n * 100_000n * E18)
    const ev = parseEventLogs({ abi: settlementAbi, logs: big.logs, eventName: 'ProviderStaked' })[0]
    assert.is(ev.args.amount, 10_000n * 100_000n * E18)
    assert.is(await read<bigint>('stakeRequired', [2]), stakeForGpu(10_001) + stakeForGpu(10_002))
    const before = await b.publicClient.getBalance({ address: b.wallet(2).account.address })
    // Overpay: the excess comes back.
    const r = await send(b.wallet(2), 'stake', [b.wallet(2).account.address, 2], 300_000n * E18)
    const after = await b.publicClient.getBalance({ address: b.wallet(2).account.address })
    assert.is(before - after - r.gasUsed * r.effectiveGasPrice, stakeForGpu(10_001) + stakeForGpu(10_002))
    assert.is(await read<bigint>('totalGpus'), 10_002n)
    assert.is(await revertName(b.wallet(3).writeContract({ address, abi: settlementAbi, functionName: 'stake', args: [b.wallet(3).account.address, 1], value: 1n })), 'StakeTooLow')
    // GPUs 10,001 and 10,002 leave; the next GPU added is #10,001 again.
    await send(b.wallet(2), 'unstake', [])
    assert.is(await read<bigint>('stakeRequired', [1]), stakeForGpu(10_001))
  })

  const job = h32(0xaa)
  const payees = (): Address[] => [b.wallet(1).account.address, b.wallet(4).account.address] // 1 staked, 4 not

  test(`[${kind}] escrow: deposit, only the owner adds, refund waits for end or deadline`, async () => {
    await send(owner(), 'deposit', [job, 0n], 10n * E18)
    assert.is(await revertName(b.wallet(5).writeContract({ address, abi: settlementAbi, functionName: 'deposit', args: [job, 0n], value: 1n })), 'NotJobOwner')
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'refund', args: [job] })), 'JobStillOpen')
    const j = await read<readonly [Address, bigint, boolean, bigint]>('jobs', [job])
    assert.is(j[0].toLowerCase(), owner().account.address.toLowerCase())
    assert.is(j[3], 10n * E18)
  })

  test(`[${kind}] a batch settles once; resubmitting is a no-op; a conflicting root reverts`, async () => {
    const batch = h32(1)
    const root = h32(0xabc)
    const args = [batch, job, root, 1000, payees(), [3n * E18, 1n * E18]]
    const r = await send(owner(), 'settleBatch', args)
    const evs = parseEventLogs({ abi: settlementAbi, logs: r.logs })
    assert.equal(evs.map(e => e.eventName).sort(), ['BatchSettled', 'PayoutWithheld', 'ProviderPaid'])
    const settled = evs.find(e => e.eventName === 'BatchSettled')!.args as { paid: bigint, withheld: bigint }
    assert.is(settled.paid, 3n * E18)
    assert.is(settled.withheld, 1n * E18, 'the unstaked provider is not paid')
    assert.is(await read<bigint>('balances', [payees()[0]]), 3n * E18)
    assert.is(await read<bigint>('balances', [payees()[1]]), 0n)
    assert.is(await read<Hex>('settledRoot', [batch]), root)
    // identical resubmission: returns false, pays nothing, emits nothing
    const sim = await b.publicClient.simulateContract({ address, abi: settlementAbi, functionName: 'settleBatch', args: args as never, account: owner().account })
    assert.is(sim.result, false)
    const again = await send(owner(), 'settleBatch', args)
    assert.is(again.logs.length, 0)
    assert.is(await read<bigint>('balances', [payees()[0]]), 3n * E18)
    assert.is((await read<readonly [Address, bigint, boolean, bigint]>('jobs', [job]))[3], 7n * E18)
    // conflicting root for the same id
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'settleBatch', args: [batch, job, h32(0xdef), 1000, payees(), [1n, 1n]] })), 'BatchConflict')
  })

  test(`[${kind}] settlement guards: owner only, escrow bound, lengths, empty root`, async () => {
    assert.is(await revertName(b.wallet(5).writeContract({ address, abi: settlementAbi, functionName: 'settleBatch', args: [h32(2), job, h32(1), 1, payees(), [1n, 1n]] })), 'NotJobOwner')
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'settleBatch', args: [h32(2), job, h32(1), 1, payees(), [100n * E18, 0n]] })), 'InsufficientEscrow')
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'settleBatch', args: [h32(2), job, h32(1), 1, payees(), [1n]] })), 'LengthMismatch')
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'settleBatch', args: [h32(2), job, h32(0), 1, payees(), [1n, 1n]] })), 'EmptyRoot')
  })

  test(`[${kind}] withdraw pays the provider; refund after end; deadline refund`, async () => {
    const p = b.wallet(1)
    const before = await b.publicClient.getBalance({ address: p.account.address })
    const r = await send(p, 'withdraw', [])
    const after = await b.publicClient.getBalance({ address: p.account.address })
    assert.is(after - before + r.gasUsed * r.effectiveGasPrice, 3n * E18)
    await send(owner(), 'endJob', [job])
    const rr = await send(owner(), 'refund', [job])
    assert.is(parseEventLogs({ abi: settlementAbi, logs: rr.logs, eventName: 'EscrowRefunded' })[0].args.amount, 7n * E18)
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'deposit', args: [job, 0n], value: 1n })), 'JobAlreadyEnded')
    // a job with a deadline: refundable once the chain clock passes it
    const job2 = h32(0xbb)
    const block = await b.publicClient.getBlock()
    await send(owner(), 'deposit', [job2, block.timestamp + 3600n], E18)
    assert.is(await revertName(owner().writeContract({ address, abi: settlementAbi, functionName: 'refund', args: [job2] })), 'JobStillOpen')
    await b.increaseTime(7200)
    await send(owner(), 'refund', [job2])
    assert.is((await read<readonly [Address, bigint, boolean, bigint]>('jobs', [job2]))[3], 0n)
  })

  test(`[${kind}] verifyReceipt checks a sorted-pair proof against the settled root`, async () => {
    const { buildMerkleTree, merkleProof, receiptLeaf, hex0x } = await import('../../src/core/settlement/index.js')
    const leaves = [1, 2, 3, 4, 5].map(i => receiptLeaf(new TextEncoder().encode(`r${i}`)))
    const tree = buildMerkleTree(leaves)
    const job3 = h32(0xcc)
    await send(owner(), 'deposit', [job3, 0n], 1n)
    await send(owner(), 'settleBatch', [h32(3), job3, hex0x(tree.root), 5, [], []])
    for (let i = 0; i < 5; i++) assert.ok(await read<boolean>('verifyReceipt', [h32(3), hex0x(leaves[i]), merkleProof(tree, i).map(hex0x)]))
    assert.not.ok(await read<boolean>('verifyReceipt', [h32(3), hex0x(leaves[0]), merkleProof(tree, 1).map(hex0x)]))
  })

  test(`[${kind}] stop`, async () => { await b.stop() })
}

test.run()
