// A local network of dbc nodes, each a separate `dbc node start` process on 127.0.0.1 with its
// own temp data dir, all settling on ONE chain: an anvil this network starts (chain id 31337)
// and passes to every node as `--network local --chain-rpc URL`. Used by the demo and by tests;
// stop() kills and removes everything, the chain last.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, mkdirSync, existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ApiClient, readApiInfo } from '../src/api/client.js'
import { startAnvil, type AnvilHandle } from '../src/chain/anvil.js'
import { LOCAL_CHAIN_ID } from '../src/chain/networks.js'

export const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const dbcBin = join(repoRoot, 'bin/dbc.js')

export interface NodeSpec { name: string, location: string, gpus?: string, extra?: string[] }
export interface LocalNode {
  spec: NodeSpec
  dataDir: string
  process: ChildProcess
  peerId: string
  addrs: string[]
  api: ApiClient
}

export class LocalNetwork {
  readonly root: string
  readonly nodes: LocalNode[] = []
  /** The last 64 KB each node printed (its structured log), by node name. */
  readonly output = new Map<string, string>()
  private stopped = false
  private anvil?: Promise<AnvilHandle>

  constructor (root?: string) {
    this.root = root ?? mkdtempSync(join(tmpdir(), 'dbc-demo-'))
  }

  /** The network's chain (started on first use; one per network). */
  async chain (): Promise<{ rpc: string, chainId: number, pid: number }> {
    this.anvil ??= startAnvil({ chainId: LOCAL_CHAIN_ID })
    const a = await this.anvil
    return { rpc: a.url, chainId: LOCAL_CHAIN_ID, pid: a.pid }
  }

  async start (spec: NodeSpec, bootstrap: string[] = [], opts: { timeoutMs?: number } = {}): Promise<LocalNode> {
    const dataDir = join(this.root, spec.name)
    mkdirSync(dataDir, { recursive: true })
    const args = [dbcBin, '--data-dir', dataDir, 'node', 'start', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn', '--location', spec.location]
    if (spec.gpus !== undefined) args.push('--gpus', spec.gpus)
    if (bootstrap.length > 0) args.push('--bootstrap', bootstrap.join(','))
    // Every node settles on the network's one chain, unless a spec names its own.
    const extra = spec.extra ?? []
    if (!extra.includes('--network') && !extra.includes('--chain-rpc')) args.push('--network', 'local', '--chain-rpc', (await this.chain()).rpc)
    args.push(...extra)
    // a module preloaded with NODE_OPTIONS=--import (a test fixture) patches src/ modules: the node
    // must run those very modules, not a compiled dist/ (bin/dbc.js runs a fresh dist/ otherwise)
    const preload = /--import\b/.test(process.env.NODE_OPTIONS ?? '')
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...(preload ? { DBC_FROM_SOURCE: '1' } : {}) } })
    let log = ''
    const keep = (d: Buffer): void => { log = (log + d.toString()).slice(-64_000); this.output.set(spec.name, log) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    const deadline = Date.now() + (opts.timeoutMs ?? 180_000) // a loaded 2-core box may take minutes to start a daemon
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`node ${spec.name} exited during start:\n${log}`)
      const info = readApiInfo(dataDir)
      if (info?.pid === child.pid && existsSync(join(dataDir, 'api-token'))) {
        try {
          const api = ApiClient.connect(dataDir)
          const s = await api.call<{ peerId: string, addrs: string[] }>('GET', '/v1/status', undefined, { timeoutMs: 2000 })
          const node: LocalNode = { spec, dataDir, process: child, peerId: s.peerId, addrs: s.addrs, api }
          this.nodes.push(node)
          return node
        } catch {}
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    child.kill('SIGKILL')
    throw new Error(`node ${spec.name} did not become ready in time:\n${log}`)
  }

  /** Stops every node (SIGTERM, then SIGKILL after a grace period) and removes the data dirs. */
  async stop (opts: { keep?: boolean } = {}): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await Promise.all(this.nodes.map(async n => {
      if (n.process.exitCode !== null || n.process.signalCode !== null) return
      const exited = new Promise<void>(resolve => n.process.once('exit', () => { resolve() }))
      n.process.kill('SIGTERM')
      const t = setTimeout(() => n.process.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }))
    if (this.anvil !== undefined) await (await this.anvil.catch(() => undefined))?.stop()
    if (opts.keep !== true) rmSync(this.root, { recursive: true, force: true })
  }

  logOf (node: LocalNode): string {
    const f = join(node.dataDir, 'logs', 'node.log')
    return this.output.get(node.spec.name) ?? (existsSync(f) ? readFileSync(f, 'utf8') : '')
  }
}
