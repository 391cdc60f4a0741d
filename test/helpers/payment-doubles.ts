// Test doubles for a submitter's payments without a chain: a bridge that signs vouchers with a
// fresh key and records deposits and closes, a small paid manifest, a provider identity, and a
// billed copy of a grid task with its provider's signed receipt.
import { randomBytes } from 'node:crypto'
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts'
import { dbc } from '../../src/wire/gen/wire.js'
import { buildReceipt, signReceipt } from '../../src/core/settlement/receipt.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../src/core/identity/index.js'
import { voucherTypedData, type Voucher } from '../../src/core/settlement/voucher.js'
import { validateManifest, type Manifest } from '../../src/core/scheduler/index.js'
import type { Bridge } from '../../src/chain/index.js'

export const voucherDomain = { chainId: 31337, verifyingContract: '0x00000000000000000000000000000000000000aa' as const }

/** A chain double: `failSign`/`failClose`/`failDeposit` make the next voucher signatures / closes / deposits fail (the chain is down). */
export function fakeBridge () {
  const key = privateKeyToAccount(generatePrivateKey())
  const calls: string[] = []
  const state = { failSign: false, failClose: false, failDeposit: false }
  const b = {
    account: key.address,
    domain: async () => voucherDomain,
    signVoucher: async (v: Voucher) => {
      if (state.failSign) throw new Error('chain down')
      return { voucher: v, signature: await key.signTypedData(voucherTypedData(v, voucherDomain)) }
    },
    escrow: async () => ({ escrow: 0n, paid: 0n, refunded: false, closedAt: 0 }),
    deposit: async (_j: string, amount: bigint) => {
      if (state.failDeposit) throw new Error('no funds')
      calls.push(`deposit ${amount}`); return { txHash: '0x1', escrow: amount }
    },
    close: async () => {
      if (state.failClose) throw new Error('chain down')
      calls.push('close'); return { txHash: '0x2' }
    },
    jobPayments: async () => ({}),
    connectionInfo: { publicClient: { getBlock: async () => ({ timestamp: 1n }) } }
  }
  return { bridge: b as unknown as Bridge, key, calls, state }
}

/** A 10-task wasm job with a budget (paid). */
export function paidManifest (): Manifest {
  const r = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 9 } }, task: { timeoutMs: 60_000, expectedMs: 10 }, budget: { total: 1 } })
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return r.manifest
}

/** A provider: its ed25519 key, peer id bytes and payout address. */
export function testProvider () {
  const secretKey = new Uint8Array(randomBytes(32))
  const peer = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  const payout = privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}`
  return { secretKey, peer, payout }
}

/** A billed copy of task `index` of grid job `jobId` on provider 'A': its provider's signed receipt for 500 ms of CPU. */
export function billedCopy (p: ReturnType<typeof testProvider>, jobId: string, index: number) {
  const taskId = new TextEncoder().encode(`${jobId}:${index}:1`)
  const r = buildReceipt({ jobId: Uint8Array.from(Buffer.from(jobId, 'hex')), taskId, provider: p.peer, consumer: new Uint8Array(34), usage: { wallMs: 500, cpuMs: 500, gpuSeconds: 0, bytesIn: 0, bytesOut: 0 }, prices: { priceGpuHour: 0, priceCpuHour: 0.05 }, startedAt: 1, finishedAt: 2, outputHash: new Uint8Array(32), payoutAddress: p.payout })
  return { provider: 'A', key: `${index}:1`, receipt: dbc.receipt.v1.SignedReceipt.encode(signReceipt(r, p.secretKey)).finish(), taskId, measuredMs: 1000 }
}
