import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, writeFileSync, rmSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProcessExecutor } from '../../../src/compute/executors/process.js'
import type { ExecutionRequest } from '../../../src/compute/executors/types.js'

// The provider's own secrets: an environment variable and a file in its working directory.
process.env.DBC_PROVIDER_SECRET = 'hunter2-provider-secret'
const providerDir = mkdtempSync(join(tmpdir(), 'dbc-provider-'))
writeFileSync(join(providerDir, 'wallet.key'), 'PRIVATE KEY MATERIAL')
process.chdir(providerDir)
const tasksRoot = mkdtempSync(join(tmpdir(), 'dbc-tasks-'))

const ex = new ProcessExecutor({ enabled: true, tmpDir: tasksRoot })
const base: ExecutionRequest = { taskId: 'p1', code: new Uint8Array(0), entry: 'cat', input: new Uint8Array(0), timeoutMs: 5000, memoryLimitMib: 64, maxOutputBytes: 1 << 20 }
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const run = async (entry: string, over: Partial<ExecutionRequest> = {}): Promise<string> => text((await ex.run({ ...base, entry, ...over })).output)

async function failure (req: Partial<ExecutionRequest>, exec = ex): Promise<Error & { code: string }> {
  try { await exec.run({ ...base, ...req }) } catch (err) { return err as Error & { code: string } }
  throw new Error('expected the task to fail')
}

test('off unless the provider enables it', async () => {
  const off = new ProcessExecutor()
  assert.equal((await off.availability()).available, false)
  assert.match((await off.availability()).reason ?? '', /enable it in the provider policy/)
  assert.is((await failure({}, off)).code, 'EXECUTOR_DISABLED')
})

test('stdin in, stdout out, code file beside it', async () => {
  assert.is(await run('tr a-z A-Z', { input: new TextEncoder().encode('hello') }), 'HELLO')
  assert.is(await run('sh ./code', { code: new TextEncoder().encode('echo from-script') }), 'from-script\n')
})

test('the task sees none of the provider\'s environment', async () => {
  const env = await run('env')
  assert.not.match(env, /hunter2/)
  assert.not.match(env, /DBC_PROVIDER_SECRET/)
  const names = env.trim().split('\n').map(l => l.split('=')[0]).filter(n => n !== '' && n !== 'SHLVL' && n !== '_')
  assert.equal(names.sort(), ['CUDA_VISIBLE_DEVICES', 'DBC_TASK_ID', 'HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR'])
  assert.is(await run('printf "%s" "$DBC_PROVIDER_SECRET"'), '')
})

test('its working dir is a private, fresh task dir, not the provider\'s, and it is removed after', async () => {
  const pwd = (await run('pwd')).trim()
  assert.ok(pwd.startsWith(join(tasksRoot, 'dbc-task-')), pwd)
  assert.is.not(pwd, providerDir)
  assert.is(await run('ls -A'), '')
  assert.is(await run('cat wallet.key 2>/dev/null || echo missing'), 'missing\n')
  assert.is(await run('cat "$HOME/wallet.key" 2>/dev/null || echo missing'), 'missing\n')
  assert.not.ok(existsSync(pwd))
  assert.equal(readdirSync(tasksRoot), [])
  // two tasks never share a directory
  const [a, b] = await Promise.all([run('pwd'), run('pwd')])
  assert.is.not(a, b)
})

test('a task sees only the GPUs its slot holds', async () => {
  assert.is(await run('printf "[%s]" "$CUDA_VISIBLE_DEVICES"'), '[]')
  assert.is(await run('printf "[%s]" "$CUDA_VISIBLE_DEVICES"', { gpuIndexes: [1, 3] }), '[1,3]')
})

test('time limit, output limit and exit codes', async () => {
  const t0 = performance.now()
  const slow = await failure({ entry: 'sleep 30', timeoutMs: 300 })
  assert.is(slow.code, 'TASK_TIMEOUT')
  assert.ok(performance.now() - t0 < 3000)
  const chatty = await failure({ entry: 'yes', maxOutputBytes: 10_000 })
  assert.is(chatty.code, 'TASK_OUTPUT_TOO_LARGE')
  const bad = await failure({ entry: 'echo oops >&2; exit 3' })
  assert.is(bad.code, 'TASK_EXIT_CODE')
  assert.match(bad.message, /exited with code 3: oops/)
  // background children die with the task
  const spawnedMarker = join(tasksRoot, 'never-written')
  await failure({ entry: `(sleep 1; touch ${spawnedMarker}) & sleep 30`, timeoutMs: 200 })
  await new Promise(resolve => setTimeout(resolve, 1300))
  assert.not.ok(existsSync(spawnedMarker))
})

test('CPU time is metered', async () => {
  const r = await ex.run({ ...base, entry: 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done' })
  assert.ok(r.cpuMs > 0, `cpu ${r.cpuMs}`)
  assert.ok(r.cpuMs <= r.wallMs * 2 + 20)
})

test.after(() => {
  process.chdir(tmpdir())
  rmSync(providerDir, { recursive: true, force: true })
  rmSync(tasksRoot, { recursive: true, force: true })
})
test.run()
