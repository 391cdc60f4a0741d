// The node daemon: identity, store, libp2p host, protocols, subsystems and the control API,
// started in that order and stopped in reverse. `dbc node start` runs one of these.
import { DRAIN_DEFAULT_S, type StopOptions } from './drain-options.js'
import { registerCoreRoutes } from './core-routes.js'
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync, rmSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { pino, type Logger } from 'pino'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import type { EventEmitter } from 'node:events'
import type { Bridge } from '../chain/index.js'
import { createHost, webrtcAdmissionOf, WEBRTC_SIGNALING_PROTOCOL, type Host } from '../net/host.js'
import { OverlayOnlyPeers, strictNatGater } from '../net/routes/private-peers.js'
import { registerEcho } from '../net/echo.js'
import { startStun, webrtcOf, iceServerWarning } from '../net/stun/node.js'
import type { StunResponder } from '../net/stun/index.js'
import { ApiServer } from '../api/server.js'
import { API_INFO_FILE, API_TOKEN_FILE, readApiInfo, processAlive, type ApiInfo } from '../api/client.js'
import { openStore, type Store } from '../store/db.js'
import { loadOrCreateIdentity, type NodeIdentity } from './identity.js'
import { parseLatLon, type NodeConfig } from './config.js'
import { locationText } from '../core/geo/location.js'
import { PeerScoreBook, type Offence } from '../core/routing/score.js'
import { createInboundGuard, installGuard, RepeatLimiter, LOG_REPEAT_MS, type InboundGuard } from '../net/guard/index.js'
import { DbcError, ConfigError, type WireError } from '../errors.js'
import { createNodeMetrics, libp2pMetrics, Registry, type NodeMetrics } from './metrics/index.js'
import { HealthChecks } from './metrics/health.js'
import { MetricsServer } from './metrics/server.js'
import { parseListen } from './metrics/listen.js'
import { registerDashboard } from '../dashboard/index.js'

export interface Location { lat: number, lon: number, name?: string, country?: string }

/** What a subsystem (compute, jobs, overlay, chain...) gets from the daemon. */
export interface DaemonContext {
  config: NodeConfig
  identity: NodeIdentity
  host: Host
  store: Store
  log: Logger
  api: ApiServer
  /** The node's one score book: byte-level violations here, envelope/gossip offences in the overlay. */
  scores: PeerScoreBook<string>
  location: Location | undefined
  /** Report bytes from a peer that broke a protocol; may disconnect it. */
  reportBadInput: (peer: PeerId, err: WireError) => void
  /** The node's one inbound guard (stream caps, buffer budgets, read deadlines, new-identity gate). */
  guard: InboundGuard
  /** The node's Prometheus metrics (src/node/metrics), when `metrics.listen` is set. */
  metrics?: NodeMetrics
  /** Peers this node reaches only through the overlay (its connection gater refuses them). */
  privatePeers?: OverlayOnlyPeers
}

export interface Subsystem {
  readonly name: string
  start: (ctx: DaemonContext) => Promise<void>
  stop: () => Promise<void>
  /** Called once the host listens and dials (protocols were registered in start()). */
  afterNetworkStart?: () => Promise<void>
  /** Extra fields for `dbc node status`. */
  status?: () => Record<string, unknown>
  /** A graceful stop's first half (before any subsystem stops): let the work in flight end, until `signal` aborts. */
  drain?: (signal: AbortSignal) => Promise<void>
  /** How much work a drain waits for now (tasks running). */
  inFlight?: () => number
}


export interface DaemonInit {
  config: NodeConfig
  subsystems?: Subsystem[]
  /** Resolves a city name to coordinates (the overlay's bundled data set). */
  resolveCity?: (name: string) => Location
  logger?: Logger
}

