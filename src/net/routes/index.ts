// The route to each provider, as the submitter uses it: a direct connection, a hole-punched
// one (a direct connection that replaced a relayed one: DCUtR), or relayed through a circuit
// relay v2 peer (a limited connection: the relay caps its bytes and its duration). The book
// picks the connection for each request (the unlimited one first, after giving DCUtR a chance
// on first contact), checks that a message fits what a limited connection has left, and keeps
// the facts that decided each route for `dbc job explain`.
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DbcError } from '../../errors.js'
import { webrtcAdmissionOf, relayedDialerOf, type Host } from '../host.js'
import type { WebRTCAdmission } from '../../core/routing/webrtc-admission.js'
import type { RouteKind } from '../../core/scheduler/route-cost.js'
import type { dbc } from '../../wire/gen/wire.js'
import type { TaskEnvelopes } from '../overlay/task-envelopes.js'
import type { OverlayOnlyPeers } from './private-peers.js'
import { isWebRTC } from '../nat-addr.js'
import { isRelayed, relayOf, FreshRelayedDials } from './circuit.js'
import { WebRTCUpgrade, type WebRTCAttempt } from './webrtc-upgrade.js'
export { WEBRTC_DIAL_MS } from './webrtc-upgrade.js'

export type { RouteKind } from '../../core/scheduler/route-cost.js'

/** How a job's messages reach providers: a connection else the overlay (auto), connections only (direct), the overlay only (overlay). */
export type RoutingMode = 'auto' | 'direct' | 'overlay'
export const ROUTING_MODES: readonly RoutingMode[] = ['auto', 'direct', 'overlay']

export interface RouteInfo {
  kind: RouteKind
  /** Peer id of the relay, for a relayed route. */
  relay?: string
  /** Overlay relays the sealed envelopes went through (the acks' `via`), for an overlay route. */
  relays?: string[]
  /** The connection's remote address (a /p2p-circuit address when relayed; none for the overlay). */
  remoteAddr: string
  /** Who opened the connection: inbound is the provider dialling back (a DCUtR upgrade or a reverse dial). */
  direction: 'inbound' | 'outbound'
  /** Bytes the relay still lets through this connection (both directions together), when limited. */
  limitBytesLeft?: number
  /** Why this route: the facts, in words. */
  facts: string
  /** When it was last used (ms since the epoch). */
  at: number
  /** Requests sent to this provider on each kind of route so far (the share by route). */
  uses?: Partial<Record<RouteKind, number>>
}

/** A message that cannot fit through the relayed connection it must take (typed, never a silent hang). */
export class RouteLimitError extends DbcError {
  override name = 'RouteLimitError'
  constructor (detail: string) {
    super('ROUTE_LIMIT', detail, { hint: 'the provider is reachable only through a relay, which caps the bytes of each relayed connection; the task runs elsewhere, or use smaller inputs/results' })
  }
}

/**
 * The overlay route failed on our side or on the way (no path, no reply in time, every chunk's
 * paths failed, the overlay stopped or is saturated): the copy is lost, not failed by the
 * provider (the runner tells it by name). `code` stays the route layer's.
 */
export class RouteLostError extends DbcError {
  override name = 'RouteLostError'
  constructor (cause: DbcError) {
    super(cause.code, cause.message, { hint: cause.hint ?? 'the message did not get through the overlay; the copy runs again', cause })
  }
}

/** Route-layer codes of the overlay (src/net/overlay): the provider did not answer, it did not refuse. */
const OVERLAY_LOST_CODES = new Set(['OVERLAY_TIMEOUT', 'OVERLAY_STOPPED', 'OVERLAY_BUSY', 'NO_PATH', 'DELIVERY_FAILED'])

/** `err` as a RouteLostError when the overlay lost the message (a provider's typed answer stays as it is). */
export function asRouteLost (err: unknown): unknown {
  if (!(err instanceof DbcError) || err instanceof RouteLostError || !OVERLAY_LOST_CODES.has(err.code)) return err
  // an error reply from the provider is its answer, except its messenger's own OVERLAY_BUSY (a full stream cap)
  if ((err as { remote?: boolean }).remote === true && err.code !== 'OVERLAY_BUSY') return err
  return new RouteLostError(err)
}

