// Packs this checkout as `npm pack` would publish it and installs the tarball into an empty
// directory with production dependencies only: what a user gets from `npm install dbc-overlay`.
// Used by test/integration/pack.test.ts and bench/cli-start.ts. The build runs in a staged copy
// (src, bin, the build config; node_modules linked), so the checkout's own dist/ is left alone
// while other work goes on in it.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const repoRoot = fileURLToPath(new URL('..', import.meta.url))

export interface Installed {
  /** the folder everything was made in */
  work: string
  tarball: string
  /** the installed package's command: run it as `node <bin> ...` */
  bin: string
  /** seconds spent packing (build included) and installing */
  packS: number
  installS: number
}

function run (cmd: string, args: string[], cwd: string, timeoutMs: number): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, npm_config_update_notifier: 'false' } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.error?.message ?? `exit ${String(r.status)}`}):\n${(r.stdout ?? '').slice(-3000)}\n${(r.stderr ?? '').slice(-3000)}`)
  return r.stdout
}

/** `npm pack` of a staged copy of the checkout, then `npm install --omit=dev` of the tarball. */
export function packAndInstall (opts: { work?: string, timeoutMs?: number } = {}): Installed {
  const work = opts.work ?? mkdtempSync(join(tmpdir(), 'dbc-pack-'))
  const timeoutMs = opts.timeoutMs ?? 600_000
  const stage = join(work, 'stage')
  mkdirSync(join(stage, 'scripts'), { recursive: true })
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { files: string[] }
  const inputs = new Set(['src', 'package.json', 'tsconfig.json', 'tsconfig.build.json', ...pkg.files.map(f => f.replace(/\/$/, ''))])
  for (const f of inputs) if (f !== 'dist' && existsSync(join(repoRoot, f))) cpSync(join(repoRoot, f), join(stage, f), { recursive: true })
  cpSync(join(repoRoot, 'scripts', 'build-dist.mjs'), join(stage, 'scripts', 'build-dist.mjs'))
  symlinkSync(join(repoRoot, 'node_modules'), join(stage, 'node_modules'), 'dir')
  let t = Date.now()
  run('npm', ['pack', '--pack-destination', work, '--loglevel', 'warn'], stage, timeoutMs)
  const tarball = join(work, readdirSync(work).find(f => f.endsWith('.tgz')) ?? 'missing.tgz')
  const packS = (Date.now() - t) / 1000
  const prefix = join(work, 'app')
  mkdirSync(prefix)
  writeFileSync(join(prefix, 'package.json'), JSON.stringify({ name: 'dbc-pack-check', private: true }))
  t = Date.now()
  // the registry is reachable here and in CI; cached packuments and tarballs are used first
  run('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error', tarball], prefix, timeoutMs)
  const installS = (Date.now() - t) / 1000
  return { work, tarball, bin: join(prefix, 'node_modules', '.bin', 'dbc'), packS, installS }
}