export class Daemon {
  readonly config: NodeConfig
  private readonly subsystems: Subsystem[]
  private readonly init: DaemonInit
  private ctx: DaemonContext | undefined
  private stun: StunResponder | undefined
  private stopping: Promise<void> | undefined
  /** Aborts the drain of a graceful stop under way (a second stop asked for `now`). */
  private drainAbort: AbortController | undefined
  private metricsServer: MetricsServer | undefined
  /** Where /metrics listens (HOST:PORT), when it does. */
  metricsAddress: string | undefined
  readonly startedAt = Date.now()
  /** Resolves when the daemon has stopped (by API, signal or error). */
  readonly stopped: Promise<void>
  private resolveStopped!: () => void

  constructor (init: DaemonInit) {
    this.init = init
    this.config = init.config
    this.subsystems = init.subsystems ?? []
    this.stopped = new Promise(resolve => { this.resolveStopped = resolve })
  }

  get context (): DaemonContext {
    if (this.ctx === undefined) throw new DbcError('NOT_STARTED', 'the daemon is not started')
    return this.ctx
  }

  async start (): Promise<void> {
    const { config } = this
    const dataDir = config.dataDir
    mkdirSync(join(dataDir, 'logs'), { recursive: true, mode: 0o700 })
    const running = readApiInfo(dataDir)
    if (running !== undefined && running.pid !== process.pid && processAlive(running.pid)) {
      throw new DbcError('ALREADY_RUNNING', `a dbc node (pid ${running.pid}) is already running with data dir ${dataDir}`, { hint: 'stop it with `dbc node stop`, or give this node its own --data-dir' })
    }
    const log = this.init.logger ?? pino({ level: config.log.level, base: { component: 'dbc' } })
    const location = this.resolveLocation(config.location)
    // a city name picks the most populous place of that name: say which, so the operator can correct it
    if (location !== undefined && location.name !== undefined) log.info({ location }, `location "${config.location}" is ${locationText(location)} (the most populous place of that name in the bundled city list; write "Name, CC" or LAT,LON for another)`)
    const { identity, created } = await loadOrCreateIdentity(dataDir)
    log.info({ peerId: identity.peerId.toString(), created }, created ? 'created a new identity' : 'loaded identity')
    const store = openStore(join(dataDir, 'node.db'))
    const scores = new PeerScoreBook<string>()
    // each error object is charged once, whoever reports it (the guard, then the handler that reads it)
    const charged = new WeakSet<Error>()
    const logLimit = new RepeatLimiter(LOG_REPEAT_MS)
    let hostRef: Host | undefined
    // metrics only when asked for: libp2p's collectors wrap every stream
    const registry = config.metrics !== undefined ? new Registry() : undefined
    let metrics: NodeMetrics | undefined
    const reportBadInput = (peer: PeerId, err: WireError): void => {
      if (charged.has(err)) return
      charged.add(err)
      const now = Date.now()
      const id = peer.toString()
      const wasBanned = scores.isBanned(now, id)
      const { disconnect: ban, score } = scores.penalize(now, id, offenceOf(err.code))
      metrics?.badInput(id, offenceOf(err.code), ban && !wasBanned)
      // one line per kind of offence per window, with the count of lines held back
      const line = logLimit.check(now, `bad-input:${err.code}`)
      if (line.write) log.warn({ peer: id, code: err.code, score, ...(line.suppressed > 0 ? { repeated: line.suppressed } : {}) }, `bad input from peer: ${err.message}`)
      if (ban) {
        if (!wasBanned) {
          // once per ban (a banned peer's streams still in flight report again: those are not logged)
          const b = logLimit.check(now, 'ban')
          if (b.write) log.warn({ peer: id, ...(b.suppressed > 0 ? { repeated: b.suppressed } : {}) }, 'peer score below threshold: disconnecting')
          guard.noteBan(id)
        }
        void hostRef?.hangUp(peer).catch(() => {})
      }
    }
    const guard = createInboundGuard({
      charge: reportBadInput,
      isBanned: (peer) => scores.isBanned(Date.now(), peer),
      identityGate: { burst: config.guard?.newIdentityBurst, refillMs: config.guard?.newIdentityRefillMs }
    })
    const privatePeers = new OverlayOnlyPeers()
    const webrtc = webrtcOf(config.nat, config.bootstrap)
    const noStun = iceServerWarning(webrtc)
    if (noStun !== undefined) log.warn(noStun)
    const host = await createHost({
      privateKey: identity.privateKey,
      listen: config.listen,
      announce: config.announce,
      bootstrap: config.bootstrap,
      dhtServer: config.dht.server,
      keepPrivateAddresses: config.dht.keepPrivateAddresses,
      connectionMonitor: config.connectionMonitor,
      relayServer: config.nat.relayServer && !config.nat.behindNat,
      listenViaRelay: config.nat.behindNat,
      announceRelayedOnly: config.nat.behindNat && config.nat.strict === true,
      ...(config.nat.relayReservations !== undefined ? { relayReservations: config.nat.relayReservations } : {}),
      // behind NAT: WebRTC to other NATed peers, ICE asking the bootstrap peers' STUN (src/net/stun)
      webrtc: { ...webrtc, onUnavailable: (err) => { log.warn(`WebRTC is off: its native part (node-datachannel) cannot load on this machine (${err.message.split('\n')[0]}); peers behind other NATs stay relayed`) } },
      // peers reached through the overlay only (routing: overlay) are refused both ways (src/net/routes)
      connectionGater: config.nat.behindNat && config.nat.strict === true
        ? strictNatGater(privatePeers.wrap(guard.connectionGater()), peer => config.bootstrap.some(a => a.endsWith(`/p2p/${peer}`)))
        : privatePeers.wrap(guard.connectionGater()),
      ...(registry !== undefined ? { metrics: libp2pMetrics(registry) } : {}),
      // protocols are registered before the node listens or dials, so the first identify
      // exchange with every peer already lists them
      start: false
    }).catch(err => {
      store.close()
      throw err
    })
    hostRef = host
    privatePeers.hangUp = async (peer) => { await host.hangUp(peerIdFromString(peer)) }
    installGuard(host, guard)
    guard.attach(host)
    // refuse banned peers at the door
    host.addEventListener('peer:connect', (evt) => {
      if (scores.isBanned(Date.now(), evt.detail.toString())) void host.hangUp(evt.detail).catch(() => {})
    })
    // forget peers that misbehaved once they leave: a stream of throw-away hostile identities
    // must not grow the peer store without bound (their scores stay in the bounded score book)
    host.addEventListener('peer:disconnect', (evt) => {
      if (scores.score(Date.now(), evt.detail.toString()) < 0) void host.peerStore.delete(evt.detail).catch(() => {})
    })
    await registerEcho(host, { onBadInput: reportBadInput })

    const token = randomBytes(32).toString('hex')
    const api = new ApiServer(token)
    const health = this.healthChecks(host)
    if (registry !== undefined) {
      metrics = createNodeMetrics({ host, scores, guard, subsystems: this.subsystems, slotEvents: () => this.subsystem<{ peer?: { events: EventEmitter<any> } }>('compute')?.peer?.events, ready: async () => (await health.ready()).status === 200, stun: () => this.stun?.stats, webrtc: () => host.getProtocols().includes(WEBRTC_SIGNALING_PROTOCOL) ? webrtcAdmissionOf(host) : undefined }, registry)
    }
    this.ctx = { config, identity, host, store, log, api, scores, location, reportBadInput, guard, metrics, privatePeers }
    registerCoreRoutes(this.context, {
      subsystemStatus: () => Object.fromEntries(this.subsystems.flatMap(x => x.status !== undefined ? [[x.name, x.status()]] : [])),
      startedAt: this.startedAt,
      metricsAddress: () => this.metricsAddress,
      inFlight: () => this.inFlight(),
      stop: async (opts) => { await this.stop(opts) }
    })
    // probes need no token (they reveal nothing private); everything under /v1 still does
    api.publicRoute('/healthz', () => health.live())
    api.publicRoute('/readyz', async () => await health.ready())
    try {
      for (const s of this.subsystems) {
        await s.start(this.ctx)
        log.info({ subsystem: s.name }, 'subsystem started')
      }
      await Promise.resolve(host.start()).catch((err: unknown) => { throw listenError(err, config.listen) })
      for (const s of this.subsystems) await s.afterNetworkStart?.()
      // a public relay node answers STUN for NATed peers' WebRTC (src/net/stun)
      this.stun = await startStun(config.nat, msg => { log.warn(msg) })
      registerDashboard(api, { context: this.ctx, subsystem: (name) => this.subsystem(name), version: '0.1.0' })
    } catch (err) {
      for (const s of [...this.subsystems].reverse()) await s.stop().catch(() => {})
      await this.stopStun()
      await Promise.resolve(host.stop()).catch(() => {})
      store.close()
      throw err
    }
    const port = await api.listen(config.api.port).catch(async err => {
      await this.stopStun()
      await Promise.resolve(host.stop()).catch(() => {})
      store.close()
      throw new ConfigError('api.port', `cannot listen on 127.0.0.1:${config.api.port}: ${(err as Error).message}`, { hint: 'pick another port, or 0 for any free one' })
    })
    if (metrics !== undefined && config.metrics !== undefined) {
      metrics.watch()
      const at = parseListen(config.metrics.listen) as { host: string, port: number }
      this.metricsServer = new MetricsServer({ text: metrics.text, contentType: metrics.contentType }, health)
      this.metricsAddress = await this.metricsServer.listen(at.host, at.port).catch(async err => {
        await api.close().catch(() => {})
        for (const s of [...this.subsystems].reverse()) await s.stop().catch(() => {})
        await this.stopStun()
        await Promise.resolve(host.stop()).catch(() => {})
        store.close()
        throw new ConfigError('metrics.listen', `cannot listen on ${config.metrics?.listen ?? ''}: ${(err as Error).message}`, { hint: 'pick another port (0 for any free one), or leave metrics off' })
      })
    }
    writeSecret(join(dataDir, API_TOKEN_FILE), token)
    const info: ApiInfo = { port, pid: process.pid, peerId: identity.peerId.toString(), startedAt: this.startedAt }
    writeAtomic(join(dataDir, API_INFO_FILE), JSON.stringify(info) + '\n')
    log.info({ addrs: host.getMultiaddrs().map(String), api: `127.0.0.1:${port}`, ...(this.metricsAddress !== undefined ? { metrics: this.metricsAddress } : {}) }, 'node started')
  }

