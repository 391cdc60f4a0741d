import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { GpuSpecError, gpuScore, normalizeGpuModel, parseGpuSpec } from '../../../../src/core/compute/gpu-spec.js'

test('normalizes the names nvidia-smi prints', () => {
  assert.is(normalizeGpuModel('NVIDIA GeForce RTX 4090'), 'RTX4090')
  assert.is(normalizeGpuModel('NVIDIA A100-SXM4-80GB'), 'A100')
  assert.is(normalizeGpuModel('NVIDIA H100 80GB HBM3'), 'H100')
  assert.is(normalizeGpuModel('Tesla V100-SXM2-16GB'), 'V100')
  assert.is(normalizeGpuModel('Tesla T4'), 'T4')
  assert.is(normalizeGpuModel('NVIDIA RTX A6000'), 'RTXA6000')
  assert.is(normalizeGpuModel('NVIDIA GeForce RTX 3090 Ti'), 'RTX3090TI')
  assert.is(normalizeGpuModel('rtx4090'), 'RTX4090')
})

test('parses the --gpus flag', () => {
  assert.equal(parseGpuSpec('2xRTX4090:24GiB,A100:80GiB'), [
    { model: 'RTX4090', count: 2, memoryMib: 24576, declared: true },
    { model: 'A100', count: 1, memoryMib: 81920, declared: true }
  ])
  assert.equal(parseGpuSpec(' 4 x rtx 3090 : 24 '), [{ model: 'RTX3090', count: 4, memoryMib: 24576, declared: true }])
  assert.equal(parseGpuSpec('T4:15360MiB'), [{ model: 'T4', count: 1, memoryMib: 15360, declared: true }])
  // memory is optional for models in the table
  assert.equal(parseGpuSpec('H100')[0].memoryMib, 81559)
  assert.is(parseGpuSpec('A100:80GB')[0].memoryMib, 76294)
})

test('errors name the bad part', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['2xRTX4090:24GiB,0xA100:80GiB', '0xA100:80GiB', /count must be 1\.\.64/],
    ['RTX4090:24XB', 'RTX4090:24XB', /unknown memory unit "XB"/],
    ['MYSTERYGPU', 'MYSTERYGPU', /not in the table, so give its memory/],
    ['A100:80GiB,,T4', '', /empty entry/],
    ['', '', /is empty/],
    ['2x:24GiB', '2x:24GiB', /expected \[COUNTx\]MODEL/],
    ['100xA100', '100xA100', /count must be/]
  ]
  for (const [spec, part, re] of bad) {
    try {
      parseGpuSpec(spec)
      assert.unreachable(`"${spec}" should not parse`)
    } catch (err) {
      assert.instance(err, GpuSpecError)
      const e = err as GpuSpecError
      assert.match(e.message, re, spec)
      if (part !== '') assert.is(e.part, part)
    }
  }
})

test('scores come from the table, unknown models get the reference', () => {
  assert.ok(gpuScore('NVIDIA H100 80GB HBM3') > gpuScore('NVIDIA GeForce RTX 4090'))
  assert.ok(gpuScore('RTX4090') > gpuScore('Tesla T4'))
  assert.is(gpuScore('RTX3090'), 100)
  assert.is(gpuScore('Some Future GPU'), 100)
})

test.run()
