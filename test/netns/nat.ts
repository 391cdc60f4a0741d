// Real NATs in network namespaces: a "public" namespace (the chain, a relay node, a submitter,
// on one address) and N sites, each a private namespace whose only way out is its own router
// namespace that masquerades (iptables MASQUERADE, optionally --random-fully), optionally with a
// home router's firewall (`firewall: true`: unsolicited packets to the router are dropped).
//
//   ns <p>-pub: br0 ─ PUB_ADDR/24           (no route to any 192.168.x.0/24)
//                 ├─ wan0 <net>.(2+i)/24 :ns <p>-r<i>: MASQUERADE -o wan0, lan0 192.168.(77+i).1/24
//                 │                                   └─ eth0 192.168.(77+i).2/24 :ns <p>-n<i> (default via .1)
//
// Nothing is added to the root namespace. The public side uses 10.215.0.0/24 by default:
// private, so DCUtR finds no public address to dial and the provider's route stays relayed;
// `pubNet: '7.77.0'` gives it addresses libp2p's isPrivate treats as public (netns-dcutr.test.ts).
// Control API calls go through a small plain-JS client run inside the namespace.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, mkdirSync, appendFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { anvilBinary } from '../../src/chain/anvil.js'
import { repoRoot, sleep } from './harness.js'

const node22 = join(repoRoot, 'node_modules/.bin/node')
const PREFIX = 'dbcnat-'

