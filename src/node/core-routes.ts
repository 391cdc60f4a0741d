// The daemon's own control API routes (src/node/daemon.ts registers them once the host runs):
// id, status, peers, ping, a DHT peer lookup and stop. Subsystems register their own routes.
import { performance } from 'node:perf_hooks'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Host } from '../net/host.js'
import { DbcError, errorText } from '../errors.js'
import { stopOptionsOf, type StopOptions } from './drain-options.js'
import type { DaemonContext } from './daemon.js'

export interface CoreRoutesDeps {
  /** Each subsystem's status, by its name (merged into GET /v1/status). */
  subsystemStatus: () => Record<string, unknown>
  startedAt: number
  /** Where the metrics server listens, once it does. */
  metricsAddress: () => string | undefined
  /** Tasks running here that a graceful stop waits for. */
  inFlight: () => number
  stop: (opts: StopOptions) => Promise<void>
}

export function registerCoreRoutes (ctx: DaemonContext, d: CoreRoutesDeps): void {
  const { api, host, identity } = ctx
  api.route('GET', '/v1/id', () => ({
    peerId: identity.peerId.toString(),
    publicKey: Buffer.from(identity.privateKey.publicKey.raw).toString('base64'),
    addrs: host.getMultiaddrs().map(String)
  }))
  api.route('GET', '/v1/status', () => {
    const extra = d.subsystemStatus()
    return {
      peerId: identity.peerId.toString(),
      pid: process.pid,
      version: '0.1.0',
      uptimeMs: Date.now() - d.startedAt,
      addrs: host.getMultiaddrs().map(String),
      location: ctx.location ?? null,
      connections: host.getConnections().length,
      peers: host.getPeers().length,
      dht: { mode: ctx.config.dht.server ? 'server' : 'client', routingTable: dhtTableSize(host) },
      dataDir: ctx.config.dataDir,
      penalizedPeers: ctx.scores.penalized(Date.now()),
      guard: ctx.guard.status(),
      metrics: d.metricsAddress() ?? null,
      ...extra
    }
  })
  api.route('GET', '/v1/peers', async () => {
    const peers = []
    for (const c of host.getConnections()) {
      peers.push({ peerId: c.remotePeer.toString(), addr: c.remoteAddr.toString(), direction: c.direction, openedAt: c.timeline.open })
    }
    const seen = new Set<string>()
    return { peers: peers.filter(p => { const k = p.peerId; if (seen.has(k)) return false; seen.add(k); return true }) }
  })
  api.route('POST', '/v1/ping', async (req) => {
    const body = (req.body ?? {}) as { peer?: string, count?: number }
    if (typeof body.peer !== 'string' || body.peer === '') throw new DbcError('BAD_REQUEST', 'ping needs a peer id or multiaddr')
    const count = Math.max(1, Math.min(100, body.count ?? 3))
    let target: PeerId | ReturnType<typeof multiaddr>
    try {
      target = body.peer.startsWith('/') ? multiaddr(body.peer) : peerIdFromString(body.peer)
    } catch {
      throw new DbcError('BAD_PEER', `"${body.peer}" is neither a peer id nor a multiaddr`, { hint: 'pass a peer id (12D3Koo...) or a multiaddr ending in /p2p/ID' })
    }
    const rtts: number[] = []
    for (let i = 0; i < count; i++) {
      try {
        rtts.push(await host.services.ping.ping(target as any, { signal: AbortSignal.any([req.signal, AbortSignal.timeout(10_000)]) }))
      } catch (err) {
        throw new DbcError('PING_FAILED', `cannot reach ${body.peer}: ${errorText(err)}`, { hint: 'check the peer is running and reachable; `dbc peers` lists current connections (a peer behind NAT is reached through its relay, and may refuse direct connections)' })
      }
    }
    return { peer: body.peer, rtts }
  })
  api.route('GET', '/v1/dht/find-peer/:peer', async (req) => {
    let id: PeerId
    try { id = peerIdFromString(req.params.peer) } catch {
      throw new DbcError('BAD_PEER', `"${req.params.peer}" is not a peer id`)
    }
    const t0 = performance.now()
    const info = await host.peerRouting.findPeer(id, { useCache: false, signal: AbortSignal.any([req.signal, AbortSignal.timeout(30_000)]) } as any)
      .catch((err: Error) => { throw new DbcError('NOT_FOUND', `the DHT did not find ${req.params.peer}: ${err.message}`) })
    return { peerId: info.id.toString(), addrs: info.multiaddrs.map(String), ms: performance.now() - t0 }
  })
  api.route('POST', '/v1/stop', (req) => {
    const opts = stopOptionsOf(req.body)
    const draining = opts.now ? 0 : d.inFlight()
    setTimeout(() => { void d.stop(opts) }, 10)
    return { stopping: true, draining, drainS: opts.drainS }
  })
}

function dhtTableSize (host: Host): number {
  const rt = (host.services.dht as unknown as { routingTable?: { size?: number } }).routingTable
  return rt?.size ?? 0
}