/** Allowance for an answer whose size the asker cannot know (an offer, a small result). */
export const REPLY_ALLOWANCE_BYTES = 16 * 1024
/** How long the first contact with a provider reachable only through a relay waits for DCUtR. */
export const DEFAULT_UPGRADE_WAIT_MS = 3000

/** Bytes a connection's relay still allows, or undefined for an unlimited (direct) connection. */
export function limitBytesLeft (conn: Pick<Connection, 'limits'>): number | undefined {
  const b = conn.limits?.bytes
  return b === undefined ? undefined : Number(b)
}

/** What `bytes` of payload cost on the wire of a relayed connection (noise tags, yamux headers, framing). */
export function wireBytes (bytes: number): number {
  return Math.ceil(bytes * 1.05) + 1024
}

export { isRelayed, relayOf } from './circuit.js'

export interface RouteBookInit {
  upgradeWaitMs?: number
  now?: () => number
  /** The overlay's task application (sealed envelopes), when the node runs the overlay. */
  overlay?: () => TaskEnvelopes | undefined
  /**
   * Whether a message must take the overlay node-wide (config `routing.mode: overlay`): its peer
   * turns private for every job. A job's own `routing: overlay` is `jobRouting`.
   */
  forceOverlay?: (peer: string, msg: dbc.task.v1.ITaskMessage) => boolean
  /**
   * The routing of the job a message belongs to (its manifest's `routing`, else the node's
   * default), or undefined for a message that names no job of this node. 'overlay' takes the
   * overlay for that job only: a provider another job reaches on a connection keeps it;
   * 'direct' never falls back to the overlay.
   */
  jobRouting?: (msg: dbc.task.v1.ITaskMessage) => RoutingMode | undefined
  /** Peers reached through the overlay only (the node's connection gater refuses them). */
  privatePeers?: OverlayOnlyPeers
  /** Fall back to the overlay when neither a direct nor a relayed connection opens (default true; config routing.mode direct: false), for messages whose job does not say. */
  fallback?: boolean | (() => boolean)
  /** Peers whose connection this node needs (its bootstrap relays): never made private, so they run no forced-overlay work. */
  keepConnected?: (peer: string) => boolean
  /** The bound on WebRTC attempts our own take (default: the host's, src/net/host.ts). */
  webrtcAdmission?: WebRTCAdmission
  /** Dials a circuit address outside libp2p's dial queue (default: the host's, relayedDialerOf). */
  relayedDial?: (ma: Multiaddr, signal: AbortSignal) => Promise<Connection>
}

/** How long a provider that no connection reached stays on the overlay before a connection is tried again. */
export const FALLBACK_STICKY_MS = 60_000

