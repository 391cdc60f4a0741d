import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdtempSync, mkdirSync, writeFileSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnIsolated, isolationSupport, TASK_UID, type IsolatedProcess } from '../../../src/compute/isolation/index.js'
import { launchCommand, prlimitArgs } from '../../../src/compute/isolation/launcher.js'

const support = isolationSupport()
const root = mkdtempSync(join(tmpdir(), 'dbc-iso-'))
chmodSync(root, 0o755) // world-searchable, so a failure to read below is the hiding, not permissions
const dataDir = join(root, 'data')
mkdirSync(join(dataDir, 'tasks'), { recursive: true, mode: 0o700 })
writeFileSync(join(dataDir, 'identity.key'), 'SECRET-IDENTITY')
const secretFile = join(root, 'wallet.key')
writeFileSync(secretFile, 'SECRET-WALLET', { mode: 0o644 })
const PATH = '/usr/local/bin:/usr/bin:/bin'

function taskDir (): string {
  const d = mkdtempSync(join(dataDir, 'tasks', 't-'))
  return d
}

/** Runs to completion; stdout, stderr and the exit code. */
async function run (script: string, over: { env?: Record<string, string>, limits?: Parameters<typeof spawnIsolated>[2]['limits'], command?: string, args?: string[] } = {}): Promise<{ out: string, err: string, code: number | null }> {
  const p = spawnIsolated(over.command ?? '/bin/sh', over.args ?? ['-c', script], { cwd: taskDir(), env: over.env ?? { PATH }, hidePaths: [dataDir, secretFile], limits: over.limits })
  return await collect(p)
}

async function collect (p: IsolatedProcess): Promise<{ out: string, err: string, code: number | null }> {
  let out = ''
  let err = ''
  p.child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  p.child.stderr?.on('data', (d: Buffer) => { err += d.toString() })
  p.child.stdin?.end()
  const code = await new Promise<number | null>(resolve => p.child.once('close', c => resolve(c)))
  return { out, err, code }
}

/** Host pids whose command line is exactly `sleep <n>`. */
function sleepers (n: number): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8') === `sleep\0${n}\0`) out.push(Number(name))
    } catch { /* gone */ }
  }
  return out
}

async function until (cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise(resolve => setTimeout(resolve, 10))
  assert.ok(cond(), what)
}

const it = support.available ? test : test.skip
if (!support.available) console.log(`isolation unavailable here: ${support.reason ?? ''}`)

test('the command line: limits soft = hard; the environment never on it', () => {
  assert.equal(prlimitArgs({ addressSpaceBytes: 1024, cpuSeconds: 2, processes: 3, openFiles: 4 }), ['--as=1024:1024', '--cpu=2:2', '--nproc=3:3', '--nofile=4:4'])
  assert.throws(() => prlimitArgs({ cpuSeconds: 0 }), /positive integer/)
  const tools = { env: '/usr/bin/env', prlimit: '/usr/bin/prlimit', setpriv: '/usr/bin/setpriv', unshare: '/usr/bin/unshare', sh: '/bin/sh' }
  const { file, args } = launchCommand({ command: 'x', args: ['y'], cwd: '/w', env: { TOKEN: 'do-not-show' }, hidePaths: ['/d'], limits: {} }, 'root', tools)
  assert.is(file, '/usr/bin/setpriv')
  assert.ok(args.includes('--pid') && args.includes('--kill-child') && args.includes('--mount-proc'))
  assert.ok(args.includes(`--reuid=${TASK_UID}`))
  assert.not.ok(args.join(' ').includes('do-not-show'))
  assert.equal(args.slice(-2), ['x', 'y'])
})

it('a setsid escape does not outlive a task that exits normally', async () => {
  const n = 7000 + Math.floor(Math.random() * 1000)
  const p = spawnIsolated('/bin/sh', ['-c', `(setsid sleep ${n} &); echo started; read line`], { cwd: taskDir(), env: { PATH }, hidePaths: [dataDir] })
  let out = ''
  p.child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  await until(() => out.includes('started') && sleepers(n).length === 1, 'the escaped sleep runs while the task does')
  const closed = new Promise(resolve => p.child.once('close', resolve))
  p.child.stdin?.end('go\n')
  await closed
  assert.equal(sleepers(n), [], 'the escaped sleep died with the task')
})

it('kill() takes every descendant, setsid escapes included, and resolves after they are gone', async () => {
  const n = 8000 + Math.floor(Math.random() * 1000)
  const p = spawnIsolated('/bin/sh', ['-c', `(setsid sleep ${n} &); (setsid sh -c 'sleep ${n}' &); echo started; sleep 600`], { cwd: taskDir(), env: { PATH }, hidePaths: [dataDir] })
  let out = ''
  p.child.stdout?.on('data', (d: Buffer) => { out += d.toString() })
  await until(() => out.includes('started') && sleepers(n).length === 2, 'both escapes run')
  await p.kill()
  assert.equal(sleepers(n), [])
  assert.ok(p.child.exitCode !== null || p.child.signalCode !== null)
  await p.kill() // twice is fine
})

