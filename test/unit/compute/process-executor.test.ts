import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync, rmSync, existsSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProcessExecutor } from '../../../src/compute/executors/process.js'
import { isolationSupport } from '../../../src/compute/isolation/index.js'
import type { ExecutionRequest } from '../../../src/compute/executors/types.js'

// The provider's own secrets: an environment variable and a file in its working directory.
process.env.DBC_PROVIDER_SECRET = 'hunter2-provider-secret'
const providerDir = mkdtempSync(join(tmpdir(), 'dbc-provider-'))
writeFileSync(join(providerDir, 'wallet.key'), 'PRIVATE KEY MATERIAL')
process.chdir(providerDir)
const tasksRoot = mkdtempSync(join(tmpdir(), 'dbc-tasks-'))
chmodSync(tasksRoot, 0o755)
// The node's data dir, with its identity key (world-readable here, so only the hiding can keep it from tasks).
const dataDir = join(tasksRoot, 'node-data')
mkdirSync(dataDir)
writeFileSync(join(dataDir, 'identity.key'), 'NODE-IDENTITY-SECRET', { mode: 0o644 })
const iso = isolationSupport()
if (!iso.available) console.log(`process isolation unavailable, process executor tests skipped: ${iso.reason ?? ''}`)

const ex = new ProcessExecutor({ enabled: true, tmpDir: tasksRoot, dataDir, hidePaths: [providerDir] })
const base: ExecutionRequest = { taskId: 'p1', code: new Uint8Array(0), entry: 'cat', input: new Uint8Array(0), timeoutMs: 5000, memoryLimitMib: 64, maxOutputBytes: 1 << 20 }
const text = (b: Uint8Array): string => new TextDecoder().decode(b)
const run = async (entry: string, over: Partial<ExecutionRequest> = {}): Promise<string> => text((await ex.run({ ...base, entry, ...over })).output)

async function failure (req: Partial<ExecutionRequest>, exec = ex, signal?: AbortSignal): Promise<Error & { code: string }> {
  try { await exec.run({ ...base, ...req }, { signal }) } catch (err) { return err as Error & { code: string } }
  throw new Error('expected the task to fail')
}

test('off unless the provider enables it', async () => {
  const off = new ProcessExecutor()
  assert.equal((await off.availability()).available, false)
  assert.match((await off.availability()).reason ?? '', /enable it in the provider policy/)
  assert.is((await failure({}, off)).code, 'EXECUTOR_DISABLED')
})

const it = iso.available ? test : test.skip

test('unavailable, with the reason, where isolation is', async () => {
  const a = await ex.availability()
  assert.is(a.available, iso.available)
  if (!iso.available) {
    assert.match(a.reason ?? '', /needs process isolation/)
    assert.is((await failure({})).code, 'EXECUTOR_UNAVAILABLE')
  }
})

it('stdin in, stdout out, code file beside it', async () => {
  assert.is(await run('tr a-z A-Z', { input: new TextEncoder().encode('hello') }), 'HELLO')
  assert.is(await run('sh ./code', { code: new TextEncoder().encode('echo from-script') }), 'from-script\n')
})

it('the task sees none of the provider\'s environment', async () => {
  const env = await run('env')
  assert.not.match(env, /hunter2/)
  assert.not.match(env, /DBC_PROVIDER_SECRET/)
  const names = env.trim().split('\n').map(l => l.split('=')[0]).filter(n => n !== '' && n !== 'SHLVL' && n !== '_')
  assert.equal(names.sort(), ['CUDA_VISIBLE_DEVICES', 'DBC_TASK_ID', 'HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR'])
  assert.is(await run('printf "%s" "$DBC_PROVIDER_SECRET"'), '')
})

it('its working dir is a private, fresh task dir, not the provider\'s, and it is removed after', async () => {
  const pwd = (await run('pwd')).trim()
  assert.ok(pwd.startsWith(join(tasksRoot, 'dbc-process-')), pwd)
  assert.is.not(pwd, providerDir)
  assert.is(await run('ls -A'), '')
  assert.is(await run('cat wallet.key 2>/dev/null || echo missing'), 'missing\n')
  assert.is(await run('cat "$HOME/wallet.key" 2>/dev/null || echo missing'), 'missing\n')
  assert.is(await run(`cat ${join(providerDir, 'wallet.key')} 2>/dev/null || echo missing`), 'missing\n')
  assert.not.ok(existsSync(pwd))
  // two tasks never share a directory, and one cannot see the other's
  const [a, b] = await Promise.all([run('pwd; echo mine > f; sleep 0.3; ls ..'), run('pwd; echo mine > f; sleep 0.3; ls ..')])
  assert.is.not(a.split('\n')[0], b.split('\n')[0])
  for (const out of [a, b]) {
    const [dir, listing] = out.trim().split('\n', 3)
    assert.is(listing, dir.split('/').pop(), `only its own dir is visible: ${out}`)
    assert.is(out.trim().split('\n').length, 2, out)
  }
})

