// Training under the provider policy, on a real compute peer (src/compute/index.ts holdSlot,
// src/node/provider-policy.ts trainingPolicy, stakedGpuCount): a membership's slot is taken from
// the same ledger grid tasks use (a grid task waits while training holds the only CPU slot, and a
// second membership is refused), GPUs offered and prices come from the policy, auto-stake counts
// only the GPUs offered, and `provider.training` switches serving off and sets the round floor.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import type { dbc } from '../../../src/wire/gen/wire.js'
import { ComputePeer } from '../../../src/compute/index.js'
import { computePolicyInit, policyReport, stakedGpuCount, trainingPolicy } from '../../../src/node/provider-policy.js'
import { validateConfig, defaultConfig } from '../../../src/node/config.js'
import { createRng } from '../../../src/core/rng.js'
import { DEFAULT_MIN_ROUND_S } from '../../../src/core/settlement/training.js'

const config = validateConfig({
  ...defaultConfig('/tmp/dbc-member-slots'),
  gpus: '2xRTX4090:24GiB',
  provider: { priceCpuHour: 24, priceGpuHour: 3, slots: { cpu: 1, gpu: 1, memoryMiB: 512 }, training: { minRoundS: 5 } }
} as never)
const peer = new ComputePeer({ ...computePolicyInit(config), secretKey: createRng(9).bytes(new Uint8Array(32)), declaredGpus: config.gpus, benchmark: false, nvidiaSmi: '/nonexistent/nvidia-smi' })
const square = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/square.wasm', import.meta.url)))
const task = (): dbc.task.v1.ITask => ({ taskId: new Uint8Array([1]), jobId: new Uint8Array([1]), executor: 'wasm', code: square, entry: 'run', input: new Uint8Array(new Float64Array([3, 4]).buffer), deadlineMs: 5000, memoryLimitMib: 32 })

test.before(async () => { await peer.start() })
test.after(async () => { await peer.stop() })

test('the training policy: GPUs offered, prices and the round floor from the provider policy; stake counts offered GPUs only', () => {
  const tp = trainingPolicy(config, () => peer, DEFAULT_MIN_ROUND_S)
  assert.is(tp.gpuCount(), 1, 'slots.gpu offers 1 of the 2 declared')
  assert.equal(tp.prices(), { priceGpuHour: 3, priceCpuHour: 24 })
  assert.is(tp.minRoundMs, 5000)
  assert.is(tp.serveTraining, true)
  assert.is(stakedGpuCount(config, 2), 1)
  assert.is(stakedGpuCount(validateConfig({ ...defaultConfig('/tmp/x'), gpus: '2xRTX4090:24GiB' } as never), 2), 2)
  const off = validateConfig({ ...defaultConfig('/tmp/x'), provider: { training: { enabled: false } } } as never)
  const tpOff = trainingPolicy(off, () => undefined, DEFAULT_MIN_ROUND_S)
  assert.is(tpOff.serveTraining, false)
  assert.is(tpOff.minRoundMs, DEFAULT_MIN_ROUND_S * 1000)
  assert.is(tpOff.gpuCount(), 0, 'no peer: no GPUs offered')
  assert.equal(policyReport(config, peer).training, { enabled: true, minRoundS: 5 })
})

test('a membership holds the CPU slot: a second one is refused, a grid task waits until it is released', async () => {
  assert.is(peer.holdSlot('training:a', { cpus: 1, gpus: 0 }), undefined)
  assert.is(peer.holdSlot('training:a', { cpus: 1, gpus: 0 }), undefined, 'idempotent per job')
  assert.match(peer.holdSlot('training:b', { cpus: 1, gpus: 0 }) ?? '', /busy/)
  assert.match(peer.holdSlot('training:c', { cpus: 1, gpus: 2 }) ?? '', /./, 'two GPUs are never offered here')
  let done = false
  const run = peer.runTask(task()).then(r => { done = true; return r })
  await new Promise(resolve => setTimeout(resolve, 300))
  assert.is(done, false, 'the grid task waits for the slot the membership holds')
  peer.releaseSlot('training:a')
  const { result } = await run
  assert.ok(result.ok, result.error)
  assert.is(peer.holdSlot('training:b', { cpus: 1, gpus: 0 }), undefined, 'free again once the task ended')
  peer.releaseSlot('training:b')
})

test.run()