  /** Closes the STUN socket: on stop, and when start fails after it was bound (review s10 L11). */
  private async stopStun (): Promise<void> {
    const stun = this.stun
    this.stun = undefined
    await stun?.stop().catch(() => {})
  }

  private subsystem<T> (name: string): T | undefined {
    return this.subsystems.find(s => s.name === name) as T | undefined
  }

  private healthChecks (host: Host): HealthChecks {
    return new HealthChecks({
      host,
      bootstrapCount: this.config.bootstrap.length,
      chainHead: () => {
        const bridge = this.subsystem<{ bridge?: Bridge }>('chain')?.bridge
        if (bridge === undefined) return undefined
        return async () => await bridge.connectionInfo.publicClient.getBlockNumber({ cacheTime: 0 })
      },
      stopping: () => this.stopping !== undefined,
      startedAt: this.startedAt
    })
  }

  private resolveLocation (s: string): Location | undefined {
    if (s === '') return undefined
    const ll = parseLatLon(s)
    if (ll !== undefined) return ll
    if (this.init.resolveCity === undefined) {
      throw new ConfigError('location', `"${s}" is a city name, but this build has no city data set`, { hint: 'give the location as LAT,LON, e.g. 35.68,139.69' })
    }
    return this.init.resolveCity(s)
  }