it('the task cannot read the node\'s data dir or identity key, and writes nowhere but its dir', async () => {
  const out = await run(`cat ${join(dataDir, 'identity.key')} 2>&1; ls -A ${dataDir}; touch ${join(tasksRoot, 'x')} 2>/dev/null && echo wrote || echo refused; touch /tmp/dbc-left-behind 2>/dev/null && echo wrote || echo refused; id -u`)
  assert.not.match(out, /NODE-IDENTITY-SECRET/)
  assert.match(out, /No such file/)
  assert.match(out, /refused\nrefused\n/)
  assert.not.ok(existsSync('/tmp/dbc-left-behind'))
  if (process.getuid?.() === 0) assert.match(out, /65534\n$/)
  // no network: only a loopback in its namespace
  assert.is(await run('tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'), 'lo\n')
})

it('a task sees only the GPUs its slot holds', async () => {
  assert.is(await run('printf "[%s]" "$CUDA_VISIBLE_DEVICES"'), '[]')
  assert.is(await run('printf "[%s]" "$CUDA_VISIBLE_DEVICES"', { gpuIndexes: [1, 3] }), '[1,3]')
})

it('time limit, output limit and exit codes', async () => {
  const t0 = performance.now()
  const slow = await failure({ entry: 'sleep 30', timeoutMs: 300 })
  assert.is(slow.code, 'TASK_TIMEOUT')
  assert.ok(performance.now() - t0 < 3000)
  const chatty = await failure({ entry: 'yes', maxOutputBytes: 10_000 })
  assert.is(chatty.code, 'TASK_OUTPUT_TOO_LARGE')
  const bad = await failure({ entry: 'echo oops >&2; exit 3' })
  assert.is(bad.code, 'TASK_EXIT_CODE')
  assert.match(bad.message, /exited with code 3: oops/)
})

/** Host pids whose command line is exactly `sleep <n>`. */
function sleepers (n: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try { if (readFileSync(`/proc/${name}/cmdline`, 'utf8') === `sleep\0${n}\0`) out.push(Number(name)) } catch { /* gone */ }
  }
  return out
}

it('(setsid sleep 127 &) does not survive its task, whether it ends, times out or is cancelled', async () => {
  // the case, by its own numbers: 127 s (another test file could also run `sleep 127`, so it is checked
  // together with a unique one)
  const n = 9000 + Math.floor(Math.random() * 1000)
  assert.is(await run(`(setsid sleep 127 &); (setsid sleep ${n} &); echo started`), 'started\n')
  assert.equal(sleepers(n), [])
  const ac = new AbortController()
  const running = failure({ entry: `(setsid sleep ${n} &); (setsid sleep ${n} &); sleep 60`, timeoutMs: 60_000 }, ex, ac.signal)
  for (let i = 0; i < 3000 && sleepers(n).length < 2; i++) await new Promise(resolve => setTimeout(resolve, 10))
  assert.is(sleepers(n).length, 2, 'the escapes ran')
  ac.abort()
  assert.is((await running).code, 'TASK_CANCELLED')
  assert.equal(sleepers(n), [])
  const timedOut = await failure({ entry: `(setsid sleep ${n} &); sleep 60`, timeoutMs: 500 })
  assert.is(timedOut.code, 'TASK_TIMEOUT')
  assert.equal(sleepers(n), [])
})

it('CPU time is metered', async () => {
  const r = await ex.run({ ...base, entry: 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done' })
  assert.ok(r.cpuMs > 0, `cpu ${r.cpuMs}`)
  assert.ok(r.cpuMs <= r.wallMs * 2 + 20)
})

test.after(async () => {
  await ex.close()
  process.chdir(tmpdir())
  rmSync(providerDir, { recursive: true, force: true })
  rmSync(tasksRoot, { recursive: true, force: true })
})
test.run()
