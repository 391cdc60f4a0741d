// Multi-host harness: N network namespaces on one Linux machine, each a "host" in a city,
// joined through veth pairs to a bridge that lives in its own "switch" namespace (nothing is
// created in, or attached to, the root namespace: `ip -n SWITCH link add ... peer ... netns HOST`
// creates both ends of each veth directly inside the test's namespaces). Addresses come from
// 10.213.0.0/16 and exist only inside those namespaces.
//
// Latency: the kernel has no netem, so each host runs test/netns/relay.mjs, a user-space delay
// relay that owns the host's announced address (10.213.0.X:4001) and forwards to the node on
// 127.0.0.1:4002 inside the same namespace, holding each chunk for the geo model's one-way delay
// of the link it arrived on (identified by the source address). Every host-to-host TCP
// connection crosses exactly one relay, so each direction of each pair gets its one-way delay
// once. Bandwidth can optionally be shaped with tbf on each host's uplink.
//
// Teardown is always done: destroy() (call it in finally), an exit/signal hook, and
// cleanupStale() which removes namespaces left by harness processes that are no longer alive
// (names carry the creating pid: dbcnx-<pid>-<rand>-<role>).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, existsSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomBytes } from 'node:crypto'
import { resolveLocation } from '../../src/geo/cities.js'
import { predictOneWayMs, haversineKm, type LatLon } from '../../src/core/geo/index.js'
import { anvilBinary } from '../../src/chain/anvil.js'
import { sleep } from '../helpers/wait.js'

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const node22 = join(repoRoot, 'node_modules/.bin/node')
const PREFIX = 'dbcnx-'
const PUBLIC_PORT = 4001
const NODE_PORT = 4002
/** The cluster's one chain: anvil on the switch's bridge, reachable from every host (no delay relay). */
const CHAIN_ADDR = '10.213.255.254'
const CHAIN_RPC = `http://${CHAIN_ADDR}:8545`

export interface HostSpec { name: string, city: string, gpus?: string, extra?: string[] }
export interface NetnsHost {
  spec: HostSpec
  index: number
  ns: string
  addr: string
  location: LatLon
  dataDir: string
  apiSocket: string
  announce: string
  relay?: ChildProcess
  node?: ChildProcess
  peerId?: string
  /** Other processes started in this namespace with exec(). */
  others: ChildProcess[]
  log: string
}

/** Why namespaces can not be used here, or undefined when they can (checked by doing it). */
export function netnsUnavailableReason (): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'the multi-host test needs root (CI runs it as root): it creates network namespaces with `ip netns add`'
  const probe = `${PREFIX}${process.pid}-probe`
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' })
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'pipe' })
  } catch (err) {
    return `\`ip netns add\` failed (${String((err as any).stderr ?? (err as Error).message).trim()}): install iproute2 and run as root with CAP_SYS_ADMIN`
  }
  return undefined
}

function run (cmd: string, ...args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' })
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')}: ${String((err as any).stderr ?? (err as Error).message).trim()}`)
  }
}

function ip (...args: string[]): string { return run('ip', ...args) }

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

function killNamespace (ns: string): void {
  // every process still inside the namespace (relays, nodes, their children)
  try {
    const pids = execFileSync('ip', ['netns', 'pids', ns], { stdio: 'pipe', encoding: 'utf8' }).split(/\s+/).filter(Boolean)
    for (const p of pids) { try { process.kill(Number(p), 'SIGKILL') } catch {} }
  } catch {}
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' }) } catch {}
}

/** Removes namespaces (and their processes) left behind by harness runs whose process is gone. */
export function cleanupStale (): string[] {
  const removed: string[] = []
  let list = ''
  try { list = execFileSync('ip', ['netns', 'list'], { stdio: 'pipe', encoding: 'utf8' }) } catch { return removed }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0]
    const m = name?.match(/^dbcnx-(\d+)-/)
    if (m === null || m === undefined) continue
    if (alive(Number(m[1])) && Number(m[1]) !== process.pid) continue
    if (Number(m[1]) === process.pid && live.has(name)) continue
    killNamespace(name)
    removed.push(name)
  }
  return removed
}