  /** Tasks running here that a graceful stop waits for. */
  inFlight (): number {
    return this.subsystems.reduce((n, s) => n + (s.inFlight?.() ?? 0), 0)
  }

  /**
   * Stops the node: first the work in flight ends (up to `drainS`; new leases are refused meanwhile),
   * then every subsystem stops. A stop asked while one drains with `now` cuts the drain short.
   */
  async stop (opts: StopOptions = {}): Promise<void> {
    if (this.stopping !== undefined) {
      if (opts.now === true) this.drainAbort?.abort(new Error('stopped at once'))
      return await this.stopping
    }
    this.stopping = this.doStop(opts)
    return await this.stopping
  }

  private async doStop (opts: StopOptions): Promise<void> {
    const ctx = this.ctx
    if (ctx === undefined) { this.resolveStopped(); return }
    ctx.log.info('stopping node')
    if (opts.now !== true) await this.drain(ctx, (opts.drainS ?? DRAIN_DEFAULT_S) * 1000)
    await ctx.api.close().catch(() => {})
    await this.metricsServer?.close().catch(() => {})
    ctx.metrics?.stop()
    for (const s of [...this.subsystems].reverse()) {
      await s.stop().catch(err => { ctx.log.error({ err, subsystem: s.name }, 'subsystem failed to stop cleanly') })
    }
    ctx.guard.stop()
    await this.stopStun()
    await Promise.resolve(ctx.host.stop()).catch((err: unknown) => { ctx.log.error({ err }, 'libp2p failed to stop cleanly') })
    ctx.store.close()
    rmSync(join(this.config.dataDir, API_INFO_FILE), { force: true })
    ctx.log.info('node stopped')
    this.resolveStopped()
  }

