// The libp2p host of a dbc node: TCP (IPv4 + IPv6), Noise, yamux, identify, ping and kad-dht
// in a private network (our own protocol prefix and bootstrap list). A node behind NAT also runs
// WebRTC: two NATed peers signal over a relayed connection and ICE punches a direct UDP path
// through both NATs, learning each side's mapping from a public node's STUN responder (src/net/stun).
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@libp2p/yamux'
import { installLibp2pPatches } from './libp2p-patches.js'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, type KadDHT } from '@libp2p/kad-dht'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayTransport, circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { loopbackAddressLast, publicAddressesFirst, circuitRelayAddressesLast, reliableTransportsFirst } from '@libp2p/utils'
import type { PrivateKey, PeerDiscovery, ComponentLogger, ConnectionGater, Metrics, Connection, Stream, Transport, Address } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { KAD_PARAMS } from './kad-params.js'
import { isWebRTC } from './nat-addr.js'
import { installPeerDialRules, unreachableLast, FailedAddrs, PeerAddrs } from './peer-dials.js'
import { WebRTCAdmission, type WebRTCAdmissionInit } from '../core/routing/webrtc-admission.js'
import { WebRTCBackoff, type WebRTCBackoffInit } from '../core/routing/webrtc-backoff.js'

