// A compute peer built from a provider policy (config → computePolicyInit → ComputePeer): per-task caps
// refuse with their code before a task runs, the output cap stops it, slots and GPUs follow the policy,
// and the status report says what is in force.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { ComputePeer } from '../../../src/compute/index.js'
import { computePolicyInit, policyReport } from '../../../src/node/provider-policy.js'
import { validateConfig, defaultConfig } from '../../../src/node/config.js'
import { createRng } from '../../../src/core/rng.js'

const config = validateConfig({
  ...defaultConfig('/tmp/dbc-policy-peer'),
  gpus: '2xRTX4090:24GiB',
  provider: {
    priceCpuHour: 24,
    slots: { cpu: 1, gpu: 1, memoryMiB: 512 },
    maxTask: { memoryMiB: 64, wallSeconds: 5, outputBytes: 8, inputBytes: 64 },
    executors: { wasm: { workerHeapMiB: 48 } }
  },
  trainers: { 'torch-mnist': { command: ['python3', 'train.py'] } }
} as never)
const peer = new ComputePeer({
  ...computePolicyInit(config),
  secretKey: createRng(7).bytes(new Uint8Array(32)),
  declaredGpus: config.gpus,
  benchmark: false,
  nvidiaSmi: '/nonexistent/nvidia-smi'
})
const square = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/square.wasm', import.meta.url)))
const f64 = (xs: number[]): Uint8Array => new Uint8Array(new Float64Array(xs).buffer)
let n = 0
const task = (over: dbc.task.v1.ITask = {}): dbc.task.v1.ITask => ({ taskId: new Uint8Array([++n]), jobId: new Uint8Array([1]), executor: 'wasm', code: square, entry: 'run', input: f64([3, 4]), deadlineMs: 2000, memoryLimitMib: 32, ...over })
const codeOf = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'ran', (e: { code?: string }) => e.code ?? 'none')

test.before(async () => { await peer.start() })
test.after(async () => { await peer.stop() })

test('slots and GPUs follow the policy', () => {
  const c = peer.capabilities()
  assert.is(c.cpu.slots, 1)
  assert.is(c.memoryMib, 512)
  assert.equal(c.gpus, [{ model: 'RTX4090', count: 1, memoryMib: 24576, declared: true }], 'slots.gpu: 1 of the 2 declared')
  assert.equal(c.executors, ['wasm'])
  assert.is(c.priceCpuHour, 24)
})

test('a task above a cap is refused before it runs, with the cap\'s code and key', async () => {
  const mem = peer.runTask(task({ memoryLimitMib: 128 }))
  await mem.then(() => assert.unreachable('ran'), (e: Error & { code?: string }) => {
    assert.is(e.code, 'TASK_MEMORY_TOO_LARGE')
    assert.match(e.message, /128 MiB of memory is above this provider's limit of 64 MiB per task \(provider\.maxTask\.memoryMiB\)/)
  })
  assert.is(await codeOf(peer.runTask(task({ deadlineMs: 6000 }))), 'TASK_TOO_LONG')
  assert.is(await codeOf(peer.runTask(task({ input: f64(new Array(9).fill(1)) }))), 'TASK_INPUT_TOO_LARGE')
  assert.is(await codeOf(peer.runTask(task({ executor: 'process' }))), 'EXECUTOR_DISABLED')
  // a task without a memory limit gets the default, lowered to the cap
  const { result } = await peer.runTask(task({ memoryLimitMib: 0 }))
  assert.ok(result.ok, result.error)
})

test('the output cap stops a task whose result is larger', async () => {
  const ok = await peer.runTask(task())
  assert.ok(ok.result.ok, ok.result.error)
  const { result } = await peer.runTask(task({ entry: 'squares' }))
  assert.not.ok(result.ok)
  assert.match(result.error, /^TASK_OUTPUT_TOO_LARGE/)
})

test('the report is the policy in force', () => {
  const r = policyReport(config, peer)
  assert.equal(r.prices, { cpuHour: 24, gpuHour: 1, unit: 'DBC' })
  assert.equal(r.slots, { cpu: 1, gpu: 1, memoryMiB: 512, queue: 64 })
  assert.equal(r.maxTask, { memoryMiB: 64, wallSeconds: 5, outputBytes: 8, inputBytes: 64 })
  assert.equal(r.executors.wasm, { enabled: true, available: true, limits: { workerHeapMiB: 48 } })
  assert.equal(r.executors.process, { enabled: false, available: false, reason: 'off in the provider policy', limits: { network: false } })
  assert.equal(r.trainers, ['torch-mnist'])
  assert.equal(r.gpus.offered, [{ model: 'RTX4090', count: 1, memoryMib: 24576, declared: true }])
})

test.run()
