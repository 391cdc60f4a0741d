// The operator's trainers: started by name only, in a clean environment and a fresh directory,
// under limits, killed with their job; every way a start can fail is a TrainingError, never an
// uncaught exception. Runs with namespace isolation when this machine has it, and once without.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { TrainerRegistry, trainerEnv } from '../../../src/training/trainers.js'
import { ExternalTrainer } from '../../../src/training/external.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { isolationSupport } from '../../../src/compute/isolation/index.js'
import { fixtureTrainer } from './fixtures/trainer-config.js'

const uncaught: Error[] = []
process.on('uncaughtException', (err) => { uncaught.push(err) })
process.on('unhandledRejection', (err) => { uncaught.push(err as Error) })

const root = mkdtempSync(join(tmpdir(), 'dbc-trainers-'))
chmodSync(root, 0o755)
const spec = parseTrainingSpec({ model: { kind: 'external', trainer: 'stand-in' } })
const ctx = { rank: 0, shards: 1, spec }
const modes: Array<{ name: string, isolate: boolean }> = [{ name: 'fallback (process group + prlimit)', isolate: false }]
if (isolationSupport().available) modes.unshift({ name: 'namespace isolation', isolate: true })

/** A directory any user may write (an isolated trainer runs as another user). */
function dumpDir (): string {
  const d = mkdtempSync(join(root, 'dump-'))
  chmodSync(d, 0o777)
  return d
}

/** Host processes whose command line holds `token`. */
function processesWith (token: string): number[] {
  const out: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try { if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token)) out.push(Number(p)) } catch {}
  }
  return out
}

async function until (cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 50))
}

test('trainerEnv copies only allow-listed names, then setEnv, and a minimal PATH', () => {
  const env = trainerEnv({ env: ['CUDA_VISIBLE_DEVICES', 'NOT_SET'], setEnv: { OMP_NUM_THREADS: '4' } }, { CUDA_VISIBLE_DEVICES: '0,1', SECRET_TOKEN: 'x', PATH: '/evil' })
  assert.equal(env, { CUDA_VISIBLE_DEVICES: '0,1', OMP_NUM_THREADS: '4', PATH: '/usr/local/bin:/usr/bin:/bin' })
})

test('an unknown trainer is refused with the names this node offers', async () => {
  const reg = new TrainerRegistry({ trainers: { 'torch-mnist': fixtureTrainer(), 'a-first': fixtureTrainer() } })
  assert.equal(reg.names(), ['a-first', 'torch-mnist'])
  assert.is(reg.unknownTrainer('x'), "unknown trainer 'x' (this node offers: a-first, torch-mnist)")
  assert.is(new TrainerRegistry().unknownTrainer('x'), "unknown trainer 'x' (this node offers: none)")
  try {
    await reg.start('x', ctx)
    assert.unreachable()
  } catch (err) {
    assert.is((err as any).code, 'UNKNOWN_TRAINER')
  }
})

// helper user16's walk: a trainer whose command named a missing program was advertised and listed by
// `dbc node status`, and the node said nothing until every job's invitation was refused
test('problems names each trainer whose program is not an executable file (the daemon warns at start)', () => {
  const reg = new TrainerRegistry({
    trainers: {
      fine: fixtureTrainer(),
      missing: { ...fixtureTrainer(), command: [join(root, 'no-such-python'), 'x.py'] },
      bare: { ...fixtureTrainer(), command: ['no-such-program-dbc'] },
      sock: { socket: join(root, 'trainer.sock'), env: [], setEnv: {}, limits: fixtureTrainer().limits } as never
    },
    env: {}
  })
  assert.equal(reg.problems(), [
    `config "trainers.bare.command": no-such-program-dbc is not an executable file in the trainer's PATH (/usr/local/bin:/usr/bin:/bin): every job naming trainer 'bare' is refused until it is fixed`,
    `config "trainers.missing.command": ${join(root, 'no-such-python')} is not an executable file: every job naming trainer 'missing' is refused until it is fixed`
  ])
  assert.equal(new TrainerRegistry({ trainers: { fine: fixtureTrainer() } }).problems(), [])
})

test('a raw spawn of a missing or non-executable program rejects; nothing is thrown asynchronously (ENOENT, EACCES, EPIPE)', async () => {
  const notExec = join(root, 'plain-file')
  writeFileSync(notExec, 'not a program\n', { mode: 0o644 })
  for (const command of [[join(root, 'does-not-exist')], [notExec], ['no-such-program-anywhere']]) {
    try {
      await ExternalTrainer.spawn(command, { rank: 0 }, { requestTimeoutMs: 10_000 })
      assert.unreachable()
    } catch (err) {
      assert.match((err as any).code, /^EXTERNAL_TRAINER_(SPAWN_FAILED|GONE|EXITED)$/, (err as Error).message)
    }
  }
})

