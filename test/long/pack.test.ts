// The package as published: `npm pack` (its prepack compiles dist/), `npm install --omit=dev` of
// the tarball into an empty directory, then the installed `dbc` runs with production
// dependencies only (no tsx, no TypeScript sources). In test/long: building and installing ~300
// MB of dependencies takes about 3 minutes on a loaded 2-core machine (see scripts/pack-install.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { realpathSync } from 'node:fs'
import { loadOrCreateIdentity } from '../../src/node/identity.js'
import { packAndInstall, type Installed } from '../../scripts/pack-install.js'

let inst: Installed
let pkgDir: string
const dataDir = mkdtempSync(join(tmpdir(), 'dbc-pack-data-'))

function dbc (...args: string[]): { code: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [inst.bin, '--data-dir', dataDir, ...args], { encoding: 'utf8', timeout: 120_000, cwd: tmpdir() })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test.before(() => {
  inst = packAndInstall()
  pkgDir = dirname(dirname(realpathSync(inst.bin)))
})

test('the package holds compiled code and its run-time files, no sources, no dev dependencies', () => {
  assert.ok(existsSync(join(pkgDir, 'dist', 'cli', 'main.js')))
  assert.ok(!existsSync(join(pkgDir, 'src')), 'no TypeScript sources in the package')
  for (const f of ['dist/wire/gen/wire.js', 'dist/compute/executors/wasm-worker.js', 'dist/compute/modules/square.wasm', 'dist/compute/modules/mandelbrot.wasm', 'dist/dashboard/web/index.html']) {
    assert.ok(existsSync(join(pkgDir, f)), `${f} is packed`)
  }
  const installed = readdirSync(join(dirname(inst.bin), '..'))
  for (const dev of ['tsx', 'typescript', 'esbuild', 'uvu']) assert.not.ok(installed.includes(dev), `${dev} (a dev dependency) is not installed`)
})

test('`dbc --help` and `dbc --version` run from dist', () => {
  const h = dbc('--help')
  assert.is(h.code, 0, h.stderr)
  assert.match(h.stdout, /^Usage: dbc \[options\] \[command\]/)
  for (const c of ['node', 'id', 'peers', 'job', 'chain', 'earnings']) assert.match(h.stdout, new RegExp(`\\n  ${c}\\b`))
  assert.is(dbc('--version').stdout.trim(), '0.1.0')
})

test('`dbc id` with a temp data dir: a clear error before any identity, then the peer id', async () => {
  const none = dbc('id')
  assert.is(none.code, 1)
  assert.match(none.stderr, /^error: no identity in .* yet/)
  assert.match(none.stderr, /hint: run `dbc node start` once/)
  const { identity } = await loadOrCreateIdentity(dataDir)
  const r = dbc('id', '--json')
  assert.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { peerId: string, publicKey: string }
  assert.is(out.peerId, identity.peerId.toString())
  assert.is(out.publicKey, Buffer.from(identity.privateKey.publicKey.raw).toString('base64'))
})

test('`dbc node start --detach` runs the daemon from dist; status and stop answer', () => {
  const start = dbc('node', 'start', '--detach', '--listen', '/ip4/127.0.0.1/tcp/0', '--location', 'Paris', '--network', 'sandbox', '--log-level', 'warn')
  try {
    assert.is(start.code, 0, `${start.stdout}\n${start.stderr}`)
    assert.match(start.stdout, /started in the background/)
    const s = dbc('node', 'status', '--json')
    assert.is(s.code, 0, s.stderr)
    const st = JSON.parse(s.stdout) as { peerId: string, pid: number }
    assert.match(st.peerId, /^12D3KooW/)
    // the daemon process runs the installed package's compiled code
    const cmdline = spawnSync('cat', [`/proc/${st.pid}/cmdline`], { encoding: 'utf8' }).stdout.split('\0')
    assert.ok(cmdline.some(a => a.includes(join('node_modules', '.bin', 'dbc')) || a.includes(join('dbc-overlay', 'bin', 'dbc.js'))), cmdline.join(' '))
  } finally {
    const stop = dbc('node', 'stop')
    assert.is(stop.code, 0, stop.stderr)
  }
})

test('the installed tarball is small enough to publish (no stray files)', () => {
  const list = spawnSync('tar', ['-tzf', inst.tarball], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)
  assert.ok(list.every(f => /^package\/(dist|bin|trainers)\/|^package\/(package\.json|README\.md|LICENSE)$/.test(f)), list.filter(f => !/^package\/(dist|bin|trainers)\//.test(f)).join(', '))
  writeFileSync(join(inst.work, 'contents.txt'), list.join('\n'))
})

test.after(() => {
  rmSync(dataDir, { recursive: true, force: true })
  if (inst !== undefined) rmSync(inst.work, { recursive: true, force: true })
})
test.run()
