// The send queue's preparation of a transaction against a chain double: its reads (gas, fees,
// balance, nonce; the balance and the simulation of a call) are asked together, not one round
// trip after another (a job's escrow deposit waits on them), a failed preparation leaves no
// nonce gap, and an empty key is reported as such whatever the simulation said.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { SendQueue } from '../../../src/chain/sender.js'
import type { ChainConnection } from '../../../src/chain/client.js'
import { settlementAbi } from '../../../src/chain/artifacts/settlement.js'

const tick = async (n = 3): Promise<void> => { for (let i = 0; i < n; i++) await new Promise(resolve => setImmediate(resolve)) }

function fakeChain (opts: { balance?: bigint, gasFails?: boolean, simulateFails?: boolean } = {}) {
  const account = privateKeyToAccount(generatePrivateKey())
  const state = { inflight: 0, maxInflight: 0, pending: 7 }
  // each read is a round trip: it answers a few turns later, and counts how many were asked at once
  const read = async <T>(value: () => T, fails = false): Promise<T> => {
    state.inflight++
    state.maxInflight = Math.max(state.maxInflight, state.inflight)
    try {
      await tick(fails ? 1 : 3)
      if (fails) throw new Error('execution reverted')
      return value()
    } finally {
      state.inflight--
    }
  }
  const publicClient = {
    estimateGas: async () => await read(() => 50_000n, opts.gasFails === true),
    estimateFeesPerGas: async () => await read(() => ({ maxFeePerGas: 10n, maxPriorityFeePerGas: 1n })),
    getBalance: async () => await read(() => opts.balance ?? 10n ** 18n),
    getTransactionCount: async () => await read(() => state.pending),
    simulateContract: async () => await read(() => ({}), opts.simulateFails === true)
  }
  const walletClient = { signTransaction: async () => '0x02abcdef' }
  const conn = { kind: 'rpc', chainId: 31337, url: 'http://chain.test', chain: {}, publicClient, walletClient, account, close: () => {} } as unknown as ChainConnection
  return { conn, state }
}

test('a transaction\'s gas, fees, balance and nonce are asked together (one round trip\'s wait, not four)', async () => {
  const { conn, state } = fakeChain()
  const q = new SendQueue(conn)
  const tx = await q.run(async () => await q.signRaw({ data: '0x', value: 0n, action: 'test' }))
  assert.is(tx.nonce, 7)
  assert.is(tx.gas, 50_000n)
  assert.ok(state.maxInflight >= 4, `reads in flight at once: ${state.maxInflight}`)
})

test('a failed preparation leaves no nonce gap: the nonce read that answers after the failure is forgotten too', async () => {
  const { conn, state } = fakeChain({ gasFails: true })
  const q = new SendQueue(conn)
  // the gas estimate fails before the nonce read answers
  const err = await q.run(async () => await q.signRaw({ data: '0x', value: 0n, action: 'test' })).catch((e: Error) => e)
  assert.instance(err, Error)
  await tick(10)
  // nothing was sent: the chain still counts 7 pending, and the next transaction takes 7
  assert.is(await q.takeNonce(), state.pending)
})

test('a call: the balance and the simulation are asked together; an empty key is said first, whatever the simulation answered', async () => {
  const args = ['0x' + '11'.repeat(32), 1n, 3600] as const
  const { conn, state } = fakeChain()
  const q = new SendQueue(conn)
  await q.run(async () => await q.signCall({ address: '0x00000000000000000000000000000000000000aa', abi: settlementAbi, functionName: 'deposit', args: args as never, value: 1n, action: 'depositing' }))
  assert.ok(state.maxInflight >= 2, `reads in flight at once: ${state.maxInflight}`)
  const empty = fakeChain({ balance: 0n, simulateFails: true })
  const e = new SendQueue(empty.conn)
  const err = await e.run(async () => await e.signCall({ address: '0x00000000000000000000000000000000000000aa', abi: settlementAbi, functionName: 'deposit', args: args as never, value: 1n, action: 'depositing' })).catch((x: { code?: string }) => x) as { code?: string }
  assert.is(err.code, 'KEY_UNFUNDED')
  await tick(10)
})

test.run()