for (const mode of modes) {
  test(`[${mode.name}] a trainer sees only its allowed environment, runs in a fresh directory, and dies with its job`, async () => {
    const dump = dumpDir()
    const tag = `dbc-test-${randomBytes(6).toString('hex')}`
    const dataDir = join(root, `data-${tag}`)
    process.env.DBC_TEST_ALLOWED = 'yes'
    process.env.DBC_TEST_SECRET = 'must-not-leak'
    const reg = new TrainerRegistry({
      trainers: { 'stand-in': fixtureTrainer([`--dump=${dump}`, `--tag=${tag}`], { env: ['DBC_TEST_ALLOWED'], setEnv: { FIXED: '1' } }) },
      dataDir,
      isolate: mode.isolate
    })
    const t = await reg.start('stand-in', ctx)
    assert.is(t.paramCount, 784 * 64 + 64 + 640 + 10)
    const env = JSON.parse(readFileSync(join(dump, 'env.json'), 'utf8')) as Record<string, string>
    // node itself may add nothing; PWD/SHLVL/_ come from no shell here
    assert.equal(Object.keys(env).sort(), ['DBC_TEST_ALLOWED', 'FIXED', 'PATH'])
    assert.is(env.DBC_TEST_ALLOWED, 'yes')
    const cwd = readFileSync(join(dump, 'cwd'), 'utf8')
    assert.ok(cwd.startsWith(join(dataDir, 'trainers', 'stand-in-')), `cwd ${cwd}`)
    assert.ok(existsSync(cwd), 'the work dir exists while the job runs')
    assert.ok(processesWith(tag).length > 0, 'the trainer runs')
    await t.step(2)
    await t.close()
    await until(() => processesWith(tag).length === 0)
    assert.equal(processesWith(tag), [], 'no process of the trainer is left')
    assert.not.ok(existsSync(cwd), 'the work dir is removed')
    delete process.env.DBC_TEST_SECRET
    delete process.env.DBC_TEST_ALLOWED
  })

  test(`[${mode.name}] a trainer that ignores shutdown${mode.isolate ? ' and leaves a setsid grandchild' : ''} is killed when its job ends`, async () => {
    const tag = `dbc-test-${randomBytes(6).toString('hex')}`
    const flags = ['--linger', `--tag=${tag}`, ...(mode.isolate ? ['--escape'] : [])]
    const reg = new TrainerRegistry({ trainers: { 'stand-in': fixtureTrainer(flags) }, dataDir: join(root, `data-${tag}`), isolate: mode.isolate })
    const t = await reg.start('stand-in', ctx)
    if (mode.isolate) await until(() => processesWith(`escaped-${tag}`).length > 0)
    assert.ok(processesWith(tag).length >= (mode.isolate ? 2 : 1), 'trainer (and grandchild) run')
    await t.close()
    await until(() => processesWith(tag).length === 0)
    assert.equal(processesWith(tag), [], 'no process of the trainer is left')
  })

  test(`[${mode.name}] a missing command is a refusal, not a crash`, async () => {
    const reg = new TrainerRegistry({ trainers: { 'stand-in': { ...fixtureTrainer(), command: [join(root, 'no-such-trainer'), '--x'] } }, dataDir: join(root, 'data-missing'), isolate: mode.isolate })
    try {
      await reg.start('stand-in', ctx)
      assert.unreachable()
    } catch (err) {
      assert.is((err as any).code, 'TRAINER_SPAWN_FAILED')
      assert.match((err as Error).message, /not an executable file/)
    }
    // a file that is not executable (EACCES from spawn itself when isolation is off)
    const notExec = join(root, 'not-executable.sh')
    writeFileSync(notExec, 'echo hi\n', { mode: 0o644 })
    const reg2 = new TrainerRegistry({ trainers: { 'stand-in': { ...fixtureTrainer(), command: [notExec] } }, isolate: mode.isolate })
    try { await reg2.start('stand-in', ctx); assert.unreachable() } catch (err) { assert.is((err as any).code, 'TRAINER_SPAWN_FAILED') }
  })

  test(`[${mode.name}] a trainer that exits at once, or announces 10^9 parameters, is refused`, async () => {
    const reg = new TrainerRegistry({
      trainers: {
        quitter: fixtureTrainer(['--exit-now']),
        huge: fixtureTrainer(['--params=1000000000'], { limits: { memoryMiB: 0, cpuSeconds: 60, maxParams: 10_000_000, requestTimeoutMs: 600_000 } })
      },
      dataDir: join(root, 'data-quit'),
      isolate: mode.isolate
    })
    try { await reg.start('quitter', ctx); assert.unreachable() } catch (err) {
      assert.is((err as any).code, 'TRAINER_SPAWN_FAILED')
      assert.match((err as Error).message, /exited with code 3|closed its connection|cannot write/)
    }
    try { await reg.start('huge', ctx); assert.unreachable() } catch (err) {
      assert.is((err as any).code, 'TRAINER_MODEL_TOO_LARGE')
      assert.match((err as Error).message, /1000000000 parameters, this node allows at most 10000000/)
    }
    assert.equal(readdirSync(join(root, 'data-quit', 'trainers')), [], 'work dirs of failed starts are removed')
  })

  test(`[${mode.name}] an address-space limit applies to the trainer`, async () => {
    const reg = new TrainerRegistry({ trainers: { tiny: fixtureTrainer([], { limits: { memoryMiB: 64, cpuSeconds: 60, maxParams: 10_000_000, requestTimeoutMs: 60_000 } }) }, isolate: mode.isolate })
    try { await reg.start('tiny', ctx); assert.unreachable('node cannot start in 64 MiB of address space') } catch (err) {
      assert.is((err as any).code, 'TRAINER_SPAWN_FAILED')
    }
  })
}

test('no uncaught exception or unhandled rejection happened', async () => {
  await new Promise(resolve => setTimeout(resolve, 200))
  assert.equal(uncaught.map(e => e.message), [])
  rmSync(root, { recursive: true, force: true })
})

test.run()
