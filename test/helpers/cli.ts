// Runs the real `dbc` command and real daemons in child processes, and cleans up after them.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
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

/** What a stand-in daemon's handler gets beside the request: its URL, whole body, and a JSON answer. */
export interface StandInRequest { url: string, body: string, json: (code: number, body: unknown) => void }

/** A stand-in daemon for the CLI (see standInNode). */
export interface StandInNode {
  dataDir: string
  token: string
  /** Every request received, "METHOD URL". */
  seen: string[]
  /** Runs `dbc --data-dir <its dir> ARGS` (DEBUG off); `requests`: those this command made. */
  dbc: (...args: string[]) => Promise<CliResult & { requests: string[] }>
  /** Stops the server and removes the data dir. */
  close: () => Promise<void>
}

/**
 * An HTTP server on 127.0.0.1 that the CLI takes for a running node: a fresh data dir holds its
 * api.json and api-token as a real node's does. `handle` answers each request once its body is read.
 */
export async function standInNode (prefix: string, handle: (req: IncomingMessage, res: ServerResponse, r: StandInRequest) => void): Promise<StandInNode> {
  const dataDir = tempDir(prefix)
  const token = 't'.repeat(64)
  const seen: string[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', d => { body += String(d) })
    req.on('end', () => {
      const url = req.url ?? ''
      seen.push(`${req.method ?? ''} ${url}`)
      handle(req, res, { url, body, json: (code, b) => { res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(b)) } })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ port, pid: process.pid, peerId: '12D3KooWfake', startedAt: Date.now() }))
  writeFileSync(join(dataDir, 'api-token'), token, { mode: 0o600 })
  return {
    dataDir,
    token,
    seen,
    dbc: async (...args) => {
      const from = seen.length
      const r = await dbcAsync(['--data-dir', dataDir, ...args], { env: { DEBUG: '' } })
      return { ...r, requests: seen.slice(from) }
    },
    close: async () => {
      await new Promise<void>(resolve => server.close(() => { resolve() }))
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
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