const live = new Set<string>()
let hooked = false
function hookExit (): void {
  if (hooked) return
  hooked = true
  const all = (): void => { for (const ns of [...live]) { killNamespace(ns); live.delete(ns) } }
  process.on('exit', all)
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => { all(); process.exit(128 + 2) })
  process.on('uncaughtException', (err) => { all(); console.error(err); process.exit(1) })
}

export interface ClusterOptions {
  /** Rate limit for each host's uplink (tbf), e.g. '100mbit'. */
  rate?: string
  /** Multiplies every geo one-way delay (1 = the model). */
  delayScale?: number
}

export class NetnsCluster {
  readonly id: string
  readonly switchNs: string
  readonly root: string
  readonly hosts: NetnsHost[] = []
  private destroyed = false
  private chain?: ChildProcess

  private constructor (readonly opts: ClusterOptions) {
    this.id = `${process.pid}-${randomBytes(3).toString('hex')}`
    this.switchNs = `${PREFIX}${this.id}-sw`
    this.root = mkdtempSync(join(tmpdir(), 'dbc-netns-'))
  }

  /** Builds the namespaces, links and relays. Throws (with the reason) where namespaces can not be made. */
  static async create (specs: HostSpec[], opts: ClusterOptions = {}): Promise<NetnsCluster> {
    const why = netnsUnavailableReason()
    if (why !== undefined) throw new Error(`multi-host harness unavailable: ${why}`)
    cleanupStale()
    hookExit()
    const c = new NetnsCluster(opts)
    try {
      c.build(specs)
      await Promise.all([c.startChain(), ...c.hosts.map(async h => { await c.startRelay(h) })])
    } catch (err) {
      await c.destroy()
      throw err
    }
    return c
  }

  private addNs (name: string): void {
    ip('netns', 'add', name)
    live.add(name)
    ip('-n', name, 'link', 'set', 'lo', 'up')
  }