function sh (cmd: string, ...args: string[]): string {
  try { return execFileSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' }) } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')}: ${String((err as any).stderr ?? (err as Error).message).trim()}`)
  }
}

/** Why a real NAT cannot be built here (no root, no ip netns, no iptables), or undefined. */
export function natUnavailableReason (): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces need Linux'
  if (process.getuid?.() !== 0) return 'the NAT test needs root (ip netns, iptables)'
  try { sh('iptables', '--version') } catch {
    // install it where we can (root with apt): test/netns/setup-nat.sh
    try { sh('bash', join(repoRoot, 'test/netns/setup-nat.sh')); sh('iptables', '--version') } catch (err) { return `iptables is missing and test/netns/setup-nat.sh could not install it: ${(err as Error).message}` }
  }
  return undefined
}

function killNs (ns: string): void {
  try {
    for (const p of execFileSync('ip', ['netns', 'pids', ns], { stdio: 'pipe', encoding: 'utf8' }).split(/\s+/).filter(Boolean)) { try { process.kill(Number(p), 'SIGKILL') } catch {} }
  } catch {}
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' }) } catch {}
}

/** Namespaces of NAT runs whose process is gone (a kill -9'd test). */
function cleanupStale (): void {
  let list = ''
  try { list = execFileSync('ip', ['netns', 'list'], { stdio: 'pipe', encoding: 'utf8' }) } catch { return }
  for (const line of list.split('\n')) {
    const m = /^(dbcnat-(\d+)-\S+)/.exec(line)
    if (m === null) continue
    let alive = true
    try { process.kill(Number(m[2]), 0) } catch (err) { alive = (err as NodeJS.ErrnoException).code === 'EPERM' }
    if (!alive) killNs(m[1])
  }
}

const FIREWALL_RULE = (op: '-A' | '-D'): string[] => [op, 'INPUT', '-i', 'wan0', '-m', 'conntrack', '--ctstate', 'NEW', '-j', 'DROP']

export interface NatNode { name: string, ns: string, dataDir: string, child?: ChildProcess, log: string, peerId?: string, addr: string }

export interface NatSite { ns: string, router: string, addr: string, wan: string }

export interface NatTopologyOptions {
  /** How many NATed sites (default 1). */
  sites?: number
  /** Public side /24 prefix (default 10.215.0, private); a public-looking one (7.77.0) lets DCUtR dial it. */
  pubNet?: string
  /** MASQUERADE --random-fully (a NAT that defeats hole punching). */
  randomFully?: boolean
  /**
   * Drop unsolicited packets to the router itself, as home routers do (OpenWrt's wan zone:
   * input REJECT): `iptables -A INPUT -i wan0 -m conntrack --ctstate NEW -j DROP`. Without it a
   * router accepts a UDP packet to its WAN address, records a stale conntrack entry, and its own
   * SNAT then remaps the port: no UDP hole punch can work (session 9 spike, /work/notes/s9/quic.md).
   */
  firewall?: boolean
}

export class NatTopology {
  readonly pub: string
  readonly sites: NatSite[] = []
  readonly root: string
  readonly pubAddr: string
  readonly chainRpc: string
  private readonly procs: ChildProcess[] = []
  readonly nodes: NatNode[] = []

  private constructor (readonly opts: NatTopologyOptions) {
    const tag = `${PREFIX}${process.pid}-${Math.random().toString(36).slice(2, 6)}`
    this.pub = `${tag}-pub`
    this.root = mkdtempSync(join(tmpdir(), 'dbc-nat-'))
    const net = opts.pubNet ?? '10.215.0'
    for (let i = 0; i < (opts.sites ?? 1); i++) this.sites.push({ ns: `${tag}-n${i}`, router: `${tag}-r${i}`, addr: `192.168.${77 + i}.2`, wan: `${net}.${2 + i}` })
    this.pubAddr = `${net}.1`
    this.chainRpc = `http://${this.pubAddr}:8545`
  }

  static async create (opts: NatTopologyOptions = {}): Promise<NatTopology> {
    const why = natUnavailableReason()
    if (why !== undefined) throw new Error(`NAT topology unavailable: ${why}`)
    cleanupStale()
    const t = new NatTopology(opts)
    process.on('exit', () => { t.destroySync() })
    try { t.build() } catch (err) { t.destroySync(); throw err }
    return t
  }

  private namespaces (): string[] { return [this.pub, ...this.sites.flatMap(s => [s.router, s.ns])] }

  private build (): void {
    for (const ns of this.namespaces()) { sh('ip', 'netns', 'add', ns); sh('ip', '-n', ns, 'link', 'set', 'lo', 'up') }
    sh('ip', '-n', this.pub, 'link', 'add', 'br0', 'type', 'bridge')
    sh('ip', '-n', this.pub, 'addr', 'add', `${this.pubAddr}/24`, 'dev', 'br0')
    sh('ip', '-n', this.pub, 'link', 'set', 'br0', 'up')
    this.sites.forEach((site, i) => {
      const lan = `192.168.${77 + i}`
      sh('ip', '-n', this.pub, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'wan0', 'netns', site.router)
      sh('ip', '-n', this.pub, 'link', 'set', `p${i}`, 'master', 'br0')
      sh('ip', '-n', site.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', site.router)
      sh('ip', '-n', site.router, 'addr', 'add', `${site.wan}/24`, 'dev', 'wan0')
      sh('ip', '-n', site.router, 'addr', 'add', `${lan}.1/24`, 'dev', 'lan0')
      sh('ip', '-n', site.ns, 'addr', 'add', `${site.addr}/24`, 'dev', 'eth0')
      for (const [ns, dev] of [[this.pub, `p${i}`], [site.router, 'wan0'], [site.router, 'lan0'], [site.ns, 'eth0']]) sh('ip', '-n', ns, 'link', 'set', dev, 'up')
      sh('ip', '-n', site.ns, 'route', 'add', 'default', 'via', `${lan}.1`)
      sh('ip', 'netns', 'exec', site.router, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1')
      sh('ip', 'netns', 'exec', site.router, 'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan0', '-j', 'MASQUERADE', ...(this.opts.randomFully === true ? ['--random-fully'] : []))
      if (this.opts.firewall === true) sh('ip', 'netns', 'exec', site.router, 'iptables', ...FIREWALL_RULE('-A'))
      // nobody outside has a route to this site's LAN: only the router's own mappings lead in
    })
  }

  exec (ns: string, argv: string[], label: string, onOut?: (s: string) => void, env: Record<string, string> = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], cwd: repoRoot, env: { ...process.env, ...env } })
    this.procs.push(child)
    // NAT_LOG_DIR=dir keeps each process's whole output in dir/<label>.log (with DEBUG=dbc:*: the daemons' debug lines)
    const logDir = process.env.NAT_LOG_DIR
    if (logDir !== undefined && logDir !== '') mkdirSync(logDir, { recursive: true })
    const on = (d: Buffer): void => {
      onOut?.(`[${label}] ${d.toString()}`)
      if (logDir !== undefined && logDir !== '') appendFileSync(join(logDir, `${label}.log`), d)
    }
    child.stdout?.on('data', on); child.stderr?.on('data', on)
    return child
  }

  async startChain (): Promise<void> {
    let out = ''
    const child = this.exec(this.pub, [anvilBinary(), '--host', this.pubAddr, '--port', '8545', '--chain-id', '31337', '--hardfork', 'shanghai', '--balance', '1000000000000'], 'anvil', s => { out = (out + s).slice(-4000) })
    const deadline = Date.now() + 30_000
    while (!out.includes('Listening on')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`anvil did not start:\n${out}`)
      await sleep(20)
    }
  }

  /** `dbc node start` inside `ns`; resolves when its control API answers. */
  async startNode (name: string, ns: string, addr: string, args: string[], timeoutMs = 90_000, env: Record<string, string> = {}, onOut?: (s: string) => void): Promise<NatNode> {
    const dataDir = join(this.root, name)
    mkdirSync(dataDir, { recursive: true })
    const n: NatNode = { name, ns, dataDir, log: '', addr }
    n.child = this.exec(ns, [node22, join(repoRoot, 'bin/dbc.js'), '--data-dir', dataDir, 'node', 'start', '--log-level', 'warn', '--no-connection-monitor', '--network', 'local', '--chain-rpc', this.chainRpc, ...args], name, s => { n.log = (n.log + s).slice(-8000); onOut?.(s) }, env)
    this.nodes.push(n)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (n.child.exitCode !== null) throw new Error(`node ${name} exited during start:\n${n.log}`)
      if (existsSync(join(dataDir, 'api.json')) && existsSync(join(dataDir, 'api-token'))) {
        try { n.peerId = (await this.api<{ peerId: string }>(n, 'GET', '/v1/status')).peerId; return n } catch {}
      }
      if (Date.now() > deadline) throw new Error(`node ${name} did not become ready:\n${n.log}`)
      await sleep(300)
    }
  }

  /** The node's control API, called from inside its namespace (it listens on that namespace's loopback). */
  async api<T = any>(n: NatNode, method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
    const script = `
      const fs = require('node:fs'); const http = require('node:http'); const [dir, method, path, body] = process.argv.slice(1)
      const info = JSON.parse(fs.readFileSync(dir + '/api.json', 'utf8')); const token = fs.readFileSync(dir + '/api-token', 'utf8').trim()
      const req = http.request({ host: '127.0.0.1', port: info.port, path, method, agent: false, headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' } }, res => {
        let t = ''; res.on('data', c => { t += c }); res.on('end', () => { process.stdout.write(JSON.stringify({ status: res.statusCode, body: t })) })
      })
      req.on('error', e => { process.stdout.write(JSON.stringify({ status: 599, body: e.message })) })
      req.end(body === '' ? undefined : body)`
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', n.ns, node22, '-e', script, n.dataDir, method, path, body === undefined ? '' : JSON.stringify(body)], { stdio: ['ignore', 'pipe', 'pipe'] })
      let o = ''; let e = ''
      const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
      child.stdout.on('data', (d: Buffer) => { o += d.toString() })
      child.stderr.on('data', (d: Buffer) => { e += d.toString() })
      child.on('close', () => { clearTimeout(timer); o === '' ? reject(new Error(`${method} ${path} on ${n.name}: ${e}`)) : resolve(o) })
    })
    const r = JSON.parse(out) as { status: number, body: string }
    if (r.status >= 400) throw new Error(`${method} ${path} on ${n.name}: HTTP ${r.status} ${r.body}`)
    return JSON.parse(r.body) as T
  }

  /** SIGKILLs a node's process (a relay dying mid-job) and waits until it is gone. */
  async kill (n: NatNode): Promise<void> {
    const c = n.child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    const gone = new Promise<void>(resolve => c.once('exit', () => { resolve() }))
    c.kill('SIGKILL')
    await gone
  }

  /** Whether a plain TCP connect from `ns` to host:port succeeds (within 3 s). */
  tcpReachable (ns: string, host: string, port: number): string {
    const script = `const s = require('node:net').connect(${port}, '${host}'); s.setTimeout(3000); s.on('connect', () => { console.log('connected'); process.exit(0) }); s.on('timeout', () => { console.log('timeout'); process.exit(0) }); s.on('error', e => { console.log(e.code); process.exit(0) })`
    return execFileSync('ip', ['netns', 'exec', ns, node22, '-e', script], { encoding: 'utf8', timeout: 10_000 }).trim()
  }

  /** SIGTERM the nodes, then kill whatever is left in the namespaces and delete them. */
  async destroy (): Promise<void> {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGTERM')
    const deadline = Date.now() + 5000
    while (this.procs.some(p => p.exitCode === null && p.signalCode === null) && Date.now() < deadline) await sleep(100)
    this.destroySync()
  }

  private destroySync (): void {
    for (const ns of this.namespaces().reverse()) killNs(ns)
    rmSync(this.root, { recursive: true, force: true })
  }

  remaining (): string[] {
    const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    return this.namespaces().filter(ns => list.includes(ns))
  }
}