export class RouteBook {
  private readonly host: Host
  private readonly upgradeWaitMs: number
  private readonly now: () => number
  private readonly routes = new Map<string, RouteInfo>()
  /** When a relayed connection to each peer was first seen: a later direct one is the upgrade. */
  private readonly relayedSince = new Map<string, number>()
  /** Bytes a fresh relayed connection through each relay allowed (its reservation's data limit). */
  private readonly relayBudget = new Map<string, number>()
  private readonly waited = new Set<string>()
  /** Fresh relayed connections being dialled (freshRelayed). */
  private readonly fresh: FreshRelayedDials
  /** WebRTC attempts on first relayed contact between two NATed nodes (webrtc-upgrade.ts). */
  private readonly webrtc: WebRTCUpgrade
  /** Providers on the overlay because no connection opened: since when, and why. */
  private readonly fellBack = new Map<string, { at: number, why: string }>()
  /** Escrows of leases that went over a forced overlay: their vouchers take it too. */
  private readonly overlayEscrows = new Set<string>()
  private readonly init: RouteBookInit
  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const c = evt.detail
    if (!isRelayed(c.remoteAddr)) return
    const peer = c.remotePeer.toString()
    // stamped with when its relayed stream opened (its timeline), not when this event is handled: a
    // loaded node may handle it only after the peer's upgrade (DCUtR) opened a direct socket, whose
    // own timeline then reads earlier and it was taken for a direct connection (found under a CPU hog)
    const opened = c.timeline?.open
    if (!this.relayedSince.has(peer)) this.relayedSince.set(peer, Math.min(this.now(), typeof opened === 'number' ? opened : Infinity))
    const left = limitBytesLeft(c); const relay = relayOf(c.remoteAddr)
    if (left !== undefined && relay !== undefined) this.relayBudget.set(relay, Math.max(left, this.relayBudget.get(relay) ?? 0))
  }

  constructor (host: Host, init: RouteBookInit = {}) {
    this.host = host
    this.upgradeWaitMs = init.upgradeWaitMs ?? DEFAULT_UPGRADE_WAIT_MS
    this.now = init.now ?? Date.now
    this.init = init
    this.webrtc = new WebRTCUpgrade(host, this.now, init.webrtcAdmission ?? webrtcAdmissionOf(host))
    this.fresh = new FreshRelayedDials(host, init.relayedDial ?? relayedDialerOf(host))
    host.addEventListener('connection:open', this.onOpen)
  }

  close (): void { this.host.removeEventListener('connection:open', this.onOpen) }

  /** The route last used to each provider. */
  get (peer: string): RouteInfo | undefined { return this.routes.get(peer) }
  all (): Record<string, RouteInfo> { return Object.fromEntries(this.routes) }

  /** What kind of route `conn` is, and the facts that say so. */
  classify (conn: Connection): RouteInfo {
    const peer = conn.remotePeer.toString()
    const remoteAddr = conn.remoteAddr.toString()
    const base = { remoteAddr, direction: conn.direction, at: this.now() }
    if (isRelayed(remoteAddr)) {
      const relay = relayOf(remoteAddr)
      const left = limitBytesLeft(conn)
      const waited = this.webrtc.relayedFacts(peer, this.upgradeWaitMs) ?? (this.waited.has(peer) ? `; no direct connection after ${this.upgradeWaitMs} ms of DCUtR` : '')
      return { kind: 'relayed', ...(relay !== undefined ? { relay } : {}), ...base, ...(left !== undefined ? { limitBytesLeft: left } : {}), facts: `limited connection through relay ${relay ?? '?'}${left !== undefined ? ` (${left} bytes left)` : ''}${waited}` }
    }
    if (isWebRTC(remoteAddr)) {
      const relay = relayOf(remoteAddr)
      const ms = this.webrtc.dialMs(conn)
      return { kind: 'hole-punched', ...base, facts: `WebRTC connection (ICE through both NATs, UDP)${relay !== undefined ? `, signalled through relay ${relay}` : ''}; ${conn.direction === 'inbound' ? 'the provider dialled it' : 'we dialled it'}${ms !== undefined ? ` (open ${ms} ms after our attempt began)` : ''}` }
    }
    const since = this.relayedSince.get(peer)
    const opened = conn.timeline.open
    if (since !== undefined && opened >= since - 1) {
      return { kind: 'hole-punched', ...base, facts: conn.direction === 'inbound'
        ? 'direct connection the provider opened through its NAT after a relayed one (a DCUtR upgrade, or it dialled us itself)'
        : 'direct connection we opened after a relayed one (DCUtR hole punch)' }
    }
    return { kind: 'direct', ...base, facts: conn.direction === 'inbound' ? `direct connection the provider opened to us, from ${remoteAddr}` : `direct connection we opened to ${remoteAddr}` }
  }

  private best (peer: PeerId, needBytes: number): Connection | undefined {
    let limited: Connection | undefined
    for (const c of this.host.getConnections(peer)) {
      if (c.status !== 'open') continue
      const left = limitBytesLeft(c)
      if (left === undefined) return c
      if (left >= needBytes && (limited === undefined || left > (limitBytesLeft(limited) ?? 0))) limited = c
    }
    return limited
  }

  /**
   * A relayed connection to `peer` (after first contact) without room for `need`, where a fresh
   * relayed connection would have it: connectionFor replaces it with one (freshRelayed). A dial
   * by peer id instead never returns a limited connection and waits on libp2p's queue (seconds);
   * a message no relayed connection can carry still dials (the peer may be reachable directly).
   */
  private usedUp (peer: PeerId, need: number): Connection | undefined {
    if (!this.waited.has(peer.toString())) return undefined
    const c = this.best(peer, 0)
    const relay = c === undefined ? undefined : relayOf(c.remoteAddr)
    const budget = relay === undefined ? undefined : this.relayBudget.get(relay)
    return c !== undefined && (budget === undefined || budget >= need) ? c : undefined
  }

  /**
   * A connection to `peer` that can carry `payloadBytes` out and a reply of `replyBytes`: an
   * unlimited one when there is one; on first contact through a relay, after DCUtR had
   * `upgradeWaitMs` to replace it; else a relayed one with room left, a fresh relayed one when
   * the current is used up, or RouteLimitError when not even a fresh one could carry it.
   */
  async connectionFor (peer: PeerId, payloadBytes: number, opts: { signal?: AbortSignal, replyBytes?: number } = {}): Promise<Connection> {
    const need = wireBytes(payloadBytes + (opts.replyBytes ?? REPLY_ALLOWANCE_BYTES))
    const id = peer.toString()
    let conn = this.best(peer, need) ?? this.usedUp(peer, need)
    if (conn === undefined || (conn.limits !== undefined && (!this.waited.has(id) || this.webrtc.retryDue(id)))) {
      conn ??= await this.host.dial(peer, { signal: opts.signal })
      // first contact through a relay: the provider starts DCUtR once identify ran; give it time.
      // A later contact tries again only when our WebRTC attempt was turned away by the bound
      // (busy, review s11 M5): one request takes the retry, the others keep the relayed route
      const first = !this.waited.has(id)
      if (conn.limits !== undefined && (first || this.webrtc.takeRetry(id))) {
        this.waited.add(id)
        // two NATed peers: no DCUtR upgrade can come (no public side); WebRTC punches through both.
        // A retry turned away again stops waiting at once; a first contact turned away still waits
        // (the peer's own attempt to us may be the one in flight)
        const attempt = this.webrtc.tryOnce(peer)
        conn = (await this.awaitUpgrade(peer, opts.signal, attempt, !first)) ?? conn
      }
    }
    const left = limitBytesLeft(conn)
    if (left !== undefined && left < need) {
      const relay = relayOf(conn.remoteAddr)
      const budget = relay === undefined ? undefined : this.relayBudget.get(relay)
      if (budget !== undefined && budget < need) {
        throw new RouteLimitError(`a message of ${payloadBytes} bytes (with its reply, ~${need} on the wire) does not fit a relayed connection through ${relay ?? '?'}, which allows ${budget} bytes`)
      }
      // the relay counts bytes per relayed connection: a new one starts with a full budget
      conn = await this.freshRelayed(peer, conn, opts.signal)
      const fresh = limitBytesLeft(conn)
      if (fresh !== undefined && fresh < need) throw new RouteLimitError(`a message of ${payloadBytes} bytes (~${need} on the wire) does not fit a fresh relayed connection (${fresh} bytes allowed)`)
    }
    return conn
  }

  /** A new relayed connection to `peer`, through `used`'s relay first (circuit.ts, FreshRelayedDials: one dial per peer at a time). */
  async freshRelayed (peer: PeerId, used: Connection | undefined, signal?: AbortSignal): Promise<Connection> {
    return await this.fresh.open(peer, used, signal)
  }

  /**
   * An unlimited connection to `peer` within `upgradeWaitMs`; stops early when our WebRTC attempt
   * failed (two NATs: no DCUtR upgrade can come either), and with `stopWhenBusy` when the bound
   * turned it away.
   */
  private async awaitUpgrade (peer: PeerId, signal?: AbortSignal, attempt?: Promise<WebRTCAttempt>, stopWhenBusy = false): Promise<Connection | undefined> {
    const deadline = this.now() + this.upgradeWaitMs
    let failed = false
    void attempt?.then(r => { failed = r === 'failed' || (stopWhenBusy && r === 'busy') })
    while (this.now() < deadline && signal?.aborted !== true && !failed) {
      const direct = this.host.getConnections(peer).find(c => c.status === 'open' && c.limits === undefined)
      if (direct !== undefined) return direct
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    return undefined
  }

  /** Opens `protocol` on a connection that fits (see connectionFor) and records the route taken. */
  async open (peer: PeerId, protocol: string, payloadBytes: number, opts: { signal?: AbortSignal, replyBytes?: number } = {}): Promise<{ stream: Stream, route: RouteInfo }> {
    return await this.openOn(await this.connectionFor(peer, payloadBytes, opts), peer, protocol, opts.signal)
  }

  private async openOn (conn: Connection, peer: PeerId, protocol: string, signal?: AbortSignal): Promise<{ stream: Stream, route: RouteInfo }> {
    const stream = await conn.newStream(protocol, { signal, runOnLimitedConnection: true })
    return { stream, route: this.record(peer.toString(), this.classify(conn)) }
  }

  private record (peer: string, route: RouteInfo): RouteInfo {
    const uses = { ...(this.routes.get(peer)?.uses ?? {}) }
    uses[route.kind] = (uses[route.kind] ?? 0) + 1
    route.uses = uses
    this.routes.set(peer, route)
    return route
  }

  /**
   * The overlay's task application when `msg` to `peer` must take it (a private peer; a forced
   * route makes the peer private) or recently fell back to it; undefined: use a connection. A
   * forced route with no overlay running fails rather than open a connection.
   */
  overlayFor (peer: string, msg: dbc.task.v1.ITaskMessage): { overlay: TaskEnvelopes, why: string } | undefined {
    const overlay = this.init.overlay?.()
    const escrow = msg.voucher?.escrowId
    const priv = this.init.privatePeers
    const nodeForced = this.init.forceOverlay?.(peer, msg) === true
    const job = this.init.jobRouting?.(msg)
    const jobForced = job === 'overlay' || (escrow != null && escrow.length > 0 && this.overlayEscrows.has(hex(escrow)))
    // a job that allows connections takes one to a provider that only overlay-only jobs made private
    // (unless the node forces the overlay): the provider leaves the private set, those jobs keep the overlay
    if (!nodeForced && !jobForced && job !== undefined) priv?.release(peer)
    const forced = nodeForced || jobForced || priv?.has(peer) === true
    if (forced) {
      if (overlay === undefined) throw new DbcError('NO_OVERLAY', `routing: overlay is asked for ${peer}, but this node runs no overlay`, { hint: 'start the node with its overlay (the default daemon runs one)' })
      // a relay our envelopes go through cannot also be a provider we hold no connection with
      if (this.init.keepConnected?.(peer) === true) throw new DbcError('ROUTE_PRIVATE', `${peer} is one of this node's relays: it runs no work routed through the overlay`, { hint: 'routing: overlay places work on providers other than the node\'s bootstrap relays' })
      // private (the gater refuses it, an open connection closes): a provider this job leases or
      // the capability index named; any other peer asked for an offer (a DHT neighbour, a relay) keeps its connection;
      // a job's own overlay leaves alone a provider that a job allowing connections uses (only the node's config hangs it up)
      if (priv !== undefined && (msg.leaseRequest == null || priv.isMatch(peer))) {
        if (nodeForced) priv.add(peer); else priv.joinIfUnwanted(peer)
      }
      const paid = msg.lease?.payment?.chainJobId
      if (paid != null && paid.length > 0) {
        if (this.overlayEscrows.size >= 4096) this.overlayEscrows.delete(this.overlayEscrows.values().next().value as string)
        this.overlayEscrows.add(hex(paid))
      }
      const shared = !nodeForced && priv?.wantedDirect(peer) === true ? '; a job of this node that allows connections uses this provider too' : ''
      return { overlay, why: `routing: overlay (no connection between submitter and provider${shared})` }
    }
    const fb = this.fellBack.get(peer)
    if (overlay === undefined || fb === undefined || !this.fallsBack(msg)) return undefined
    if (this.now() - fb.at < FALLBACK_STICKY_MS) return { overlay, why: `fallback: ${fb.why}` }
    this.fellBack.delete(peer)
    return undefined
  }

  /** Whether `msg` may fall back to the overlay: its job's routing says (direct: never), else the book's `fallback`. */
  private fallsBack (msg: dbc.task.v1.ITaskMessage): boolean {
    const job = this.init.jobRouting?.(msg)
    if (job !== undefined) return job !== 'direct'
    const f = this.init.fallback
    return typeof f === 'function' ? f() : f !== false
  }

  /** Records a message that went over the overlay (through `relays`), for explain and the route shares. */
  recordOverlay (peer: string, relays: string[], why: string): RouteInfo {
    const all = [...new Set([...relays, ...(this.routes.get(peer)?.relays ?? [])])].slice(0, 8)
    return this.record(peer, { kind: 'overlay', relays: all, remoteAddr: '', direction: 'outbound', at: this.now(), facts: `sealed envelopes through overlay relays ${all.length > 0 ? all.join(', ') : '(none acked yet)'}; ${why}` })
  }

  /**
   * One task-protocol request and its answer: over the overlay when it must (or fell back to it),
   * else on a stream this book opens, handled by `overStream`. When no connection opens (neither
   * direct nor relayed), the overlay carries it instead (unless `fallback: false`).
   */
  async request (peer: PeerId, protocol: string, msg: dbc.task.v1.ITaskMessage, payloadBytes: number, signal: AbortSignal | undefined, overStream: (stream: Stream) => Promise<dbc.task.v1.TaskMessage>): Promise<dbc.task.v1.TaskMessage> {
    const id = peer.toString()
    const via = this.overlayFor(id, msg)
    if (via !== undefined) return await this.viaOverlay(via, id, msg, signal)
    // only a connection that cannot be had falls back (a refused stream on a live one is the provider's answer)
    let conn: Connection
    try {
      conn = await this.connectionFor(peer, payloadBytes, { signal })
    } catch (err) {
      const overlay = this.init.overlay?.()
      if (overlay === undefined || !this.fallsBack(msg) || signal?.aborted === true) throw err
      const why = `no direct or relayed connection opened (${(err as Error).message.slice(0, 160)})`
      this.fellBack.set(id, { at: this.now(), why })
      if (this.fellBack.size > 4096) this.fellBack.delete(this.fellBack.keys().next().value as string)
      return await this.viaOverlay({ overlay, why: `fallback: ${why}` }, id, msg, signal)
    }
    const { stream } = await this.openOn(conn, peer, protocol, signal)
    return await overStream(stream)
  }

  /** A lease over the overlay opened with `peer`: it stays private (not evicted) until `unpin`. */
  pin (peer: string): boolean { return this.init.privatePeers?.pin(peer) === true }
  unpin (peer: string): void { this.init.privatePeers?.unpin(peer) }

  private async viaOverlay (via: { overlay: TaskEnvelopes, why: string }, peer: string, msg: dbc.task.v1.ITaskMessage, signal?: AbortSignal): Promise<dbc.task.v1.TaskMessage> {
    let r
    try {
      r = await via.overlay.request(peer, msg, signal)
    } catch (err) {
      throw asRouteLost(err)
    }
    this.recordOverlay(peer, r.relays, via.why)
    return r.reply
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