  private build (specs: HostSpec[]): void {
    this.addNs(this.switchNs)
    ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', this.switchNs, 'link', 'set', 'br0', 'up')
    specs.forEach((spec, i) => {
      const ns = `${PREFIX}${this.id}-h${i}`
      this.addNs(ns)
      // both ends are created inside the test's namespaces; nothing appears in the root namespace
      ip('-n', this.switchNs, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
      ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'master', 'br0')
      ip('-n', this.switchNs, 'link', 'set', `p${i}`, 'up')
      const addr = `10.213.${Math.floor((i + 1) / 250)}.${((i + 1) % 250) + 1}`
      ip('-n', ns, 'addr', 'add', `${addr}/16`, 'dev', 'eth0')
      ip('-n', ns, 'link', 'set', 'eth0', 'up')
      if (this.opts.rate !== undefined) run('tc', '-n', ns, 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', this.opts.rate, 'burst', '64kb', 'latency', '50ms')
      const loc = resolveLocation(spec.city)
      const dataDir = join(this.root, spec.name)
      mkdirSync(dataDir, { recursive: true })
      this.hosts.push({
        spec, index: i, ns, addr, location: { lat: loc.lat, lon: loc.lon }, dataDir,
        apiSocket: join(this.root, `${spec.name}.api.sock`),
        announce: `/ip4/${addr}/tcp/${PUBLIC_PORT}`,
        others: [],
        log: ''
      })
    })
  }

  /** Every node of the cluster settles on one chain: anvil in the switch namespace (chain id 31337). */
  private async startChain (): Promise<void> {
    ip('-n', this.switchNs, 'addr', 'add', `${CHAIN_ADDR}/16`, 'dev', 'br0')
    const child = spawn('ip', ['netns', 'exec', this.switchNs, anvilBinary(), '--host', CHAIN_ADDR, '--port', '8545', '--chain-id', '31337', '--hardfork', 'shanghai', '--balance', '1000000000000'], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.chain = child
    let out = ''
    child.stdout?.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4000) })
    child.stderr?.on('data', (d: Buffer) => { out = (out + d.toString()).slice(-4000) })
    const deadline = Date.now() + 30_000
    while (!out.includes('Listening on')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the cluster's chain (anvil) did not start:\n${out}`)
      await sleep(20)
    }
  }

  /** The emulated one-way delay from host a to host b (ms): the geo model, scaled. */
  oneWayMs (a: NetnsHost, b: NetnsHost): number {
    return predictOneWayMs(a.location, b.location) * (this.opts.delayScale ?? 1)
  }

  distanceKm (a: NetnsHost, b: NetnsHost): number {
    return haversineKm(a.location.lat, a.location.lon, b.location.lat, b.location.lon)
  }

  /** Starts a program inside the host's namespace (stdin piped); it is killed by destroy(). */
  exec (h: NetnsHost, args: string[], label: string): ChildProcess {
    const child = this.spawnIn(h, args, label, 'pipe')
    h.others.push(child)
    return child
  }

  /** Node 22 with tsx, for exec() of a TypeScript file. */
  static nodeTs (file: string): string[] { return [node22, '--import', 'tsx', '--no-warnings', file] }

  private spawnIn (h: NetnsHost, args: string[], label: string, stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', h.ns, ...args], { stdio: [stdin, 'pipe', 'pipe'], cwd: repoRoot, env: { ...process.env } })
    const keep = (d: Buffer): void => { h.log = (h.log + `[${label}] ` + d.toString()).slice(-64_000) }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    return child
  }

  private async startRelay (h: NetnsHost): Promise<void> {
    const delays: Record<string, { in: number, out: number }> = {}
    for (const o of this.hosts) if (o !== h) delays[o.addr] = { in: this.oneWayMs(o, h), out: this.oneWayMs(h, o) }
    const cfg = { listen: { host: h.addr, port: PUBLIC_PORT }, target: { host: '127.0.0.1', port: NODE_PORT }, delays, apiSocket: h.apiSocket, apiInfoFile: join(h.dataDir, 'api.json') }
    h.relay = this.spawnIn(h, [node22, join(repoRoot, 'test/netns/relay.mjs'), JSON.stringify(cfg)], 'relay')
    const deadline = Date.now() + 15_000
    while (!h.log.includes('relay ready')) {
      if (h.relay.exitCode !== null || Date.now() > deadline) throw new Error(`relay on ${h.spec.name} did not start:\n${h.log}`)
      await sleep(20)
    }
  }

  /** Starts the node of host h (dbc node start inside its namespace) and waits for its API. */
  async startNode (h: NetnsHost, bootstrap: string[] = [], timeoutMs = 60_000): Promise<void> {
    const args = [node22, join(repoRoot, 'bin/dbc.js'), '--data-dir', h.dataDir, 'node', 'start',
      '--listen', `/ip4/127.0.0.1/tcp/${NODE_PORT}`, '--announce', h.announce,
      '--location', `${h.location.lat},${h.location.lon}`, '--log-level', 'warn', '--no-connection-monitor']
    if (h.spec.gpus !== undefined) args.push('--gpus', h.spec.gpus)
    if (bootstrap.length > 0) args.push('--bootstrap', bootstrap.join(','))
    if (!(h.spec.extra ?? []).includes('--network')) args.push('--network', 'local', '--chain-rpc', CHAIN_RPC)
    args.push(...(h.spec.extra ?? []))
    rmSync(join(h.dataDir, 'api.json'), { force: true })
    h.node = this.spawnIn(h, args, 'node')
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (h.node.exitCode !== null) throw new Error(`node ${h.spec.name} exited during start:\n${h.log}`)
      if (existsSync(join(h.dataDir, 'api.json')) && existsSync(join(h.dataDir, 'api-token'))) {
        try {
          const s = await this.api<{ peerId: string }>(h, 'GET', '/v1/status')
          h.peerId = s.peerId
          return
        } catch {}
      }
      if (Date.now() > deadline) throw new Error(`node ${h.spec.name} did not become ready:\n${h.log}`)
      await sleep(150)
    }
  }

  /** Starts host 0, then the rest bootstrapped from it, `parallel` at a time (2 cores). */
  async startAll (parallel = 2): Promise<void> {
    const [first, ...rest] = this.hosts
    await this.startNode(first)
    const boot = `${first.announce}/p2p/${first.peerId!}`
    for (let i = 0; i < rest.length; i += parallel) await Promise.all(rest.slice(i, i + parallel).map(async h => { await this.startNode(h, [boot]) }))
  }

  private raw (h: NetnsHost, method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number, res: NodeJS.ReadableStream }> {
    const token = readFileSync(join(h.dataDir, 'api-token'), 'utf8').trim()
    const data = body === undefined ? undefined : JSON.stringify(body)
    return new Promise((resolve, reject) => {
      // agent: false: a kept-alive socket can be closed by the server (5 s idle) just as it is reused
      const req = request({ agent: false, socketPath: h.apiSocket, path, method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(data !== undefined ? { 'content-length': Buffer.byteLength(data) } : {}) }, timeout: timeoutMs },
        res => { resolve({ status: res.statusCode ?? 500, res }) })
      req.on('error', (err) => { reject(new Error(`${method} ${path} on ${h.spec.name}: ${err.message}`)) })
      req.on('timeout', () => { req.destroy(new Error(`${method} ${path} on ${h.spec.name}: timed out after ${timeoutMs} ms`)) })
      req.end(data)
    })
  }

  /** Calls the node's control API (through the unix socket the relay forwards into the namespace). */
  async api<T = any>(h: NetnsHost, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const { status, res } = await this.raw(h, method, path, body, timeoutMs)
    let text = ''
    for await (const c of res) text += c.toString()
    if (status >= 400) throw new Error(`${method} ${path} on ${h.spec.name}: HTTP ${status} ${text}`)
    return JSON.parse(text) as T
  }

  /** A streaming route (newline-delimited JSON events). */
  async * stream<T = any>(h: NetnsHost, method: string, path: string, body?: unknown): AsyncGenerator<T> {
    const { status, res } = await this.raw(h, method, path, body, 600_000)
    let buf = ''
    for await (const c of res) {
      buf += c.toString()
      if (status >= 400) continue
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim(); buf = buf.slice(i + 1)
        if (line !== '') yield JSON.parse(line) as T
      }
    }
    if (status >= 400) throw new Error(`${method} ${path} on ${h.spec.name}: HTTP ${status} ${buf}`)
  }

  /** Runs the `dbc` CLI inside the host's namespace (as a user on that host would). */
  cli (h: NetnsHost, args: string[], timeoutMs = 60_000): string {
    return execFileSync('ip', ['netns', 'exec', h.ns, node22, join(repoRoot, 'bin/dbc.js'), '--data-dir', h.dataDir, ...args], { cwd: repoRoot, encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] })
  }

  /** Takes the host's uplink down (inside the switch namespace: the bridge port) or back up. */
  setLink (h: NetnsHost, up: boolean): void {
    ip('-n', this.switchNs, 'link', 'set', `p${h.index}`, up ? 'up' : 'down')
  }

  /** Kills everything in every namespace, deletes the namespaces and the temp dir. */
  async destroy (opts: { keepDir?: boolean } = {}): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    // SIGTERM nodes first so they close their stores; then kill whatever is left
    const nodes = this.hosts.map(h => h.node).filter((p): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null)
    await Promise.all(nodes.map(async p => {
      const exited = new Promise<void>(resolve => p.once('exit', () => { resolve() }))
      p.kill('SIGTERM')
      await Promise.race([exited, sleep(4000)])
    }))
    const children = [...this.hosts.flatMap(h => [h.node, h.relay, ...h.others]), this.chain].filter((p): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null)
    const gone = Promise.all(children.map(async p => { await new Promise<void>(resolve => p.once('exit', () => { resolve() })) }))
    for (const h of this.hosts) { killNamespace(h.ns); live.delete(h.ns) }
    killNamespace(this.switchNs); live.delete(this.switchNs)
    await Promise.race([gone, sleep(5000)])
    if (opts.keepDir !== true) rmSync(this.root, { recursive: true, force: true })
  }

  /** Namespaces of this cluster still present (for tests of the teardown). */
  remainingNamespaces (): string[] {
    const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    return list.split('\n').map(l => l.split(' ')[0]).filter(n => n !== undefined && n.startsWith(`${PREFIX}${this.id}-`))
  }
}

export { sleep }