it('hidden paths cannot be read; the task dir under a hidden dir still works and keeps its files', async () => {
  const r = await run(`cat ${join(dataDir, 'identity.key')}; ls -A ${dataDir}; cat ${secretFile}; echo written > f; cat f; echo done`)
  assert.not.match(r.out + r.err, /SECRET/)
  assert.match(r.err, /identity\.key: No such file/, JSON.stringify(r))
  assert.match(r.out, /written\ndone/)
  assert.is(r.code, 0)
})

it('a working directory below a directory closed to the task user is reached; the closed one is covered', async () => {
  if (process.getuid?.() !== 0) return
  const closed = mkdtempSync(join(root, 'closed-')) // 0700, like /root
  writeFileSync(join(closed, 'secret'), 'SECRET-CLOSED', { mode: 0o644 })
  const cwd = join(closed, 'work', 'task')
  mkdirSync(cwd, { recursive: true })
  const r = await collect(spawnIsolated('/bin/sh', ['-c', `cat ${join(closed, 'secret')}; ls -A ${closed}; echo out > "$HOME/f"; cat ./f`], { cwd, env: { PATH, HOME: cwd } }))
  assert.is(r.code, 0, r.err)
  assert.not.match(r.out, /SECRET/)
  assert.is(r.out, 'work\nout\n')
  assert.is(readFileSync(join(cwd, 'f'), 'utf8'), 'out\n')
})

it('a hidden path inside the working directory stays hidden', async () => {
  const cwd = taskDir()
  mkdirSync(join(cwd, 'private'))
  writeFileSync(join(cwd, 'private', 'k'), 'SECRET-INNER')
  const r = await collect(spawnIsolated('/bin/sh', ['-c', 'cat private/k; ls -A private; echo end'], { cwd, env: { PATH }, hidePaths: [dataDir, join(cwd, 'private')] }))
  assert.not.match(r.out, /SECRET/)
  assert.is(r.out, 'end\n')
})

it('runs unprivileged, and the environment is exactly what was passed', async () => {
  const env = { PATH, A: 'one', B: 'two words' }
  const r = await run('', { env, command: '/usr/bin/env', args: ['-0'] })
  const got = Object.fromEntries(r.out.split('\0').filter(s => s !== '').map(s => [s.slice(0, s.indexOf('=')), s.slice(s.indexOf('=') + 1)]))
  assert.equal(got, env)
  const pwdEnv = { PATH, PWD: '/somewhere' }
  const r2 = await run('', { env: pwdEnv, command: '/usr/bin/env', args: ['-0'] })
  assert.equal(r2.out.split('\0').filter(s => s !== '').sort(), ['PATH=' + PATH, 'PWD=/somewhere'])
  if (process.getuid?.() === 0) {
    const id = await run('id -u; id -g; cat /proc/self/status | grep CapEff')
    assert.match(id.out, new RegExp(`^${TASK_UID}\n${TASK_UID}\nCapEff:\\s+0+\n$`))
  }
  const ps = await run('ls /proc | grep -c "^[0-9]"')
  assert.ok(Number(ps.out.trim()) <= 4, `only the namespace's processes are visible (${ps.out.trim()})`)
})

it('limits apply, and the task cannot raise them', async () => {
  const r = await run('ulimit -n; ulimit -v; ulimit -t; ulimit -p; ulimit -n 512 2>/dev/null && echo raised || echo kept', { limits: { openFiles: 32, addressSpaceBytes: 512 * 1024 * 1024, cpuSeconds: 5, processes: 200 } })
  assert.is(r.out, `32\n${512 * 1024}\n5\n200\nkept\n`)
  // CPU seconds are enforced: a busy loop is stopped by SIGXCPU (or SIGKILL at the hard limit).
  const busy = await run('while :; do :; done', { limits: { cpuSeconds: 1 } })
  assert.ok(busy.code === 128 + 24 || busy.code === 128 + 9, `exit ${String(busy.code)}`)
  // Address space is enforced: allocating past it fails.
  const big = await run('head -c 200000000 /dev/zero | tr "\\0" a | sort > /dev/null; echo "rc=$?"', { limits: { addressSpaceBytes: 64 * 1024 * 1024 } })
  assert.not.match(big.out, /rc=0/)
})

it('noNetwork: an empty network namespace with only a loopback', async () => {
  const own = await collect(spawnIsolated('/bin/cat', ['/proc/net/dev'], { cwd: taskDir(), env: { PATH }, hidePaths: [dataDir], noNetwork: true }))
  const ifaces = own.out.split('\n').slice(2).map(l => l.split(':')[0].trim()).filter(x => x !== '')
  assert.equal(ifaces, ['lo'])
  const host = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map(l => l.split(':')[0].trim()).filter(x => x !== '')
  assert.ok(host.length > 1, 'the host has more than a loopback (so the check above means something)')
})

test.after(() => { rmSync(root, { recursive: true, force: true }) })
test.run()
