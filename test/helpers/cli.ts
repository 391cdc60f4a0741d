// Runs the real `dbc` command and real daemons in child processes, and cleans up after them.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startAnvil, type AnvilHandle } from '../../src/chain/anvil.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
export const dbcBin = join(repoRoot, 'bin/dbc.js')

export interface CliResult { code: number | null, stdout: string, stderr: string }

/** Runs `dbc ARGS` to completion (synchronously). */
export function dbc (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [dbcBin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000
  })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Async variant, so several commands (or daemons) can run at once. */
export async function dbcAsync (args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [dbcBin, ...args], { cwd: repoRoot, env: { ...process.env, ...opts.env } })
    let stdout = ''; let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    child.on('close', code => { clearTimeout(t); resolve({ code, stdout, stderr }) })
  })
}

export function tempDir (prefix = 'dbc-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/**
 * Temp data dirs and detached daemons of one test file, removed and stopped by cleanup(). Its
 * nodes share one local chain (an anvil started on first use), as a network's nodes must.
 */
export class Sandbox {
  readonly root = tempDir()
  private readonly dirs: string[] = []
  private anvil?: Promise<AnvilHandle>

  /** The RPC URL of this sandbox's chain (chain id 31337). */
  async chainRpc (): Promise<string> {
    this.anvil ??= startAnvil({ chainId: 31337 })
    return (await this.anvil).url
  }

  dataDir (name: string): string {
    const d = join(this.root, name)
    this.dirs.push(d)
    return d
  }

  /** Starts a detached daemon on 127.0.0.1 with a random port; returns its peer id and addrs. */
  async startNode (name: string, extra: string[] = []): Promise<{ dataDir: string, peerId: string, addrs: string[] }> {
    const dataDir = this.dataDir(name)
    const chain = extra.includes('--network') || extra.includes('--chain-rpc') ? [] : ['--network', 'local', '--chain-rpc', await this.chainRpc()]
    const r = await dbcAsync(['--data-dir', dataDir, 'node', 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--detach', '--log-level', 'warn', ...chain, ...extra], { timeoutMs: 90_000 })
    if (r.code !== 0) throw new Error(`node ${name} failed to start: ${r.stderr}${r.stdout}`)
    const id = dbc(['--data-dir', dataDir, 'id', '--json'])
    const j = JSON.parse(id.stdout) as { peerId: string, addrs: string[] }
    return { dataDir, peerId: j.peerId, addrs: j.addrs }
  }

  async cleanup (): Promise<void> {
    await Promise.all(this.dirs.map(async d => await dbcAsync(['--data-dir', d, 'node', 'stop'], { timeoutMs: 30_000 })))
    if (this.anvil !== undefined) await (await this.anvil.catch(() => undefined))?.stop()
    rmSync(this.root, { recursive: true, force: true })
  }
}
