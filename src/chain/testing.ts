// Signed usage receipts from made-up providers, for tests, benchmarks and the demo. Each
// provider has a deterministic Ed25519 identity (its peer id signs receipts) and EVM payout
// address (derived from the seed, so no key is needed to receive).
import { keccak256, toHex } from 'viem'
import { privateKeyToAddress } from 'viem/accounts'
import { ed25519 } from '@noble/curves/ed25519.js'
import { dbc } from '../wire/gen/wire.js'
import { peerIdBytesFromEd25519Key } from '../core/identity/index.js'
import { buildReceipt, signReceipt } from '../core/settlement/receipt.js'
import type { Address } from './config.js'

export interface FakeProvider { index: number, secretKey: Uint8Array, peerId: Uint8Array, payoutAddress: Address }

export function fakeProviders (n: number, seed = 'dbc-test'): FakeProvider[] {
  return Array.from({ length: n }, (_, index) => {
    const secretKey = new Uint8Array(Buffer.from(keccak256(toHex(`${seed}:ed25519:${index}`)).slice(2), 'hex'))
    const payoutAddress = privateKeyToAddress(keccak256(toHex(`${seed}:evm:${index}`)))
    return { index, secretKey, peerId: peerIdBytesFromEd25519Key(ed25519.getPublicKey(secretKey)), payoutAddress }
  })
}

/**
 * `count` receipts of `jobId`, round-robin over `providers`, each charging exactly `amount` wei
 * (one GPU-hour priced at `amount` wei, so the compute side's price check holds).
 */
export function fakeSignedReceipts (jobId: Uint8Array, providers: FakeProvider[], count: number, amount: bigint, opts: { idPrefix?: string, startedAt?: number } = {}): Uint8Array[] {
  const out: Uint8Array[] = []
  const priceGpuHour = Number(amount) / 1e18
  for (let i = 0; i < count; i++) {
    const p = providers[i % providers.length]
    const receipt = buildReceipt({
      jobId,
      taskId: new TextEncoder().encode(`${opts.idPrefix ?? 'r'}-task-${i}`),
      provider: p.peerId,
      consumer: new Uint8Array(0),
      usage: { wallMs: 3_600_000, cpuMs: 0, gpuSeconds: 3600, bytesIn: 0, bytesOut: 0 },
      prices: { priceGpuHour, priceCpuHour: 0 },
      startedAt: opts.startedAt ?? 0,
      finishedAt: (opts.startedAt ?? 0) + 3_600_000,
      outputHash: new Uint8Array(32),
      payoutAddress: p.payoutAddress
    })
    if (receipt.amount !== amount.toString()) throw new RangeError(`can not price a fake receipt at exactly ${amount} wei (got ${receipt.amount})`)
    out.push(dbc.receipt.v1.SignedReceipt.encode(signReceipt(receipt, p.secretKey)).finish())
  }
  return out
}
