// GPU truth on the provider: a probed GPU (nvidia-smi) and a declared one (--gpus) are told apart
// in signed offers, and a task is billed GPU-seconds only when an executor that can use the GPU
// ran it (a wasm task asking for a GPU holds none and pays CPU time only).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ComputePeer } from '../../../src/compute/index.js'
import { demandOnProbedGpus } from '../../../src/compute/probe.js'
import { isolationSupport } from '../../../src/compute/isolation/index.js'
import { verifyOffer } from '../../../src/core/compute/offer.js'
import { verifyReceipt } from '../../../src/core/settlement/receipt.js'
import { createRng } from '../../../src/core/rng.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-gpu-truth-'))
chmodSync(dir, 0o755)
// an nvidia-smi that reports one RTX 4090 (the recorded output in test/fixtures/nvidia-smi)
const smi = join(dir, 'nvidia-smi')
writeFileSync(smi, `#!/bin/sh\ncat <<'EOF'\n${readFileSync(new URL('../../fixtures/nvidia-smi/rtx4090.csv', import.meta.url), 'utf8')}EOF\n`, { mode: 0o755 })
const rng = createRng(7)
const peer = new ComputePeer({
  secretKey: rng.bytes(new Uint8Array(32)),
  cpuSlots: 2,
  memoryMib: 1024,
  declaredGpus: '1xA100:80GiB',
  policy: { priceCpuHour: 0.05, priceGpuHour: { RTX4090: 0.8, A100: 1.5 }, maxTaskMs: 10_000, executors: ['wasm', 'process'] },
  nvidiaSmi: smi,
  benchmark: false,
  tmpDir: dir
})
const square = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/square.wasm', import.meta.url)))
let n = 0
const task = (over: dbc.task.v1.ITask): dbc.task.v1.ITask => ({ taskId: new Uint8Array([++n]), jobId: new Uint8Array([9]), deadlineMs: 5000, memoryLimitMib: 32, ...over })

test.before(async () => { await peer.start() })
test.after(async () => { await peer.stop(); rmSync(dir, { recursive: true, force: true }) })

test('capabilities keep the probed RTX 4090 and the declared A100 apart', () => {
  const c = peer.capabilities()
  assert.equal(c.gpus.map(g => [g.model, g.declared]), [['RTX4090', false], ['A100', true]])
})

test('offers say whether the GPUs they offer were probed, under the signature', () => {
  const now = Date.now()
  const probed = peer.offer({ jobId: new Uint8Array([1]), slots: 1, resources: { gpuModel: 'RTX4090', gpuCount: 1 } }, { now })
  const declared = peer.offer({ jobId: new Uint8Array([2]), slots: 1, resources: { gpuModel: 'A100', gpuCount: 1 } }, { now })
  const cpu = peer.offer({ jobId: new Uint8Array([3]), slots: 1, resources: { cpuCores: 1 } }, { now })
  assert.is(probed.refusal, '')
  assert.is(declared.refusal, '')
  assert.is(probed.gpusProbed, true)
  assert.is(declared.gpusProbed, false)
  assert.is(cpu.gpusProbed, false)
  assert.ok(verifyOffer(probed, now).ok)
  // a relay that flips the flag breaks the provider's signature
  assert.not.ok(verifyOffer({ ...declared, gpusProbed: true }, now).ok)
  // two GPUs of a model with one probed device: not all probed
  assert.not.ok(demandOnProbedGpus({ probedGpus: [{ index: 0, name: 'x', model: 'RTX4090' }] }, [{ index: 0, model: 'RTX4090', memoryMib: 24564 }, { index: 1, model: 'RTX4090', memoryMib: 24576 }], { cpus: 1, memoryMib: 0, gpus: 2, gpuModel: 'RTX4090' }))
})

test('a wasm task that asks for a GPU holds none and is billed no GPU-seconds', async () => {
  const { result, receipt } = await peer.runTask(task({ executor: 'wasm', code: square, entry: 'run', input: new Uint8Array(new Float64Array([3]).buffer) }), { resources: { gpuCount: 1, gpuModel: 'RTX4090' } })
  assert.ok(result.ok, result.error)
  const check = verifyReceipt(receipt, peer.peerId)
  assert.ok(check.ok)
  if (!check.ok) return
  assert.is(check.receipt.gpuSeconds, 0)
  assert.is(check.receipt.priceGpuHour, 0)
  assert.ok(check.receipt.cpuMs >= 0 && check.receipt.wallMs > 0)
})

test('a process task on a GPU sees only its GPU and is billed its GPU-seconds at the GPU price', async () => {
  if (!isolationSupport().available) { console.log('process isolation unavailable: the process-executor half is skipped'); return }
  const { result, receipt } = await peer.runTask(task({ executor: 'process', code: new Uint8Array(0), entry: 'printf %s "$CUDA_VISIBLE_DEVICES"', input: new Uint8Array(0) }), { resources: { gpuCount: 1, gpuModel: 'RTX4090' } })
  assert.ok(result.ok, result.error)
  assert.is(new TextDecoder().decode(result.output), '0')
  const check = verifyReceipt(receipt, peer.peerId)
  assert.ok(check.ok)
  if (!check.ok) return
  assert.ok(check.receipt.gpuSeconds > 0)
  assert.ok(Math.abs(check.receipt.gpuSeconds - check.receipt.wallMs / 1000) < 1e-9)
  assert.is(check.receipt.priceGpuHour, 0.8)
})

test.run()
