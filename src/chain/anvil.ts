// Starts anvil (from the npm package @foundry-rs/anvil) for tests, benchmarks, `dbc chain serve`
// and LocalNetwork: 127.0.0.1 unless told, Shanghai, the dev keys funded with 10^12 coins each,
// the CREATE2 deployer present (deploy.ts). Default chain id DBC's (older tests); the `local`
// network passes 31337. Always `stop()` it.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ChainError } from '../errors.js'
import { DBC_CHAIN_ID, DEV_BALANCE_COINS } from './dev-keys.js'

export interface AnvilInit {
  /** 0 (default) picks a free port; pass the old port to restart on the same URL. */
  port?: number
  /** Interface to listen on (default 127.0.0.1; 0.0.0.0 to serve a LAN). */
  host?: string
  chainId?: number
  /** Load state from and dump it to this file on exit (`--state`). */
  statePath?: string
  /** Seconds between blocks; default: a block per transaction (automine). */
  blockTime?: number
  startTimeoutMs?: number
}

export interface AnvilHandle {
  url: string
  port: number
  pid: number
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone (state dumped). */
  stop: () => Promise<void>
}

const root = fileURLToPath(new URL('../..', import.meta.url))

export function anvilBinary (): string {
  for (const p of ['node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil', 'node_modules/@foundry-rs/anvil-linux-arm64/bin/anvil', 'node_modules/@foundry-rs/anvil-darwin-arm64/bin/anvil', 'node_modules/@foundry-rs/anvil-darwin-amd64/bin/anvil', 'node_modules/.bin/anvil']) {
    if (existsSync(join(root, p))) return join(root, p)
  }
  throw new ChainError('ANVIL_MISSING', 'the anvil binary is not installed', { hint: 'run `npm install` (package @foundry-rs/anvil)' })
}

export async function startAnvil (init: AnvilInit = {}): Promise<AnvilHandle> {
  const host = init.host ?? '127.0.0.1'
  const args = ['--host', host, '--port', String(init.port ?? 0), '--chain-id', String(init.chainId ?? DBC_CHAIN_ID), '--hardfork', 'shanghai', '--balance', DEV_BALANCE_COINS.toString()]
  if (init.statePath !== undefined) args.push('--state', init.statePath)
  if (init.blockTime !== undefined) args.push('--block-time', String(init.blockTime))
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  trackChild(child)
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new ChainError('ANVIL_START', `anvil did not start in time: ${out.slice(-400)}`)) }, init.startTimeoutMs ?? 15_000)
    const onData = (d: Buffer): void => {
      out += d.toString()
      const m = out.match(/Listening on [0-9a-fA-F.:[\]]+:(\d+)/)
      if (m != null) { clearTimeout(timer); resolve(Number(m[1])) }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', code => { clearTimeout(timer); reject(new ChainError('ANVIL_START', `anvil exited with ${code ?? 'a signal'}: ${out.slice(-400)}`)) })
  })
  // Keep draining its output so a chatty anvil never blocks on a full pipe.
  child.stdout?.resume()
  child.stderr?.resume()
  return { url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`, port, pid: child.pid ?? -1, stop: async () => await stopChild(child) }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>(resolve => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => { clearTimeout(t); resolve() })
    child.kill('SIGTERM')
  })
}

// Anvil must not outlive the process that started it, even when a test fails half-way.
const live = new Set<ChildProcess>()
let exitHookInstalled = false
function trackChild (child: ChildProcess): void {
  live.add(child)
  child.once('exit', () => live.delete(child))
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once('exit', () => { for (const c of live) c.kill('SIGKILL') })
}
