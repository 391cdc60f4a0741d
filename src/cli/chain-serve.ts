// `dbc chain serve [--port N] [--host H] [--data DIR]`: the chain of a local network. Starts anvil
// (chain id 31337, dev keys funded, the CREATE2 deployer built in), deploys the Settlement
// contract at its deterministic address, prints what nodes need to join, and runs until Ctrl-C.
import { mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Command } from 'commander'
import { DbcError } from '../errors.js'
import { printJson } from './output.js'

export function registerChainServe (chain: Command): void {
  chain.command('serve')
    .description('serve a local network\'s chain (anvil) on this machine; nodes join with --network local --chain-rpc URL')
    .option('--port <n>', 'JSON-RPC port (0 = any free port)', (v) => Number(v), 8545)
    .option('--host <addr>', 'interface to listen on (0.0.0.0 serves the LAN)', '127.0.0.1')
    .option('--data <dir>', 'keep the chain\'s state in DIR/anvil-state.json across restarts (default: in memory)')
    .option('--json', 'print the chain\'s details as JSON once it is ready')
    .action(async (opts: { port: number, host: string, data?: string, json?: boolean }) => {
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new DbcError('BAD_ARGUMENT', `--port must be a port number (0-65535), not ${String(opts.port)}`)
      const { startAnvil } = await import('../chain/anvil.js')
      const { connectChain } = await import('../chain/client.js')
      const { SendQueue } = await import('../chain/sender.js')
      const { ensureCreate2Settlement } = await import('../chain/deploy.js')
      const { DEV_PRIVATE_KEYS } = await import('../chain/dev-keys.js')
      const { LOCAL_CHAIN_ID } = await import('../chain/networks.js')
      let statePath: string | undefined
      if (opts.data !== undefined) {
        mkdirSync(resolve(opts.data), { recursive: true })
        statePath = join(resolve(opts.data), 'anvil-state.json')
      }
      const anvil = await startAnvil({ port: opts.port, host: opts.host, chainId: LOCAL_CHAIN_ID, statePath })
      const url = `http://${opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host}:${anvil.port}`
      let contract: string
      try {
        // Deployed from a public dev key: on a local chain anyone may, and every node computes the same address.
        const conn = await connectChain({ kind: 'rpc', url, chainId: LOCAL_CHAIN_ID }, { privateKey: DEV_PRIVATE_KEYS[0] })
        contract = await ensureCreate2Settlement(conn, new SendQueue(conn), { confirmations: 1, timeoutMs: 60_000 })
      } catch (err) {
        await anvil.stop()
        throw err
      }
      const joinCmd = `dbc node start --network local --chain-rpc ${url}`
      if (opts.json === true) printJson({ rpc: url, chainId: LOCAL_CHAIN_ID, contract, pid: anvil.pid, state: statePath ?? null, join: joinCmd })
      else {
        process.stdout.write(`local chain ready (anvil, pid ${anvil.pid})\n` +
          `  RPC URL   ${url}${opts.host === '0.0.0.0' ? ' (listening on all interfaces: use this machine\'s LAN address elsewhere)' : ''}\n` +
          `  chain id  ${LOCAL_CHAIN_ID}\n` +
          `  contract  ${contract} (Settlement, CREATE2: the same on every node)\n` +
          `  state     ${statePath ?? 'in memory (lost on exit; --data DIR keeps it)'}\n` +
          `nodes join with:\n  ${joinCmd}\n` +
          'each node tops its own key up from a dev key (local only) and stakes its GPUs itself.\n' +
          'Ctrl-C stops the chain.\n')
      }
      await new Promise<void>(resolve => {
        const done = (): void => { resolve() }
        process.once('SIGINT', done)
        process.once('SIGTERM', done)
      })
      process.stderr.write('stopping the chain...\n')
      await anvil.stop()
    })
}
