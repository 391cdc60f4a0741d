// Dials by peer id to a peer we reach only through a relay. libp2p never hands out a limited
// (relayed) connection for a dial by peer id, so every such dial, even for a protocol that runs on
// one, queues a new dial: it tries the NATed peer's private address first (6 s address timeout
// behind a NAT), then opens one more circuit, which nothing closes and which counts against the
// relay's circuits per connection (16). Session 16 found the callers in the netns NAT scenarios:
// the Vivaldi prober (every 2 s), membership shuffles, capability fetches, envelope channels and
// kad-dht queries, one dial every ~6 s per NATed pair. Installed on each host (createHost):
// - a stream that may run on a limited connection takes the newest open one, if there is no
//   unlimited one (libp2p prefers an unlimited one itself);
// - a stream that may not (runOnLimitedConnection unset), to a peer that announces a relayed
//   address, is dialled on the peer's direct addresses only, since a circuit could not carry it;
//   when none answers it fails with libp2p's own LimitedConnectionError, as it did after the
//   useless circuit before;
// - a NATed peer's private address in a network we are not on (its LAN, as seen from elsewhere;
//   or a routed private network: a VPC's sibling subnet, a tailnet, a VPN) gets a short try
//   (PRIVATE_TRY_MS) before the rest, and once it failed from here it is skipped for a while
//   (FAILED_TTL_MS) and sorted last by the host's dial order (`unreachableLast`);
// - a pair that stayed relayed (DIRECT_RETRY_MS) tries the peer's direct addresses again in the
//   background (review17 L5): a stream that reuses a relayed connection never dials, so an address
//   that became reachable later (a port mapping, IPv6) would wait for the relay to end the circuit;
// - the peer's own (certified) addresses go before those others planted (a DHT lookup, a dial's
//   remote address): the dial order reads them from `certified` (libp2p marks every address of a
//   dial to a multiaddr list uncertified).
// `force: true` and dials to a multiaddr pass through unchanged.
import { networkInterfaces } from 'node:os'
import { LimitedConnectionError, isPeerId, type Connection, type PeerId, type Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { privateElsewhere, type OwnNetwork } from './nat-addr.js'

type Target = PeerId | Multiaddr | Multiaddr[]
interface Opts { force?: boolean, runOnLimitedConnection?: boolean, signal?: AbortSignal, [k: string]: unknown }

/** How long a NATed peer's private address in another network gets before its other addresses (ms): a routed one connects in far less, a NATed LAN address never does. */
export const PRIVATE_TRY_MS = 2000
/** How long an address that failed that try is skipped (ms). */
export const FAILED_TTL_MS = 10 * 60_000
/** Addresses remembered as failed at most (the oldest are forgotten first). */
export const MAX_FAILED_ADDRS = 1024
/** A NATed peer's private addresses elsewhere tried at most per dial, each for PRIVATE_TRY_MS (the peer names them: a long list must not hold a dial). */
export const MAX_PRIVATE_TRIES = 3
/** A pair relayed this long (its oldest relayed connection) tries the peer's direct addresses again, at most once per peer per this long (ms); under the relay's 10 min circuit limit. */
export const DIRECT_RETRY_MS = 2 * 60_000
/** How long such a background attempt may take (ms; libp2p's own dial timeout). */
export const DIRECT_RETRY_DIAL_MS = 10_000
/** Peers whose last background attempt is remembered, at most (the oldest forgotten first). */
export const MAX_DIRECT_RETRY_PEERS = 1024
/** Background attempts in flight at most, all peers together. */
export const MAX_DIRECT_RETRIES_IN_FLIGHT = 8
/** Direct addresses one background attempt dials at most, the peer's own first (a peer or a lookup may name many). */
export const MAX_DIRECT_RETRY_ADDRS = 8
/** libp2p's dial queue priority of a background attempt (its default is 50, a user's dial 75). */
const DIRECT_RETRY_PRIORITY = 10

/** The part of libp2p's connection manager these rules wrap. */
export interface DialingConnectionManager {
  openConnection: (target: Target, options?: Opts) => Promise<Connection>
  openStream: (target: Target, protocols: string | string[], options?: Opts) => Promise<Stream>
  getConnections: (peer?: PeerId) => Connection[]
}

/** An address from the peer store; `certified`: from the peer's own signed record. */
export interface KnownAddr { addr: string, certified: boolean }

export interface PeerDialDeps {
  /** The peer's addresses as the peer store holds them (undefined: unknown peer); a bare string is an uncertified one. */
  addressesOf: (peer: PeerId) => Promise<Array<string | KnownAddr> | undefined>
  /** Our own interface addresses (default: os.networkInterfaces()). */
  ownNetworks?: () => OwnNetwork[]
  /** The addresses that failed from here (default: a new one); the host's dial order reads the same. */
  failed?: FailedAddrs
  /** The peers' own addresses, for the host's dial order (default: a new one). */
  certified?: PeerAddrs
  /** PRIVATE_TRY_MS (tests). */
  privateTryMs?: number
  /** DIRECT_RETRY_MS (tests); 0: no background attempts. */
  directRetryMs?: number
  /** The clock of connections' timelines (default Date.now). */
  now?: () => number
}

export interface PeerDialStats { reused: number, refused: number, privateTried: number, privateFailed: number, directRetries: number, directFound: number }
export const peerDialStats = new WeakMap<DialingConnectionManager, PeerDialStats>()

function ownInterfaces (): OwnNetwork[] {
  return Object.values(networkInterfaces()).flatMap(list => list ?? [])
}

const isCircuit = (a: string): boolean => a.includes('/p2p-circuit')
/** An address without its trailing `/p2p/PEER` (the dial queue appends it; the peer store has none). */
const bare = (a: string): string => a.replace(/\/p2p\/[^/]+$/, '')
/** The peer id at the end of an address (`/p2p/PEER`), if any. */
const peerOf = (a: string): string | undefined => /\/p2p\/([^/]+)$/.exec(a)?.[1]

/** Addresses remembered per peer, each for `ttlMs` (bounded: the oldest are forgotten first). */
export class PeerAddrs {
  private readonly until = new Map<string, number>()
  constructor (private readonly now: () => number = Date.now, private readonly ttlMs = FAILED_TTL_MS, private readonly max = MAX_FAILED_ADDRS) {}
  /** `addr` failed for `peer` (default: the peer named at the address's end; none named: not remembered). */
  add (addr: string, peer = peerOf(addr)): void {
    if (peer === undefined) return
    const k = `${peer} ${bare(addr)}`
    this.until.delete(k)
    this.until.set(k, this.now() + this.ttlMs)
    while (this.until.size > this.max) this.until.delete(this.until.keys().next().value as string)
  }

  delete (addr: string, peer = peerOf(addr)): void {
    if (peer !== undefined) this.until.delete(`${peer} ${bare(addr)}`)
  }

  has (addr: string, peer = peerOf(addr)): boolean {
    if (peer === undefined) return false
    const k = `${peer} ${bare(addr)}`
    const t = this.until.get(k)
    if (t === undefined) return false
    if (t > this.now()) return true
    this.until.delete(k)
    return false
  }

  get size (): number { return this.until.size }
}

/**
 * Direct addresses that did not connect from here, per peer (an address failed for the peer that
 * announced it: a hostile peer announcing another's routed private address marks it only for
 * itself; review17 L7), each remembered for FAILED_TTL_MS (bounded).
 */
export class FailedAddrs extends PeerAddrs {}

type Address = { multiaddr: { toString: () => string }, isCertified?: boolean }

/**
 * A dial order (`base`) with the direct addresses that failed from here (`failed`) after all
 * others: also for addresses a peer routing lookup found, which the rules below do not see. Only
 * the order changes; with nothing else to dial they are still tried. An address in `certified`
 * counts as the peer's own (base sees isCertified) also in a dial to a list, where libp2p marks
 * none so.
 */
export function unreachableLast<A extends Address, R extends number> (base: (a: A, b: A) => R, failed: PeerAddrs, certified?: PeerAddrs): (a: A, b: A) => R | -1 | 1 {
  const own = (a: A): A => a.isCertified === true || certified?.has(a.multiaddr.toString()) !== true ? a : { ...a, isCertified: true }
  return (a, b) => {
    const fa = failed.has(a.multiaddr.toString()); const fb = failed.has(b.multiaddr.toString())
    return fa !== fb ? (fa ? 1 : -1) : base(own(a), own(b))
  }
}

/** When each peer's background direct attempt last started (bounded), and those in flight (bounded). */
export class DirectRetries {
  private readonly last = new Map<string, number>()
  private readonly flying = new Set<string>()
  constructor (private readonly now: () => number, private readonly everyMs = DIRECT_RETRY_MS, private readonly maxPeers = MAX_DIRECT_RETRY_PEERS, private readonly maxInFlight = MAX_DIRECT_RETRIES_IN_FLIGHT) {}

  /** Whether `peer`, relayed since `since` (its oldest open relayed connection), is due an attempt. */
  due (peer: string, since: number): boolean {
    if (this.everyMs <= 0 || this.flying.has(peer) || this.flying.size >= this.maxInFlight) return false
    const t = this.now()
    const last = this.last.get(peer)
    return t - since >= this.everyMs && (last === undefined || t - last >= this.everyMs)
  }

  start (peer: string): void {
    this.last.delete(peer)
    this.last.set(peer, this.now())
    while (this.last.size > this.maxPeers) this.last.delete(this.last.keys().next().value as string)
    this.flying.add(peer)
  }

  end (peer: string): void { this.flying.delete(peer) }
  inFlight (peer: string): boolean { return this.flying.has(peer) }
  get size (): number { return this.last.size }
}

const isOpen = (c: Connection): boolean => c.status === 'open'
const isLimited = (c: Connection): boolean => c.limits != null

/** `addr` with `/p2p/PEER` at its end (a circuit address ends with the relay's otherwise). */
function withPeer (addr: string, peer: string): Multiaddr {
  return multiaddr(addr.endsWith(`/p2p/${peer}`) ? addr : `${addr}/p2p/${peer}`)
}

/** How to dial a peer that announces a relayed address: its private addresses elsewhere first (short), then the rest; each list the peer's own addresses first. */
interface Plan { circuit: string[], tryFirst: string[], direct: string[], skipped: number }

/** The addresses as strings, the peer's own (certified) first, each group in the peer store's order; `certified` learns which are. */
function ownFirst (all: Array<string | KnownAddr>, peer: string, certified: PeerAddrs): string[] {
  const known = all.map(a => typeof a === 'string' ? { addr: a, certified: false } : a)
  for (const a of known) {
    if (a.certified) certified.add(a.addr, peer)
    else certified.delete(a.addr, peer)
  }
  return [...known.filter(a => a.certified), ...known.filter(a => !a.certified)].map(a => a.addr)
}

/** Wraps `cm`'s openConnection and openStream with the rules above (idempotent per manager). */
export function installPeerDialRules (cm: DialingConnectionManager, deps: PeerDialDeps): void {
  if (peerDialStats.has(cm)) return
  const stats: PeerDialStats = { reused: 0, refused: 0, privateTried: 0, privateFailed: 0, directRetries: 0, directFound: 0 }
  peerDialStats.set(cm, stats)
  const openConnection = cm.openConnection.bind(cm)
  const openStream = cm.openStream.bind(cm)
  const own = deps.ownNetworks ?? ownInterfaces
  const failed = deps.failed ?? new FailedAddrs()
  const certified = deps.certified ?? new PeerAddrs()
  const tryMs = deps.privateTryMs ?? PRIVATE_TRY_MS
  const retry = new DirectRetries(deps.now ?? Date.now, deps.directRetryMs ?? DIRECT_RETRY_MS)

  /** The plan for a peer (`relayedOnly`: one with a relayed address, else undefined: libp2p dials it as it would). */
  const planFor = async (peer: PeerId, relayedOnly = true): Promise<Plan | undefined> => {
    const found = await deps.addressesOf(peer).catch(() => undefined)
    if (found === undefined) return undefined
    if (relayedOnly && !found.some(a => isCircuit(typeof a === 'string' ? a : a.addr))) return undefined
    const id = peer.toString()
    const all = ownFirst(found, id, certified)
    const circuit = all.filter(isCircuit)
    const nets = own()
    const known = all.filter(a => !isCircuit(a) && !failed.has(a, id))
    const tryFirst = known.filter(a => privateElsewhere(a, nets))
    return { circuit, tryFirst, direct: known.filter(a => !tryFirst.includes(a)), skipped: all.length - circuit.length - known.length }
  }

  /**
   * Dials by plan: each private address elsewhere (at most MAX_PRIVATE_TRIES) for PRIVATE_TRY_MS of
   * its own, in turn (libp2p dials a list one address at a time: one budget for all would be spent
   * on the first; review17 L6), a failure remembered; then the other direct ones and (withCircuits)
   * the relayed ones.
   */
  const dialByPlan = async (peer: PeerId, p: Plan, options: Opts, withCircuits: boolean, protocols?: string | string[]): Promise<Connection> => {
    const id = peer.toString()
    // while a background attempt is in flight, libp2p joins these dials to it: a short try would be
    // cut before its address was dialled and wrongly remembered as failed (skipped this time)
    const tryFirst = retry.inFlight(id) ? [] : p.tryFirst
    for (const a of tryFirst.slice(0, MAX_PRIVATE_TRIES)) {
      stats.privateTried++
      try {
        return await openConnection([withPeer(a, id)], { ...options, signal: AbortSignal.any([AbortSignal.timeout(tryMs), ...(options.signal !== undefined ? [options.signal] : [])]) })
      } catch (err) {
        if (options.signal?.aborted === true) throw err
        stats.privateFailed++
        failed.add(a, id)
      }
    }
    const rest = [...p.direct, ...(withCircuits ? p.circuit : [])]
    if (rest.length === 0) {
      stats.refused++
      throw new LimitedConnectionError(`peer ${id} answered on no direct address from here, and ${[protocols ?? '?'].flat().join(', ')} does not run on its relayed connections`)
    }
    return await openConnection(rest.map(a => withPeer(a, id)), options)
  }

  /**
   * A background attempt on the peer's direct addresses (public, or private in a network we are
   * on; not failed from here) when the pair stayed relayed: never awaited by the stream that
   * started it, one per peer at a time, at most once per peer per DIRECT_RETRY_MS. A connection it
   * opens is unlimited: libp2p hands it to the later streams (findExistingConnection).
   */
  const retryDirect = (peer: PeerId, limited: Connection[]): void => {
    const id = peer.toString()
    const oldest = Math.min(...limited.map(c => c.timeline.open))
    if (!retry.due(id, oldest)) return
    retry.start(id)
    void planFor(peer, false).then(async p => {
      if (p === undefined || p.direct.length === 0) return
      stats.directRetries++
      const conn = await openConnection(p.direct.slice(0, MAX_DIRECT_RETRY_ADDRS).map(a => withPeer(a, id)), { signal: AbortSignal.timeout(DIRECT_RETRY_DIAL_MS), priority: DIRECT_RETRY_PRIORITY })
      // (a dial by peer id in flight answers a joined dial: that may be a relayed one)
      if (!isLimited(conn)) stats.directFound++
    }).catch(() => {}).finally(() => { retry.end(id) })
  }

  cm.openConnection = async (target, options = {}) => {
    if (!isPeerId(target) || options.force === true || cm.getConnections(target).some(c => isOpen(c) && !isLimited(c))) return await openConnection(target, options)
    const p = await planFor(target)
    // libp2p joins a dial by peer id to the background attempt in flight: one naming no circuit would get its outcome only
    if (p === undefined || (p.tryFirst.length === 0 && p.skipped === 0 && !retry.inFlight(target.toString()))) return await openConnection(target, options)
    return await dialByPlan(target, p, options, true)
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
      retryDirect(target, limited)
      return await conn.newStream(protocols, options)
    }
    const p = await planFor(target)
    if (p === undefined) return await openStream(target, protocols, options)
    const conn = await dialByPlan(target, p, options, false, protocols)
    return await conn.newStream(protocols, options)
  }
}
