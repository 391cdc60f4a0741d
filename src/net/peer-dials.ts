// Dials by peer id to a peer we reach only through a relay. libp2p never hands out a limited
// (relayed) connection for a dial by peer id, so every such dial, even for a protocol that runs on
// one, queues a new dial: it tries the NATed peer's private address first (6 s address timeout
// behind a NAT), then opens one more circuit, which nothing closes and which counts against the
// relay's circuits per connection (16). Session 16 found the callers in the netns NAT scenarios:
// the Vivaldi prober (every 2 s), membership shuffles, capability fetches, envelope channels and
// kad-dht queries, one dial every ~6 s per NATed pair. Installed on each host (createHost):
// - a stream that may run on a limited connection takes the newest open one, if there is no
//   unlimited one (libp2p prefers an unlimited one itself);
// - a stream that may not (runOnLimitedConnection unset) is dialled on the peer's direct
//   addresses only, since a circuit could not carry it; with none left it fails at once with
//   libp2p's own LimitedConnectionError, as it did after the useless dial before;
// - a dial by peer id skips a NATed peer's private addresses outside our own networks
//   (nat-addr.ts `reachableAddrs`), and every dial tries such addresses last (`privateElsewhereLast`,
//   the host's address sorter: also for addresses a peer routing lookup found).
// `force: true` and dials to a multiaddr pass through unchanged.
import { networkInterfaces } from 'node:os'
import { LimitedConnectionError, isPeerId, type Connection, type PeerId, type Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { reachableAddrs, privateElsewhere, type OwnNetwork } from './nat-addr.js'

type Target = PeerId | Multiaddr | Multiaddr[]
interface Opts { force?: boolean, runOnLimitedConnection?: boolean, signal?: AbortSignal, [k: string]: unknown }

/** The part of libp2p's connection manager these rules wrap. */
export interface DialingConnectionManager {
  openConnection: (target: Target, options?: Opts) => Promise<Connection>
  openStream: (target: Target, protocols: string | string[], options?: Opts) => Promise<Stream>
  getConnections: (peer?: PeerId) => Connection[]
}

export interface PeerDialDeps {
  /** The peer's addresses as the peer store holds them (undefined: unknown peer). */
  addressesOf: (peer: PeerId) => Promise<string[] | undefined>
  /** Our own interface addresses (default: os.networkInterfaces()). */
  ownNetworks?: () => OwnNetwork[]
}

export const peerDialStats = new WeakMap<DialingConnectionManager, { reused: number, refused: number, narrowed: number }>()

function ownInterfaces (): OwnNetwork[] {
  return Object.values(networkInterfaces()).flatMap(list => list ?? [])
}

type Address = { multiaddr: { toString: () => string } }

/**
 * A dial order (`base`) with direct addresses in private networks we are not in moved after all
 * others: behind a NAT, a peer's LAN address waits out libp2p's 6 s address timeout before its
 * circuit address is tried. Only the order changes; with nothing else to dial they are still tried.
 */
export function privateElsewhereLast<A extends Address, R extends number> (base: (a: A, b: A) => R, own: () => OwnNetwork[] = ownInterfaces): (a: A, b: A) => R | -1 | 1 {
  // one sort (synchronous) reads our interfaces once and classifies each address once, not per
  // comparison: os.networkInterfaces() is a getifaddrs call (~0.05-0.2 ms, more with many
  // interfaces) and a sort compares n log n pairs. Both are forgotten after the turn: the next sort
  // (the next dial) reads the interfaces anew.
  let nets: OwnNetwork[] | undefined
  const kind = new Map<A, boolean>()
  const isLast = (x: A): boolean => {
    let k = kind.get(x)
    if (k === undefined) {
      if (nets === undefined) { nets = own(); queueMicrotask(() => { nets = undefined; kind.clear() }) }
      k = privateElsewhere(x.multiaddr.toString(), nets)
      kind.set(x, k)
    }
    return k
  }
  return (a, b) => {
    const pa = isLast(a); const pb = isLast(b)
    return pa !== pb ? (pa ? 1 : -1) : base(a, b)
  }
}

const isOpen = (c: Connection): boolean => c.status === 'open'
const isLimited = (c: Connection): boolean => c.limits != null

/** `addr` with `/p2p/PEER` at its end (a circuit address ends with the relay's otherwise). */
function withPeer (addr: string, peer: string): Multiaddr {
  return multiaddr(addr.endsWith(`/p2p/${peer}`) ? addr : `${addr}/p2p/${peer}`)
}

/** Wraps `cm`'s openConnection and openStream with the rules above (idempotent per manager). */
export function installPeerDialRules (cm: DialingConnectionManager, deps: PeerDialDeps): void {
  if (peerDialStats.has(cm)) return
  const stats = { reused: 0, refused: 0, narrowed: 0 }
  peerDialStats.set(cm, stats)
  const openConnection = cm.openConnection.bind(cm)
  const openStream = cm.openStream.bind(cm)
  const own = deps.ownNetworks ?? ownInterfaces

  /** The addresses to dial `peer` on, when the rules drop any of the peer store's (else undefined). */
  const narrowed = async (peer: PeerId, directOnly: boolean): Promise<{ addrs: Multiaddr[], had: number } | undefined> => {
    const all = await deps.addressesOf(peer).catch(() => undefined)
    if (all === undefined || all.length === 0) return undefined
    const keep = reachableAddrs(all, own()).filter(a => !directOnly || !a.includes('/p2p-circuit'))
    if (keep.length === all.length) return undefined
    const id = peer.toString()
    return { addrs: keep.map(a => withPeer(a, id)), had: all.length }
  }

  cm.openConnection = async (target, options = {}) => {
    if (!isPeerId(target) || options.force === true || cm.getConnections(target).some(c => isOpen(c) && !isLimited(c))) return await openConnection(target, options)
    const n = await narrowed(target, false)
    if (n === undefined || n.addrs.length === 0) return await openConnection(target, options)
    stats.narrowed++
    return await openConnection(n.addrs, options)
  }

  cm.openStream = async (target, protocols, options = {}) => {
    if (!isPeerId(target) || options.force === true) return await openStream(target, protocols, options)
    const open = cm.getConnections(target).filter(isOpen)
    if (open.some(c => !isLimited(c))) return await openStream(target, protocols, options)
    const limited = open.filter(isLimited)
    if (options.runOnLimitedConnection === true) {
      if (limited.length === 0) return await openStream(target, protocols, options)
      // the newest has the most of the relay's data and time limits left
      const conn = limited.reduce((a, b) => (b.timeline.open > a.timeline.open ? b : a))
      stats.reused++
      return await conn.newStream(protocols, options)
    }
    const n = await narrowed(target, true)
    if (n === undefined) return await openStream(target, protocols, options)
    if (n.addrs.length === 0) {
      stats.refused++
      throw new LimitedConnectionError(`peer ${target.toString()} is reachable from here only through a relay, and ${[protocols].flat().join(', ')} does not run on a relayed connection`)
    }
    const conn = await openConnection(n.addrs, options)
    return await conn.newStream(protocols, options)
  }
}
