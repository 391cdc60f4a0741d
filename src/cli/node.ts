// `dbc node start|status|stop`
import { spawn } from 'node:child_process'
import { openSync, readFileSync, existsSync, statSync, mkdirSync, accessSync, constants as fsConstants } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import type { ConfigLayer } from '../node/config.js'
import type { WireError } from '../errors.js'
import { ApiClient, readApiInfo, processAlive } from '../api/client.js'
import { ConfigError, DbcError, DaemonUnavailableError } from '../errors.js'
import { DRAIN_DEFAULT_S, signalAction } from '../node/drain-options.js'
import { printJson, table, verboseWanted } from './output.js'
import { dataDirOf } from './context.js'
import { statusText } from './node-status.js'
import { parseRoutingFlag } from './job.js'

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map(s => s.trim()).filter(Boolean)]
/** A number, or the text itself when it is none: the config check then names the flag's key and the text. */
/** A number of seconds on the command line (0 or more). */
function seconds (flag: string, v: string): number {
  const n = Number(v)
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new DbcError('BAD_ARGUMENT', `${flag} must be a number of seconds (0 or more), not "${v.slice(0, 40)}"`)
  return n
}
const num = (v: string): number | string => v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v

export function registerNodeCommands (program: Command): void {
  const node = program.command('node').description('run and inspect this machine\'s dbc node')

  node.command('start')
    .description('start the node: join the network as a compute peer (foreground unless --detach)')
    .option('--listen <addr...>', 'multiaddrs to listen on (repeat or comma-separate); default /ip4/0.0.0.0/tcp/4001 and /ip6/::/tcp/4001', collect)
    .option('--bootstrap <addr...>', 'bootstrap peers, multiaddrs ending in /p2p/PEER_ID', collect)
    .option('--announce <addr...>', 'addresses to announce instead of the listen addresses', collect)
    .option('--location <where>', 'where this machine is: LAT,LON (e.g. 35.68,139.69) or a city ("Tokyo", "Paris, FR")')
    .option('--gpus <spec>', 'declare GPUs for test networks, e.g. "2xRTX4090:24GiB" (marked as declared, not probed)')
    .option('--api-port <port>', 'control API port on 127.0.0.1 (0 = any free port)', num)
    .option('--config <file>', 'config file (YAML or JSON); default <data-dir>/config.yaml')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent')
    .option('--dht-client', 'DHT client mode (for nodes others cannot reach)')
    .option('--no-connection-monitor', 'do not ping connections periodically')
    .option('--behind-nat', 'this machine cannot be dialled: be reachable through a relay peer (circuit-relay-v2, hole punching)')
    .option('--no-relay', 'do not relay connections for peers behind NAT')
    .option('--routing <mode>', 'how this node\'s jobs and training reach peers by default: auto (a connection, else sealed envelopes through the overlay), direct (connections only), overlay (the overlay only: no connection with providers)')
    .option('--network <name>', 'the chain this node settles on: sandbox (an EVM in this node, alone only), local (with --chain-rpc, see `dbc chain serve`), dbc-testnet, dbc-mainnet')
    .option('--chain-rpc <url>', 'JSON-RPC URL of the network\'s chain (default for local: http://127.0.0.1:8545)')
    .option('--chain-id <id>', 'chain id the RPC must report (local: 31337, dbc-testnet: 19850818, dbc-mainnet: 19880818)', (v) => /^\d+$/.test(v) ? Number(v) : v)
    .option('--no-auto-stake', 'do not stake this provider\'s GPUs with its own key on start')
    .option('--price-cpu-hour <dbc>', 'what this provider asks per CPU-hour (one core slot), in DBC (default 0.05)', num)
    .option('--price-gpu-hour <dbc>', 'what this provider asks per GPU-hour, in DBC: one price, or per model as RTX4090=300,*=500 (default 1)', parseGpuPrices)
    .option('--executors <names>', 'executors offered, comma-separated: wasm, process (unsafe: shares the kernel), docker (default wasm, and docker when containers.images lists one)', collect)
    .option('--cpu-slots <n>', 'CPU slots tasks may hold at once (default the core count)', num)
    .option('--gpu-slots <n>', 'GPUs offered at most (default all offered)', num)
    .option('--gpus-offered <list>', 'probed GPUs to offer, by index or model, comma-separated (e.g. 0,1 or RTX4090; default all)', collect)
    .option('--max-task-memory <mib>', 'most memory one task may ask for, MiB (default the memory offered to tasks)', num)
    .option('--max-task-seconds <s>', 'longest task, seconds (default 600)', num)
    .option('--max-task-output <bytes>', 'largest result of one task, bytes (default 16 MiB)', num)
    .option('--metrics <addr>', 'serve Prometheus /metrics, /healthz and /readyz without a token on PORT (127.0.0.1) or HOST:PORT; off by default')
    .option('--detach', 'run in the background; logs go to <data-dir>/logs/node.log')
    .action(async (opts, cmd: Command) => {
      const dataDir = dataDirOf(cmd)
      const flags: ConfigLayer = { dataDir }
      if (opts.listen !== undefined) flags.listen = opts.listen
      if (opts.bootstrap !== undefined) flags.bootstrap = opts.bootstrap
      if (opts.announce !== undefined) flags.announce = opts.announce
      if (opts.location !== undefined) flags.location = opts.location
      if (opts.gpus !== undefined) flags.gpus = opts.gpus
      if (opts.apiPort !== undefined) flags.api = { port: opts.apiPort }
      if (opts.logLevel !== undefined) flags.log = { level: opts.logLevel }
      if (opts.dhtClient === true) flags.dht = { server: false }
      if (opts.connectionMonitor === false) flags.connectionMonitor = false
      if (opts.behindNat === true || opts.relay === false) flags.nat = { ...(opts.behindNat === true ? { behindNat: true } : {}), ...(opts.relay === false ? { relayServer: false } : {}) }
      if (opts.routing !== undefined) flags.routing = { mode: parseRoutingFlag(opts.routing) }
      if (opts.network !== undefined) flags.network = opts.network
      if (opts.chainRpc !== undefined || opts.chainId !== undefined) flags.chain = { ...(opts.chainRpc !== undefined ? { rpc: opts.chainRpc } : {}), ...(opts.chainId !== undefined ? { chainId: opts.chainId } : {}) }
      const provider = providerFlags(opts)
      if (Object.keys(provider).length > 0) flags.provider = provider
      if (opts.metrics !== undefined) flags.metrics = { listen: opts.metrics }
      // the daemon's code (libp2p, the chain) loads only here: read commands stay fast
      const { loadConfig } = await import('../node/config.js')
      const config = loadConfig({ flags, configFile: opts.config })
      ensureDataDir(config.dataDir)
      // a city the bundled list lacks is named here, before a background process starts (as --gpus is)
      if (config.location !== '') {
        const cities = await import('../geo/cities.js')
        cities.resolveLocation(config.location)
        // a name places in other countries share (Virginia: ZA, not US) is named with its alternatives
        const warning = cities.ambiguousLocationWarning(config.location)
        if (warning !== undefined) process.stderr.write(`warning: ${warning}\n`)
      }
      if (opts.detach === true) {
        await startDetached(config.dataDir)
        return
      }
      const [{ Daemon }, { buildSubsystems, resolveCity }, { peerIdFromString }, { installLastResort }, { openNodeLog }] = await Promise.all([
        import('../node/daemon.js'), import('../node/subsystems.js'), import('@libp2p/peer-id'), import('../node/last-resort.js'), import('../node/logging.js')
      ])
      // the last resort logs through the daemon's own logger, so it exists before the daemon
      // <data-dir>/logs/node.log (rolled by size) in every mode; stdout too unless detached (its stdout is daemon.out)
      const { logger } = await openNodeLog({ dataDir: config.dataDir, ...config.log, stdout: process.env.DBC_DETACHED !== '1' })
      const daemon = new Daemon({ config, subsystems: await buildSubsystems(config), resolveCity, logger })
      // an error that escaped a handler charges the peer it served (once the daemon runs)
      const charge = (peer: string, err: WireError): void => { daemon.context.reportBadInput(peerIdFromString(peer), err) }
      // a fatal error stops at once (no drain: the process is in a state nobody planned for)
      const lastResort = installLastResort({ log: logger, stop: async () => { await daemon.stop({ now: true }) }, verbose: verboseWanted(), charge })
      // the first signal drains (the tasks running here finish and are paid); a second stops at once;
      // a third exits without waiting for a stop that hangs
      let signals = 0
      const onSignal = (sig: string): void => {
        const action = signalAction(++signals)
        if (action === 'drain') {
          const n = daemon.inFlight()
          process.stderr.write(`\n${sig}: stopping${n > 0 ? `: the ${n} task(s) running here finish first (at most ${DRAIN_DEFAULT_S} s); press Ctrl-C again to stop at once (they are then not paid)` : ''}...\n`)
          void daemon.stop()
        } else if (action === 'now') {
          process.stderr.write(`\n${sig}: stopping at once (press Ctrl-C once more to exit without a clean stop)\n`)
          void daemon.stop({ now: true })
        } else {
          process.stderr.write(`\n${sig}: exiting without a clean stop (the next start recovers from the store)\n`)
          process.exit(130)
        }
      }
      process.on('SIGINT', onSignal)
      process.on('SIGTERM', onSignal)
      await daemon.start()
      const ctx = daemon.context
      const info = readApiInfo(config.dataDir)
      process.stderr.write(`dbc node ${ctx.identity.peerId.toString()} is running\n` +
        ctx.host.getMultiaddrs().map(a => `  listening on ${a.toString()}\n`).join('') +
        `  control API on 127.0.0.1:${info?.port ?? '?'}; stop with Ctrl-C or \`dbc node stop\`\n`)
      await daemon.stopped
      process.exit(lastResort.exitCode)
    })

  node.command('status')
    .description('show whether the node runs, its peer id, addresses, peers, DHT, compute (the provider policy in force) and overlay')
    .option('--json', 'print JSON')
    .action(async (opts, cmd: Command) => {
      const client = ApiClient.connect(dataDirOf(cmd))
      const s = await client.call<Record<string, any>>('GET', '/v1/status')
      if (opts.json === true) return printJson(s)
      process.stdout.write(statusText(s, table))
    })

  node.command('stop')
    .description('stop the running node gracefully: the tasks running here finish first (and are paid), new leases are refused meanwhile')
    .option('--drain <seconds>', 'how long running tasks may take to finish before they are cut short', (v) => seconds('--drain', v), DRAIN_DEFAULT_S)
    .option('--now', 'stop at once: running tasks are cut short (failed, not paid); also ends a drain under way')
    .option('--timeout <seconds>', 'how long to wait for it to stop (default: the drain + 20 s)', (v) => seconds('--timeout', v))
    .action(async (opts, cmd: Command) => {
      const client = ApiClient.connect(dataDirOf(cmd))
      const now = opts.now === true
      const r = await client.call<{ draining?: number, drainS?: number }>('POST', '/v1/stop', { now, drainS: opts.drain })
      // an older node answers no `draining`: it stops at once, as before
      const draining = r.draining ?? 0
      if (draining > 0) process.stdout.write(`draining: ${draining} task(s) running on the node finish first (at most ${r.drainS ?? opts.drain as number} s; \`dbc node stop --now\` stops at once)\n`)
      opts.timeout ??= (now ? 0 : opts.drain as number) + 20
      const deadline = Date.now() + opts.timeout * 1000
      while (Date.now() < deadline) {
        if (!processAlive(client.pid)) {
          process.stdout.write(`node stopped (pid ${client.pid})\n`)
          return
        }
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      throw new DbcError('STOP_TIMEOUT', `the node (pid ${client.pid}) did not stop within ${opts.timeout as number} s`, { hint: `kill it with: kill ${client.pid}` })
    })
}

/** `--price-gpu-hour 300` or per model `RTX4090=300,*=500` (a model with no price is not offered). */
function parseGpuPrices (v: string): number | Record<string, number> | string {
  if (!v.includes('=')) return num(v)
  const out: Record<string, number> = {}
  for (const part of v.split(',').map(s => s.trim()).filter(Boolean)) {
    const [model, price] = part.split('=')
    // a malformed pair is passed on as text: the config check names the key and what it expects
    if (model === undefined || price === undefined || model === '') return v
    const n = num(price)
    if (typeof n === 'string') return v
    out[model.trim()] = n
  }
  return out
}

/** The provider: section from `dbc node start` flags (only what was given; the rest comes from file and env). */
export function providerFlags (opts: Record<string, any>): ConfigLayer {
  const p: ConfigLayer = {}
  if (opts.autoStake === false) p.autoStake = false
  if (opts.priceCpuHour !== undefined) p.priceCpuHour = opts.priceCpuHour
  if (opts.priceGpuHour !== undefined) p.priceGpuHour = opts.priceGpuHour
  if (opts.executors !== undefined) p.executors = opts.executors
  if (opts.gpusOffered !== undefined) p.gpusOffered = opts.gpusOffered
  const slots: ConfigLayer = {}
  if (opts.cpuSlots !== undefined) slots.cpu = opts.cpuSlots
  if (opts.gpuSlots !== undefined) slots.gpu = opts.gpuSlots
  if (Object.keys(slots).length > 0) p.slots = slots
  const maxTask: ConfigLayer = {}
  if (opts.maxTaskMemory !== undefined) maxTask.memoryMiB = opts.maxTaskMemory
  if (opts.maxTaskSeconds !== undefined) maxTask.wallSeconds = opts.maxTaskSeconds
  if (opts.maxTaskOutput !== undefined) maxTask.outputBytes = opts.maxTaskOutput
  if (Object.keys(maxTask).length > 0) p.maxTask = maxTask
  return p
}

/**
 * The data dir exists (created if missing) and this user may write it; else a ConfigError that says
 * what is wrong with it and what to pass. A file in its place used to end the start with
 * "ENOTDIR: not a directory, mkdir '<dir>/logs'" and "run again with --verbose".
 */
export function ensureDataDir (dir: string): void {
  const hint = 'pass --data-dir DIR (or set DBC_DATA_DIR) naming a directory this user may write; it is created if missing'
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    accessSync(dir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' || code === 'ENOTDIR') throw new ConfigError('dataDir', `${dir} is not a directory (a file is in its place${code === 'ENOTDIR' ? ' or in its path' : ''})`, { hint })
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new ConfigError('dataDir', `${dir} cannot be created or written by this user (${code === 'EROFS' ? 'read-only file system' : 'permission denied'})`, { hint: `${hint}, or give this user the directory (chown, chmod 700)` })
    throw new ConfigError('dataDir', `${dir} cannot be used: ${(err as Error).message}`, { hint })
  }
}

async function startDetached (dataDir: string): Promise<void> {
  mkdirSync(join(dataDir, 'logs'), { recursive: true, mode: 0o700 })
  // the daemon writes its log itself (logs/node.log); this file gets only what it prints outside it (a crash)
  const logFile = join(dataDir, 'logs', 'daemon.out')
  const out = openSync(logFile, 'a')
  // read back only what this start printed: the file keeps earlier starts' output
  const printedFrom = statSync(logFile).size
  const args = process.argv.slice(1).filter(a => a !== '--detach')
  const child = spawn(process.execPath, [...process.execArgv, ...args], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, DBC_DETACHED: '1' }
  })
  child.unref()
  const pid = child.pid ?? -1
  let exited: number | null | undefined
  child.on('exit', code => { exited = code })
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (exited !== undefined) break
    const info = readApiInfo(dataDir)
    if (info?.pid === pid) {
      try {
        const s = await ApiClient.connect(dataDir).call<{ peerId: string, addrs: string[] }>('GET', '/v1/status', undefined, { timeoutMs: 2000 })
        process.stdout.write(`node ${s.peerId} started in the background (pid ${pid})\n` + (s.addrs.length > 0 ? s.addrs.map(a => `  listening on ${a}\n`).join('') : '  no address yet: behind NAT it is reachable once a relay holds its reservation (`dbc node status` lists it)\n') + `  log: ${join(dataDir, 'logs', 'node.log')} (dbc node logs)\n`)
        return
      } catch {}
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const failure = startFailure(existsSync(logFile) ? readFileSync(logFile).subarray(printedFrom).toString('utf8') : '')
  // a setting the background node refused (a busy port, an unknown city): its own error and hint, exit 2 as in the foreground
  if (exited === 2 && failure.key !== undefined) throw new ConfigError(failure.key, failure.problem, { hint: failure.hint ?? `see ${logFile}` })
  throw new DaemonUnavailableError('START_FAILED', exited !== undefined ? `the node exited during start (code ${String(exited)})${failure.reason === '' ? '' : ': ' + failure.reason}` : 'the node did not become ready within 60 s', {
    hint: `${failure.hint === undefined ? '' : failure.hint + '; '}see ${logFile}${exited === undefined ? `; the process (pid ${pid}) may still be starting` : ''}`
  })
}

/** The last `error:` line a start printed, its `hint:` line, and the config key when the error names one. */
export function startFailure (printed: string): { reason: string, hint?: string, key?: string, problem: string } {
  const lines = printed.split('\n')
  let at = -1
  for (let i = lines.length - 1; i >= 0; i--) if (lines[i].startsWith('error: ')) { at = i; break }
  if (at < 0) return { reason: '', problem: '' }
  const reason = lines[at].slice(7)
  const hintLine = lines[at + 1]
  const hint = hintLine?.startsWith('hint: ') === true ? hintLine.slice(6) : undefined
  const m = /^config "([^"]+)": (.*)$/.exec(reason)
  return m == null ? { reason, hint, problem: reason } : { reason, hint, key: m[1], problem: m[2] }
}
