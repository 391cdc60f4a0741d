// GPU truth for training rounds: a node with GPUs bills GPU-seconds only for rounds a trainer ran
// on a GPU (an external trainer that said `device: cuda`); the built-in trainer is CPU time.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { createReceiptMeter } from '../../../src/training/metering.js'
import { ed25519PublicKey } from '../../../src/core/identity/index.js'
import { verifyReceipt } from '../../../src/core/settlement/receipt.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import type { RoundMetering } from '../../../src/training/worker.js'
import { ExternalTrainer } from '../../../src/training/external.js'
import { PassThrough } from 'node:stream'

function peer (): { id: string, secretKey: Uint8Array } {
  const secretKey = new Uint8Array(randomBytes(32))
  const key = privateKeyFromRaw(new Uint8Array([...secretKey, ...ed25519PublicKey(secretKey)]))
  return { id: peerIdFromPrivateKey(key).toString(), secretKey }
}

test('a node with a GPU bills GPU-seconds only for rounds a GPU trainer ran', () => {
  const provider = peer()
  const coordinator = peer()
  const meter = createReceiptMeter({ secretKey: provider.secretKey, prices: { priceGpuHour: 2, priceCpuHour: 0.1 }, gpuCount: 1 })
  const round = (usesGpu: boolean): RoundMetering => ({ jobId: 'j', round: 0, peer: provider.id, coordinator: coordinator.id, computeMs: 1500, cpuMs: 1400, startedAt: 1, finishedAt: 2, bytesIn: 0, bytesOut: 0, samples: 64, usesGpu })
  const read = (bytes: Uint8Array) => {
    const check = verifyReceipt(dbc.receipt.v1.SignedReceipt.decode(bytes))
    if (!check.ok) throw new Error(check.reason)
    return check.receipt
  }
  const cpu = read(meter(round(false)))
  assert.is(cpu.gpuSeconds, 0)
  assert.is(cpu.cpuMs, 1400)
  const gpu = read(meter(round(true)))
  assert.is(gpu.gpuSeconds, 1.5)
  assert.is(gpu.cpuMs, 0)
})

test('a round bills the GPUs its job takes, not every GPU the node offers (as the member priced it)', () => {
  const provider = peer()
  const coordinator = peer()
  let billed = 0n
  const meter = createReceiptMeter({ secretKey: provider.secretKey, prices: { priceGpuHour: 2, priceCpuHour: 0.1 }, gpuCount: 4, onBilled: (_m, units) => { billed = units } })
  const bytes = meter({ jobId: 'j', round: 0, peer: provider.id, coordinator: coordinator.id, computeMs: 1500, cpuMs: 1400, startedAt: 1, finishedAt: 2, bytesIn: 0, bytesOut: 0, samples: 64, usesGpu: true, gpus: 1 })
  const r = dbc.receipt.v1.UsageReceipt.decode(dbc.receipt.v1.SignedReceipt.decode(bytes).receipt)
  assert.is(r.gpuSeconds, 1.5)
  assert.is(billed, BigInt(r.amount), 'the member\'s ledger sees what the receipt bills')
  assert.is(billed, 2n * 10n ** 18n * 1500n / 3_600_000n)
})

test('an external trainer uses the GPU only when its hello says cuda', () => {
  const t = new ExternalTrainer(new PassThrough(), new PassThrough())
  assert.is(t.usesGpu, false)
  t.device = 'cuda:0'
  assert.is(t.usesGpu, true)
})

test.run()
