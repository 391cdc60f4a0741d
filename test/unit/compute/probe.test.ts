import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { probeResources, gpuDevices, runNvidiaSmi } from '../../../src/compute/probe.js'
import { parseGpuSpec } from '../../../src/core/compute/gpu-spec.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-probe-'))
const fixtures = fileURLToPath(new URL('../../fixtures/nvidia-smi/', import.meta.url))

/** A stand-in nvidia-smi that prints a recorded output and exits with `code`. */
function fakeSmi (fixture: string, code = 0, extra = ''): string {
  const p = join(dir, `smi-${fixture}-${code}`)
  writeFileSync(p, `#!/bin/sh\n${extra}\ncat '${join(fixtures, fixture)}'\nexit ${code}\n`)
  chmodSync(p, 0o755)
  return p
}

test('probes CPU, memory and disk of this machine', async () => {
  const p = await probeResources({ nvidiaSmi: fakeSmi('no-devices.txt', 6), diskPath: dir })
  assert.ok(p.cpu.cores >= 1 && p.cpu.model.length > 0)
  assert.ok(p.memory.totalMib > 0 && p.memory.freeMib <= p.memory.totalMib)
  assert.ok(p.disk.totalMib > 0 && p.disk.freeMib <= p.disk.totalMib)
  assert.equal(p.gpus, [])
  assert.match(p.gpuProbeError ?? '', /No devices were found/)
})

test('GPUs from nvidia-smi, grouped, with devices indexed', async () => {
  const p = await probeResources({ nvidiaSmi: fakeSmi('a100-8x.csv'), diskPath: dir })
  assert.is(p.gpuProbeError, undefined)
  assert.equal(p.gpus, [{ model: 'A100', count: 8, memoryMib: 81920, declared: false }])
  assert.equal(gpuDevices(p).map(d => d.index), [0, 1, 2, 3, 4, 5, 6, 7])
  const mixed = await probeResources({ nvidiaSmi: fakeSmi('t4-v100-mixed.csv'), diskPath: dir })
  assert.equal(mixed.gpus.map(g => `${g.count}x${g.model}`), ['2xT4', '1xV100'])
})

test('missing binary, driver failure and a hung binary are reported, not thrown', async () => {
  const missing = await runNvidiaSmi(join(dir, 'no-such-nvidia-smi'))
  assert.match('error' in missing ? missing.error : '', /not found: no NVIDIA driver/)
  const failed = await runNvidiaSmi(fakeSmi('driver-failed.txt', 9))
  assert.match('error' in failed ? failed.error : '', /NVIDIA-SMI has failed because it couldn't communicate/)
  const mismatch = await runNvidiaSmi(fakeSmi('nvml-mismatch.txt', 18))
  assert.match('error' in mismatch ? mismatch.error : '', /Driver\/library version mismatch/)
  const hung = await runNvidiaSmi(fakeSmi('rtx4090.csv', 0, 'sleep 5'), { timeoutMs: 200 })
  assert.match('error' in hung ? hung.error : '', /did not answer within 200 ms/)
})

test('declared GPUs are kept apart and marked declared', async () => {
  const p = await probeResources({ nvidiaSmi: join(dir, 'absent'), diskPath: dir, declaredGpus: parseGpuSpec('2xRTX4090:24GiB') })
  assert.equal(p.probedGpus, [])
  assert.equal(p.gpus, [{ model: 'RTX4090', count: 2, memoryMib: 24576, declared: true }])
  assert.equal(gpuDevices(p), [{ index: 0, model: 'RTX4090', memoryMib: 24576 }, { index: 1, model: 'RTX4090', memoryMib: 24576 }])
  const both = await probeResources({ nvidiaSmi: fakeSmi('rtx4090.csv'), diskPath: dir, declaredGpus: parseGpuSpec('A100') })
  assert.equal(both.gpus.map(g => [g.model, g.declared]), [['RTX4090', false], ['A100', true]])
  assert.equal(gpuDevices(both).map(d => [d.index, d.model]), [[0, 'RTX4090'], [1, 'A100']])
})

test.after(() => rmSync(dir, { recursive: true, force: true }))
test.run()
