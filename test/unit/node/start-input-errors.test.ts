// `dbc node start` with odd input (found by helper user): each must fail before anything starts
// with a ConfigError that names the setting and says what to do, and no stack trace.
//   - a data dir that is a file: was "ENOTDIR: not a directory, mkdir '<dir>/logs'" + "run again with --verbose";
//   - a --config that is a directory or unreadable: was "is not valid YAML/JSON: EISDIR/EACCES" + "fix the syntax error it names";
//   - a bad --gpus: was a bare GpuSpecError (no hint), with --detach only after the background process started.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../../src/node/config.js'
import { ensureDataDir, startFailure } from '../../../src/cli/node.js'
import { ConfigError } from '../../../src/errors.js'

const dbcBin = fileURLToPath(new URL('../../../bin/dbc.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'dbc-start-input-'))
const aFile = join(dir, 'a-file')
writeFileSync(aFile, 'x')

function configError (fn: () => unknown): ConfigError {
  try { fn() } catch (err) {
    assert.instance(err, ConfigError)
    return err as ConfigError
  }
  throw new Error('no error')
}

test('a data dir that is a file, or under one, is a dataDir error with what to pass', () => {
  const e = configError(() => { ensureDataDir(aFile) })
  assert.is(e.key, 'dataDir')
  assert.match(e.message, 'is not a directory (a file is in its place)')
  assert.match(e.hint ?? '', '--data-dir DIR')
  assert.match(configError(() => { ensureDataDir(join(aFile, 'sub')) }).message, 'or in its path')
  ensureDataDir(join(dir, 'new', 'dd')) // a missing one is created
})

test('a --config that is a directory is not called a syntax error', () => {
  const e = configError(() => loadConfig({ flags: { dataDir: join(dir, 'dd') }, configFile: dir, env: {} }))
  assert.is(e.key, 'config')
  assert.match(e.message, 'is a directory')
  assert.not.match(e.hint ?? '', 'syntax')
})

test('an unreadable --config says so (skipped as root: root reads it anyway)', () => {
  if (process.getuid?.() === 0) return
  const f = join(dir, 'secret.yaml')
  writeFileSync(f, 'location: Tokyo\n')
  chmodSync(f, 0o000)
  const e = configError(() => loadConfig({ flags: { dataDir: join(dir, 'dd') }, configFile: f, env: {} }))
  assert.match(e.message, 'cannot be read by this user (permission denied)')
})

test('a bad GPU spec is a config error on `gpus` with the format, found before the node starts', () => {
  const e = configError(() => loadConfig({ flags: { dataDir: join(dir, 'dd'), gpus: 'lots' }, env: {} }))
  assert.is(e.key, 'gpus')
  assert.match(e.message, 'GPU spec "lots"')
  assert.match(e.hint ?? '', '2xRTX4090:24GiB')
  assert.is(loadConfig({ flags: { dataDir: join(dir, 'dd'), gpus: '2xRTX4090' }, env: {} }).gpus, '2xRTX4090')
})

test('the CLI prints each as one error and a hint, exit 2, no stack trace, nothing started', () => {
  const run = (...args: string[]): { status: number | null, stderr: string } => {
    const r = spawnSync(process.execPath, [dbcBin, ...args], { encoding: 'utf8', env: { ...process.env, DEBUG: '' }, timeout: 60_000 })
    return { status: r.status, stderr: r.stderr }
  }
  const gpus = run('--data-dir', join(dir, 'dd2'), 'node', 'start', '--detach', '--gpus', 'lots', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0')
  assert.is(gpus.status, 2, gpus.stderr)
  assert.match(gpus.stderr, /^error: config "gpus": GPU spec "lots"/)
  assert.match(gpus.stderr, /\nhint: declare GPUs as/)
  assert.not.match(gpus.stderr, /at |exited during start/)
  const file = run('--data-dir', aFile, 'node', 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0')
  assert.is(file.status, 2, file.stderr)
  assert.match(file.stderr, /^error: config "dataDir": .* is not a directory/)
  assert.not.match(file.stderr, /ENOTDIR|--verbose/)
  // a port that is not a number: was `expected number, got number null` (Number("abc") is NaN, sent as null)
  const port = run('--data-dir', join(dir, 'dd3'), 'node', 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', 'abc')
  assert.is(port.status, 2, port.stderr)
  assert.match(port.stderr, /^error: config "api\.port": expected number, got string "abc"/)
})

// found on helper user16's walk: with --detach these ended 'error: the node exited during start (code 2): ...'
// with 'hint: see .../daemon.out' and exit 1, though the node had printed its own hint; an unknown city
// was found only by the background node
test('with --detach, an unknown city and a busy port are config errors with their own hint, exit 2', async () => {
  const run = (...args: string[]): { status: number | null, stderr: string } => {
    const r = spawnSync(process.execPath, [dbcBin, ...args], { encoding: 'utf8', env: { ...process.env, DEBUG: '' }, timeout: 90_000 })
    return { status: r.status, stderr: r.stderr }
  }
  const city = run('--data-dir', join(dir, 'dd4'), 'node', 'start', '--detach', '--location', 'Xyzzyvillezz', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', '0')
  assert.is(city.status, 2, city.stderr)
  assert.match(city.stderr, /^error: config "location": no city named "Xyzzyvillezz"/)
  assert.match(city.stderr, /\nhint: Give a city as "Name"/)
  assert.not.match(city.stderr, /exited during start/)
  assert.not.ok(existsSync(join(dir, 'dd4', 'logs', 'daemon.out')), 'no background process was started')
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  const taken = (busy.address() as AddressInfo).port
  try {
    const port = run('--data-dir', join(dir, 'dd5'), 'node', 'start', '--detach', '--listen', '/ip4/127.0.0.1/tcp/0', '--api-port', String(taken), '--no-relay')
    assert.is(port.status, 2, port.stderr)
    assert.match(port.stderr, /^error: config "api\.port": cannot listen on 127\.0\.0\.1:\d+/)
    assert.match(port.stderr, /\nhint: /)
    assert.not.match(port.stderr, /exited during start|hint: see /)
  } finally { busy.close() }
})

test('startFailure reads the last error of this start, its hint and its key', () => {
  const f = startFailure('error: config "listen": old\nhint: old hint\nsome log\nerror: config "api.port": cannot listen on 127.0.0.1:1: busy\nhint: pick another\n')
  assert.equal(f, { reason: 'config "api.port": cannot listen on 127.0.0.1:1: busy', hint: 'pick another', key: 'api.port', problem: 'cannot listen on 127.0.0.1:1: busy' })
  assert.equal(startFailure('Error: crashed\n'), { reason: '', problem: '' })
  assert.equal(startFailure('error: chain unreachable\n'), { reason: 'chain unreachable', hint: undefined, problem: 'chain unreachable' })
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })

test.run()