  /** The drain: every subsystem's work in flight ends, or the deadline passes, or a stop `now` aborts it. The API stays up meanwhile. */
  private async drain (ctx: DaemonContext, deadlineMs: number): Promise<void> {
    const ac = new AbortController()
    this.drainAbort = ac
    const timer = setTimeout(() => { ac.abort(new Error('drain deadline')) }, deadlineMs)
    try {
      await Promise.all(this.subsystems.map(async s => await s.drain?.(ac.signal).catch(err => { ctx.log.error({ err, subsystem: s.name }, 'subsystem failed to drain') })))
    } finally {
      clearTimeout(timer)
    }
  }
}

/** The score-book offence for a WireError code (the guard's budget and deadline codes included). */
export function offenceOf (code: string): Offence {
  switch (code) {
    case 'FRAME_TOO_LARGE': return 'oversized'
    case 'STREAM_LIMIT': case 'BUFFER_LIMIT': return 'over-budget'
    case 'READ_DEADLINE': case 'IDLE_DEADLINE': return 'slow-frame'
    default: return 'malformed'
  }
}

function writeAtomic (file: string, data: string): void {
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, data, { mode: 0o600 })
  renameSync(tmp, file)
}

function writeSecret (file: string, data: string): void {
  writeAtomic(file, data)
}

function listenError (err: unknown, listen: string[]): Error {
  const e = err as NodeJS.ErrnoException
  const msg = e?.message ?? String(err)
  if (/EADDRINUSE|address already in use/i.test(msg)) {
    return new ConfigError('listen', `cannot listen on ${listen.join(', ')}: the port is in use`, { hint: 'another node may be running; pick another port with --listen /ip4/0.0.0.0/tcp/PORT (or tcp/0 for any)', cause: err })
  }
  if (/EADDRNOTAVAIL|EAFNOSUPPORT/i.test(msg)) {
    return new ConfigError('listen', `cannot listen on ${listen.join(', ')}: ${msg}`, { hint: 'this machine may lack that address family (IPv6?); drop that --listen address', cause: err })
  }
  return err instanceof Error ? err : new Error(msg)
}
