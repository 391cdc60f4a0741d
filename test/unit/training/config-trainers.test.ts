// The `trainers:` section of the node's config: the only place programs for training are named.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultConfig, loadConfig, validateConfig, TRAINER_LIMIT_DEFAULTS } from '../../../src/node/config.js'

const withTrainers = (trainers: unknown): unknown => validateConfig({ ...defaultConfig('/tmp/dbc-x'), trainers } as any).trainers

function configError (trainers: unknown): string {
  try {
    withTrainers(trainers)
  } catch (err) {
    assert.is((err as any).code, 'CONFIG_INVALID')
    return (err as Error).message
  }
  throw new Error('accepted')
}

test('no trainers by default', () => {
  assert.equal(defaultConfig().trainers, {})
})

test('a trainer with a command gets defaults for every field it leaves out', () => {
  const t = withTrainers({ 'torch-mnist': { command: ['/usr/bin/python3', '/opt/t.py'], env: ['CUDA_VISIBLE_DEVICES'], setEnv: { OMP_NUM_THREADS: '4' }, limits: { maxParams: 5_000_000 } } }) as any
  assert.equal(t['torch-mnist'], {
    command: ['/usr/bin/python3', '/opt/t.py'],
    env: ['CUDA_VISIBLE_DEVICES'],
    setEnv: { OMP_NUM_THREADS: '4' },
    limits: { ...TRAINER_LIMIT_DEFAULTS, maxParams: 5_000_000 }
  })
  const s = withTrainers({ mine: { socket: '/run/trainer.sock', workDir: '/srv/jobs' } }) as any
  assert.equal(s.mine, { socket: '/run/trainer.sock', workDir: '/srv/jobs', env: [], setEnv: {}, limits: TRAINER_LIMIT_DEFAULTS })
})

test('a bad trainer value names its key', () => {
  assert.match(configError({ 'Torch MNIST': { command: ['x'] } }), /config "trainers\.Torch MNIST": is not a trainer name/)
  assert.match(configError({ t: { command: ['x'], socket: '/s' } }), /config "trainers\.t": needs exactly one of `command`/)
  assert.match(configError({ t: {} }), /config "trainers\.t": needs exactly one/)
  assert.match(configError({ t: { command: 'python3 t.py' } }), /config "trainers\.t\.command": expected array/)
  assert.match(configError({ t: { command: [] } }), /config "trainers\.t\.command"/)
  assert.match(configError({ t: { command: ['x'], env: ['LD_PRELOAD=/x'] } }), /config "trainers\.t\.env\.0": .* is not an environment variable name/)
  assert.match(configError({ t: { command: ['x'], limits: { memoryMiB: -1 } } }), /config "trainers\.t\.limits\.memoryMiB"/)
  assert.match(configError({ t: { command: ['x'], limits: { maxParams: 1e9 } } }), /config "trainers\.t\.limits\.maxParams"/)
  assert.match(configError({ t: { command: ['x'], limits: { gpus: 1 } } }), /config "trainers\.t\.limits\.gpus": is not a known setting/)
  assert.match(configError({ t: { command: ['x'], image: 'x' } }), /config "trainers\.t\.image": is not a known setting/)
})

test('trainers come from the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-config-'))
  try {
    writeFileSync(join(dir, 'config.yaml'), 'trainers:\n  torch-mnist:\n    command: [/usr/bin/python3, /opt/t.py]\n    env: [CUDA_VISIBLE_DEVICES]\n    limits: { memoryMiB: 0, cpuSeconds: 3600 }\n')
    const c = loadConfig({ flags: { dataDir: dir }, env: {} })
    assert.equal(c.trainers['torch-mnist'].command, ['/usr/bin/python3', '/opt/t.py'])
    assert.is(c.trainers['torch-mnist'].limits.memoryMiB, 0)
    assert.is(c.trainers['torch-mnist'].limits.cpuSeconds, 3600)
    assert.is(c.trainers['torch-mnist'].limits.requestTimeoutMs, TRAINER_LIMIT_DEFAULTS.requestTimeoutMs)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('serves: a trainer may run the built-in MLP in place of the built-in trainer; nothing else', () => {
  const t = withTrainers({ 'torch-mlp': { command: ['/usr/bin/python3', '/opt/torch_trainer.py'], serves: ['mlp'] } }) as any
  assert.equal(t['torch-mlp'].serves, ['mlp'])
  assert.is((withTrainers({ x: { command: ['/bin/true'] } }) as any).x.serves, undefined)
  assert.match(configError({ x: { command: ['/bin/true'], serves: ['resnet'] } }), /trainers\.x\.serves/)
})

test.run()
