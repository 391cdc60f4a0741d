import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { parseNvidiaSmi, summarizeGpus } from '../../../../src/core/compute/nvidia-smi.js'

const fixture = (name: string): string => readFileSync(new URL(`../../../fixtures/nvidia-smi/${name}`, import.meta.url), 'utf8')

test('one RTX 4090', () => {
  const r = parseNvidiaSmi(fixture('rtx4090.csv'))
  assert.is(r.error, undefined)
  assert.equal(r.gpus, [{ index: 0, name: 'NVIDIA GeForce RTX 4090', model: 'RTX4090', memoryMib: 24564, driver: '535.104.05', utilizationPct: 3, uuid: 'GPU-5d6a2b1c-8f3e-4a71-9c0d-2e1f7b6a9c44' }])
})

test('eight A100s group into one spec', () => {
  const r = parseNvidiaSmi(fixture('a100-8x.csv'))
  assert.is(r.gpus.length, 8)
  assert.equal(r.gpus.map(g => g.index), [0, 1, 2, 3, 4, 5, 6, 7])
  assert.is(r.gpus[7].utilizationPct, 49)
  assert.equal(summarizeGpus(r.gpus), [{ model: 'A100', count: 8, memoryMib: 81920, declared: false }])
})

test('[N/A] and [Not Supported] fields become undefined, the GPU is kept', () => {
  const h = parseNvidiaSmi(fixture('h100-na.csv'))
  assert.is(h.gpus.length, 2)
  assert.is(h.gpus[0].utilizationPct, undefined)
  assert.is(h.gpus[1].uuid, undefined)
  assert.is(h.gpus[0].memoryMib, 81559)
  const g = parseNvidiaSmi(fixture('gtx1080-not-supported.csv'))
  assert.is(g.gpus[0].model, 'GTX1080')
  assert.is(g.gpus[0].utilizationPct, undefined)
})

test('mixed models on one machine', () => {
  const r = parseNvidiaSmi(fixture('t4-v100-mixed.csv'))
  assert.equal(summarizeGpus(r.gpus).map(s => [s.model, s.count]), [['T4', 2], ['V100', 1]])
})

test('driver failures are reported, not parsed as GPUs', () => {
  for (const f of ['driver-failed.txt', 'no-devices.txt', 'nvml-mismatch.txt']) {
    const r = parseNvidiaSmi(fixture(f))
    assert.is(r.gpus.length, 0, f)
    assert.ok(r.error !== undefined && r.error.length > 0, f)
  }
  assert.match(parseNvidiaSmi(fixture('driver-failed.txt')).error ?? '', /couldn't communicate/)
})

test('tolerates headers, units, commas in names and garbage lines', () => {
  const text = 'name, memory.total [MiB], driver_version, utilization.gpu [%], uuid\nNVIDIA Weird, Name, 1024 MiB, 1.0, 5 %, GPU-x\nnot a gpu line\n'
  const r = parseNvidiaSmi(text)
  assert.is(r.gpus.length, 1)
  assert.is(r.gpus[0].name, 'NVIDIA Weird, Name')
  assert.is(r.gpus[0].memoryMib, 1024)
  assert.is(r.gpus[0].utilizationPct, 5)
  assert.is(r.skipped.length, 1)
  assert.ok(parseNvidiaSmi('garbage only').error !== undefined)
  assert.equal(parseNvidiaSmi(''), { gpus: [], skipped: [] })
})

test.run()