/** Protocol prefix of every dbc protocol: a private network of its own. */
export const PROTOCOL_PREFIX = '/dbc'
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`
/** Circuits a relay sets up at once per connection (hop streams in, stop streams out): with 4 MiB
 * per circuit, the library's 300 stop streams per destination would let two cheap identities push
 * gigabytes through every public node. */
const RELAY_STREAMS = { maxInboundHopStreams: 16, maxOutboundStopStreams: 16 }

export interface HostInit {
  privateKey: PrivateKey
  /** Multiaddrs to listen on, e.g. /ip4/0.0.0.0/tcp/4001 and /ip6/::/tcp/4001. */
  listen?: string[]
  /** Multiaddrs (with /p2p/ID) of bootstrap peers. */
  bootstrap?: string[]
  /** Multiaddrs to announce instead of the listen addresses (public IP behind a port forward). */
  announce?: string[]
  /** DHT server mode (answers queries) for reachable nodes; client mode otherwise. */
  dhtServer?: boolean
  /** Keep private and loopback addresses in DHT records (LANs and local test networks). */
  keepPrivateAddresses?: boolean
  /** Addresses exempt from inbound rate limits (all loopback peers share 127.0.0.1). */
  allowAddresses?: string[]
  /** Ping every connection periodically and drop dead ones (costly with many in-process nodes). */
  connectionMonitor?: boolean
  maxConnections?: number
  logger?: ComponentLogger
  /** Serve as a circuit-relay-v2 relay for peers behind NAT (reachable nodes; default true). */
  relayServer?: boolean
  /** Our relay's limits per relayed connection (default RELAY_DATA_LIMIT_BYTES, RELAY_DURATION_LIMIT_MS; tests use small ones). */
  relayLimits?: { dataBytes?: number, durationMs?: number }
  /** Be reachable through a relay: reserve a slot on a relay peer (nodes behind NAT). */
  listenViaRelay?: boolean
  /**
   * Announce only relayed (and WebRTC) addresses, never the listen ones: a strict NAT simulated on one
   * host (`nat.strict`), whose gater refuses direct connections from all but its relay. Announced, the
   * loopback address was dialled first, connected, and was then closed by that gater: submitters
   * other than the relay never reached the node (its relayed address went untried).
   */
  announceRelayedOnly?: boolean
  /**
   * How many relays to hold a reservation on (default 1): with 2, a relay that dies leaves the
   * node reachable through the other (both circuit addresses are announced) while it re-reserves.
   * Each missing one keeps relay discovery (a DHT random walk) running, so ask for no more than
   * the network has.
   */
  relayReservations?: number
  /** A pair relayed this long tries the peer's direct addresses again in the background (ms; default DIRECT_RETRY_MS, 2 min; 0: never; src/net/peer-dials.ts). */
  directRetryMs?: number
  /** Start listening and dialing at once (default). The daemon registers its protocols first. */
  start?: boolean
  /** Refuses connections before they are used (the inbound guard: banned peers, new identities per address). */
  connectionGater?: ConnectionGater
  /** libp2p's own metrics (the node's Prometheus registry: src/node/metrics); none when unset. */
  metrics?: (components: any) => Metrics
  /**
   * WebRTC for a node behind NAT (`listenViaRelay`): listen on `/webrtc` (dialable by other NATed
   * peers through our relay) and dial theirs. `iceServers`: STUN URLs (`stun:IP:3478`) of public
   * nodes (src/net/stun), read at each attempt. On with `enabled: true` (the daemon: src/net/stun/node.ts). Public nodes run no WebRTC:
   * they reach a NATed peer through a relay and DCUtR (TCP), which is cheaper than SCTP.
   */
  webrtc?: { enabled?: boolean, iceServers?: () => string[], admission?: WebRTCAdmissionInit, backoff?: WebRTCBackoffInit, onUnavailable?: (err: Error) => void }
}

export interface HostServices {
  identify: Identify
  ping: Ping
  dht: KadDHT
  [key: string]: unknown
}

export type Host = Libp2p<HostServices>

/**
 * Our relay's limits per relayed connection. The library's defaults (128 KiB, 2 min) fit a ping
 * or a DCUtR exchange, not a lease with its tasks: a relayed provider's lease stream lives
 * as long as its connection. 4 MiB and 10 min carry a lease, its heartbeats and many small tasks
 * (the module is sent once per lease) while bounding what a stranger can route through us;
 * the submitter opens a fresh relayed connection when one is used up (src/net/routes).
 */
export const RELAY_DATA_LIMIT_BYTES = 4 * 1024 * 1024
export const RELAY_DURATION_LIMIT_MS = 10 * 60_000
export const RELAY_RESERVATIONS = { maxReservations: 128, defaultDataLimit: BigInt(RELAY_DATA_LIMIT_BYTES), defaultDurationLimit: RELAY_DURATION_LIMIT_MS }

export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001']
/**
 * A yamux stream's receive window grows (RTT auto-tuning) to at most this. The library's default, 16 MiB,
 * is four times the stream's read buffer (4 MiB, @libp2p/utils): a reader that paused (FramedStream pauses
 * 64 frames behind) let an honest sender fill its window and the buffer's overflow aborted the stream
 * ("The stream has been reset": review s8). Half the read buffer leaves the other half for what was
 * already read but not consumed. 2 MiB per round trip: 20 MB/s a stream at 100 ms RTT.
 */
export const YAMUX_MAX_STREAM_WINDOW = 2 * 1024 * 1024

/** The WebRTC signalling protocol (@libp2p/webrtc's SIGNALING_PROTOCOL). */
export const WEBRTC_SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'

type WebRTCFactory = typeof import('@libp2p/webrtc').webRTC

/**
 * @libp2p/webrtc, loaded only on a node that uses it: its native addon (node-datachannel) throws
 * at import where no prebuilt binary loads (`npm ci --omit=optional`, an architecture without one,
 * an older glibc), and a public node, which never uses WebRTC, must start there (review s10 M2).
 */
async function loadWebRTC (): Promise<WebRTCFactory | Error> {
  try {
    return (await import('@libp2p/webrtc')).webRTC
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
}

/**
 * The WebRTC transport with its inbound attempts bounded (src/core/routing/webrtc-admission.ts):
 * an attempt over the limit is refused before the library makes its native PeerConnection.
 * The library registers its signalling handler itself (32 streams per connection, no other
 * bound), so the bound wraps the handler's target, `_onProtocol`. A peer whose attempt ended without
 * a connection waits before its next (src/core/routing/webrtc-backoff.ts, review s10 L2).
 */
function boundedWebRTC (webRTC: WebRTCFactory, iceServers: () => string[], admission: WebRTCAdmission, backoff: WebRTCBackoff, onComponents: (c: any) => void): (components: any) => Transport {
  const factory = webRTC({ rtcConfiguration: () => ({ iceServers: iceServers().map(urls => ({ urls })) }) })
  return (components: any) => {
    onComponents(components)
    const t = factory(connectedBeforeUpgrade(components)) as Transport & { _onProtocol: (s: Stream, c: Connection, sig: AbortSignal) => Promise<void> }
    const onProtocol = t._onProtocol.bind(t)
    t._onProtocol = async (stream, connection, signal) => {
      const peer = connection.remotePeer.toString()
      if (backoff.waiting(peer, Date.now())) {
        stream.abort(new Error('WebRTC attempt refused: its last attempt did not connect (backoff)'))
        return
      }
      const open = (components.connectionManager.getConnections() as Connection[]).filter(c => isWebRTC(c.remoteAddr))
      const refused = admission.admit(peer, { peer: open.filter(c => c.remotePeer.toString() === peer).length, total: open.length })
      if (refused !== undefined) {
        stream.abort(new Error(`WebRTC attempt refused: ${refused}`))
        return
      }
      let connected = false
      try {
        await onProtocol(stream, connection, signal)
        connected = true
      } finally {
        admission.done(peer)
        backoff.ended(peer, Date.now(), connected)
      }
    }
    return t
  }
}

/**
 * The transport's components, with an inbound upgrade that first waits for ICE to connect.
 * @libp2p/webrtc's answering side stops reading candidates when the signalling stream ends and
 * upgrades whatever it has: a peer that sends a valid offer and closes the stream got an "open"
 * WebRTC connection over a PeerConnection that never connected, kept (with its native ICE agent)
 * for 30-60 s (measured), counted against the open bounds (2 per peer, 64 in all: 33 identities
 * shut out every honest attempt, refilled as they expire) and the connection limit (found by
 * test/fuzz/webrtc-signaling).
 * Waiting here keeps the attempt in flight until it is connected, and the inbound upgrade timeout
 * (the `signal`, 10 s) ends one that never is: the library then closes the PeerConnection.
 */
function connectedBeforeUpgrade (components: any): any {
  const upgrader = new Proxy(components.upgrader, {
    get (target, prop) {
      // the upgrader's own methods run on the upgrader itself (it may keep private fields)
      if (prop !== 'upgradeInbound') { const v = Reflect.get(target, prop, target); return typeof v === 'function' ? v.bind(target) : v }
      return async (conn: unknown, opts: { muxerFactory?: { peerConnection?: RTCPeerConnectionLike }, signal?: AbortSignal }) => {
        const pc = opts.muxerFactory?.peerConnection
        if (pc !== undefined) await untilConnected(pc, opts.signal)
        return await target.upgradeInbound(conn, opts)
      }
    }
  })
  return new Proxy(components, { get: (target, prop) => prop === 'upgrader' ? upgrader : Reflect.get(target, prop, target) })
}

interface RTCPeerConnectionLike {
  connectionState: string
  addEventListener: (type: 'connectionstatechange', fn: () => void) => void
  removeEventListener: (type: 'connectionstatechange', fn: () => void) => void
}

/** Resolves once `pc` is connected; rejects when it fails or closes first, or `signal` aborts. */
export async function untilConnected (pc: RTCPeerConnectionLike, signal?: AbortSignal): Promise<void> {
  if (pc.connectionState === 'connected') return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      pc.removeEventListener('connectionstatechange', check)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve(); else reject(err)
    }
    const check = (): void => {
      const state = pc.connectionState
      if (state === 'connected') done()
      else if (state === 'failed' || state === 'closed') done(new Error(`WebRTC connection ${state} before it connected`))
    }
    const onAbort = (): void => { done(new Error('WebRTC connection not connected before the upgrade timeout')) }
    if (signal?.aborted === true) { onAbort(); return }
    pc.addEventListener('connectionstatechange', check)
    signal?.addEventListener('abort', onAbort, { once: true })
    check()
  })
}

/**
 * libp2p's default dial order (loopback last, public first, relayed last, certified first, TCP
 * first) with WebRTC after everything: a first contact takes the relay (cheap, certain), and the
 * route book then tries WebRTC once (src/net/routes). Dialled first, a WebRTC address that cannot
 * be punched (a symmetric NAT) costs every dial its ICE timeout before the relay is tried.
 */
export function webrtcLastSorter (a: Address, b: Address): -1 | 0 | 1 {
  const wa = isWebRTC(a.multiaddr); const wb = isWebRTC(b.multiaddr)
  if (wa !== wb) return wa ? 1 : -1
  return libp2pOrder(a, b)
}

/** libp2p's default dial order (its defaultAddressSorter, as a comparator). */
function libp2pOrder (a: Address, b: Address): -1 | 0 | 1 {
  return loopbackAddressLast(a.multiaddr, b.multiaddr) || publicAddressesFirst(a.multiaddr, b.multiaddr) ||
    circuitRelayAddressesLast(a.multiaddr, b.multiaddr) || (a.isCertified === b.isCertified ? 0 : a.isCertified === true ? -1 : 1) ||
    reliableTransportsFirst(a.multiaddr, b.multiaddr)
}

export async function createHost (init: HostInit): Promise<Host> {
  installLibp2pPatches() // yamux window updates, Noise reads, one socket write per message (src/net/libp2p-patches.ts)
  let useWebRTC = init.listenViaRelay === true && init.webrtc?.enabled === true
  const webRTC = useWebRTC ? await loadWebRTC() : undefined
  if (webRTC instanceof Error) {
    // relayed and DCUtR as without WebRTC
    useWebRTC = false
    init.webrtc?.onUnavailable?.(webRTC)
  }
  const admission = new WebRTCAdmission(init.webrtc?.admission)
  const backoff = new WebRTCBackoff(init.webrtc?.backoff)
  let components: { transportManager: { dial: (ma: Multiaddr, o: { signal: AbortSignal }) => Promise<Connection> }, connectionManager?: any } | undefined
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  const failedAddrs = new FailedAddrs()
  const certifiedAddrs = new PeerAddrs()
  if ((init.bootstrap ?? []).length > 0) {
    peerDiscovery.push(bootstrap({ list: init.bootstrap ?? [], timeout: 50 }))
  }
  const node = await createLibp2p({
    start: init.start ?? true,
    privateKey: init.privateKey,
    addresses: {
      // '/p2p-circuit' asks the relay transport to find a relay and reserve a slot on it
      listen: [...(init.listen ?? DEFAULT_LISTEN), ...(init.listenViaRelay === true ? Array.from({ length: Math.max(1, Math.min(4, init.relayReservations ?? 1)) }, () => '/p2p-circuit') : []), ...(useWebRTC ? ['/webrtc'] : [])],
      announce: init.announce ?? [],
      ...(init.announceRelayedOnly === true ? { announceFilter: relayedOnly } : {})
    },
    transports: [tcp(), ...(useWebRTC && typeof webRTC === 'function' ? [boundedWebRTC(webRTC, init.webrtc?.iceServers ?? (() => []), admission, backoff, c => { components = c })] : []), withComponents(circuitRelayTransport(), c => { components ??= c })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ streamOptions: { maxStreamWindowSize: YAMUX_MAX_STREAM_WINDOW } })],
    peerDiscovery,
    connectionManager: {
      maxConnections: init.maxConnections ?? 300,
      // an address that failed from here after everything (peer-dials.ts): also where a peer routing lookup found the addresses;
      // the peer's own addresses first also in peer-dials' dials to a list (libp2p marks those uncertified)
      addressSorter: unreachableLast(useWebRTC ? webrtcLastSorter : libp2pOrder, failedAddrs, certifiedAddrs),
      allow: init.allowAddresses ?? ['/ip4/127.0.0.1', '/ip6/::1']
    },
    connectionMonitor: { enabled: init.connectionMonitor ?? true },
    ...(init.connectionGater !== undefined ? { connectionGater: init.connectionGater } : {}),
    ...(init.logger !== undefined ? { logger: init.logger } : {}),
    ...(init.metrics !== undefined ? { metrics: init.metrics } : {}),
    services: {
      identify: identify({ protocolPrefix: PROTOCOL_PREFIX.slice(1) }),
      // hole punching: upgrades a relayed connection to a direct one where the NATs allow it
      dcutr: dcutr(),
      ...(init.relayServer ?? true ? { relay: circuitRelayServer({ ...RELAY_STREAMS, reservations: { ...RELAY_RESERVATIONS, ...relayLimits(init.relayLimits) } }) } : {}),
      ping: ping({ protocolPrefix: PROTOCOL_PREFIX.slice(1) }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: !(init.dhtServer ?? true),
        peerInfoMapper: (init.keepPrivateAddresses ?? true) ? passthroughMapper : removePrivateAddressesMapper,
        // one source for these and the simulator's model (src/net/kad-params.ts)
        kBucketSize: KAD_PARAMS.kBucketSize,
        prefixLength: KAD_PARAMS.prefixLength,
        alpha: KAD_PARAMS.alpha,
        disjointPaths: KAD_PARAMS.disjointPaths
        // allowQueryWithZeroPeers stays off: with it on, relay discovery spins in a tight loop
        // of empty DHT queries until a first peer connects
      })
    }
  })
  const host = node as unknown as Host
  webrtcAdmissions.set(host, admission)
  webrtcBackoffs.set(host, backoff)
  const tm = components?.transportManager
  // dials by peer id to peers reached only through a relay: reuse, no useless circuits, no dead private addresses (peer-dials.ts)
  const cm = components?.connectionManager
  if (cm !== undefined) {
    installPeerDialRules(cm, {
      failed: failedAddrs,
      certified: certifiedAddrs,
      ...(init.directRetryMs !== undefined ? { directRetryMs: init.directRetryMs } : {}),
      addressesOf: async peer => {
        try { return (await node.peerStore.get(peer)).addresses.map(a => ({ addr: a.multiaddr.toString(), certified: a.isCertified })) } catch { return undefined }
      }
    })
  }
  if (tm !== undefined) {
    transportDials.set(host, async (ma, signal) => await tm.dial(ma, { signal }))
    if (useWebRTC) webrtcHosts.add(host)
  }
  return host
}

/** The transport factory `make`, telling `seen` the components libp2p gives it (the transport manager). */
function withComponents<C, T> (make: (components: C) => T, seen: (components: any) => void): (components: C) => T {
  return (components: C) => { seen(components); return make(components) }
}

type TransportDial = (ma: Multiaddr, signal: AbortSignal) => Promise<Connection>
/** Each host's dial on its transport manager (outside libp2p's dial queue): the relayed and WebRTC dialers below. */
const transportDials = new WeakMap<Host, TransportDial>()
/** Hosts that run WebRTC (their transport dial also takes `/p2p-circuit/webrtc` addresses). */
const webrtcHosts = new WeakSet<Host>()
/**
 * Dials a `/p2p/RELAY/p2p-circuit/p2p/PEER` address on the relay transport, not libp2p's dial
 * queue: a dial to a peer that has only limited connections is never satisfied by them, so
 * libp2p queues one, and the queue joins every later dial to the same peer (forced or not)
 * onto it, which tries the peer's private address first and waits out its 6 s address timeout
 * behind a NAT (session 15: a used-up relayed connection took ~5 s to replace, rounds lost).
 * Tracked like any connection (the upgrader announces it). Undefined: a host not made here.
 */
export function relayedDialerOf (host: Host): TransportDial | undefined { return transportDials.get(host) }

/**
 * Dials a `/p2p-circuit/webrtc` address through the transport, not libp2p's dial queue: the
 * queue joins every dial to the same peer onto a pending one, so each stream opened to that
 * peer meanwhile (an offer request) would wait out ICE (seconds) and fail with it. The
 * connection is tracked like any other (the upgrader announces it). Undefined: no WebRTC here.
 */
export function webrtcDialerOf (host: Host): TransportDial | undefined { return webrtcHosts.has(host) ? transportDials.get(host) : undefined }

const webrtcAdmissions = new WeakMap<Host, WebRTCAdmission>()
/** The bound on a host's inbound WebRTC attempts (metrics, tests). */
export function webrtcAdmissionOf (host: Host): WebRTCAdmission | undefined { return webrtcAdmissions.get(host) }
const webrtcBackoffs = new WeakMap<Host, WebRTCBackoff>()
/** The waits of peers whose inbound WebRTC attempt did not connect (metrics, tests). */
export function webrtcBackoffOf (host: Host): WebRTCBackoff | undefined { return webrtcBackoffs.get(host) }

function relayLimits (l: HostInit['relayLimits']): { defaultDataLimit?: bigint, defaultDurationLimit?: number } {
  return { ...(l?.dataBytes !== undefined ? { defaultDataLimit: BigInt(l.dataBytes) } : {}), ...(l?.durationMs !== undefined ? { defaultDurationLimit: l.durationMs } : {}) }
}

/** The addresses a peer reaches through a relay or WebRTC (`announceRelayedOnly`). */
export function relayedOnly<A extends { toString: () => string }> (addrs: A[]): A[] {
  return addrs.filter(a => { const s = a.toString(); return s.includes('/p2p-circuit') || /\/webrtc(\/|$)/.test(s) })
}
