// The training transport's outbound streams: one per remote peer, on the connection the route
// book picks (a relayed one checked against what the relay still allows before every frame), or
// the overlay while a connection is slow to open; used-up relayed connections are closed.
import type { Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import type { Uint8ArrayList } from 'uint8arraylist'
import { FramedStream } from '../net/framed.js'
import { RouteBook, RouteLimitError, limitBytesLeft, wireBytes, REPLY_ALLOWANCE_BYTES } from '../net/routes/index.js'
import type { Host } from '../net/host.js'
import type { OverlayRoute, TrainingRouting } from './overlay-route.js'
import type { TrainingRouteLog } from './route-log.js'
import { closeIfRedundant, closeWhenIdle, RELAYED_MAX_AGE_MS } from './relayed.js'
import { ALLREDUCE_PROTOCOL, TRAINING_MAX_FRAME, type TrainingHost } from './transport-types.js'

const log = logger('dbc:training:transport')

/**
 * A relayed connection with room for fewer frames than this (each with its reply allowance) gets
 * its successor opened ahead of need; at ~100 KB frames that is ~1 MB of a 4 MiB budget, a few
 * rounds: time for a dial through the relay on a loaded host.
 */
export const PREOPEN_NEEDS = 8
/** A relayed connection this close to RELAYED_MAX_AGE_MS gets its successor opened ahead of need too. */
export const PREOPEN_AGE_MS = 30_000

/** A frame waiting to be written, and the routing of its job. */
export interface Queued { bytes: Uint8Array | Uint8ArrayList, mode: TrainingRouting }

/** What is waiting for one peer, and the stream it goes on. */
export interface Outbox {
  queue: Queued[]
  /** Bytes of the frames in `queue` (kept with it: dequeue / clearQueue). */
  queuedBytes: number
  pumping: boolean
  framed?: FramedStream
  /** The connection `framed` runs on (a relayed one is checked before every frame). */
  conn?: Connection
  /** The peer's last job here ended while frames were still queued: released once they are out (TrainingTransport.release). */
  releaseWhenDrained?: boolean
  /** When its queue last drained (the sweep releases outboxes of peers in no job here, idle OUTBOX_IDLE_MS). */
  idleSince?: number
}

/**
 * An outbox of a peer no running job here trains with (a refusal sent to a coordinator, a frame
 * after a job's end), idle this long, is released: else each peer ever sent a frame kept one.
 */
export const OUTBOX_IDLE_MS = 60_000

export interface PeerStreamsInit {
  host: TrainingHost
  routeLog: TrainingRouteLog
  overlay: OverlayRoute
  overlayWaitMs: number
  started: () => boolean
  /** Whether `o` is still the outbox for `to` (a stream that opens late is adopted only then). */
  current: (to: string, o: Outbox) => boolean
}

export class PeerStreams {
  readonly host: TrainingHost
  private readonly routeLog: TrainingRouteLog
  private readonly overlay: OverlayRoute
  private readonly overlayWaitMs: number
  /** Picks connections that fit (relay limits, DCUtR on first contact); absent for a host without dial/events (test doubles). */
  private routeBook: RouteBook | undefined
  /** Peers a fresh relayed connection is being opened to ahead of need (preopen). */
  private readonly preopening = new Set<string>()
  /** Peers released while a spare to them was being dialled (closeOpened): the spare closes when it opens, if still released then. */
  private readonly releasedWhileDialling = new Map<string, () => boolean>()
  /** Relayed connections the all-reduce opened (spares, fresh ones, first dials) or wrote on, per peer: closed once idle at the peer's release. */
  private readonly opened = new Map<string, Set<Connection>>()

  constructor (private readonly d: PeerStreamsInit) {
    this.host = d.host
    this.routeLog = d.routeLog
    this.overlay = d.overlay
    this.overlayWaitMs = d.overlayWaitMs
  }

  private get started (): boolean { return this.d.started() }

  start (): void {
    const h = this.host as Partial<Host>
    // no wait for DCUtR on first contact (it would stall a round): frames start on the relay and
    // move to a direct connection as soon as one appears (fits())
    if (typeof h.dial === 'function' && typeof h.addEventListener === 'function') this.routeBook = new RouteBook(this.host as Host, { upgradeWaitMs: 0 })
  }

  close (): void {
    this.routeBook?.close()
    this.routeBook = undefined
    this.opened.clear()
  }

  /** Remembers a relayed connection we opened to `peer` (closed ones are dropped from the set as it grows). */
  private noteOpened (peer: string, conn: Connection, before?: readonly Connection[]): void {
    if (conn.limits === undefined || before?.includes(conn) === true) return
    let set = this.opened.get(peer)
    if (set === undefined) { set = new Set(); this.opened.set(peer, set) }
    for (const c of set) if (c.status !== 'open') set.delete(c)
    set.add(conn)
  }

  /**
   * The peer is released (no running job here sends it frames): the relayed connections the
   * all-reduce opened or wrote on are closed once nothing runs on them (at once, or when the last
   * stream on one closes: the peer's, another protocol's, the overlay's). Returns how many closed
   * at once.
   */
  closeOpened (peer: string, stillReleased: () => boolean = () => true): number {
    const set = this.opened.get(peer)
    this.opened.delete(peer)
    // a spare still being dialled is closed when it opens (preopen), unless the peer is in a job again by then
    if (this.preopening.has(peer)) {
      if (this.releasedWhileDialling.size >= 1024) this.releasedWhileDialling.delete(this.releasedWhileDialling.keys().next().value as string)
      this.releasedWhileDialling.set(peer, stillReleased)
    }
    let closed = 0
    for (const c of set ?? []) if (closeWhenIdle(c, stillReleased)) closed++
    if (closed > 0) log('%d relayed connection(s) the all-reduce opened to %s closed: no job here trains with it now', closed, peer)
    return closed
  }

  /** The background try that leaves the overlay: a connection through the route book (none: the next frame tries). */
  async connect (peer: string, signal: AbortSignal): Promise<void> {
    if (this.routeBook === undefined) return
    const id = peerIdFromString(peer)
    const before = this.host.getConnections(id)
    this.noteOpened(peer, await this.routeBook.connectionFor(id, 0, { signal }), before)
    log('a connection to %s opened: frames leave the overlay', peer)
  }

  /**
   * A stream to `to`, or undefined when the connection is slow to open and the overlay is there:
   * frames take the overlay until it opens (then the outbox adopts its stream) or fails (then the
   * overlay stays the route for a while). Without an overlay: the stream, however long it takes.
   */
  async openOrWait (to: string, o: Outbox, len: number, mode: TrainingRouting): Promise<{ stream: Stream, conn?: Connection } | undefined> {
    const attempt = this.openStream(to, len, o.conn)
    if (this.overlay.link(mode) === undefined) return await attempt
    let timer: ReturnType<typeof setTimeout> | undefined
    const slow = new Promise<'slow'>(resolve => { timer = setTimeout(() => { resolve('slow') }, this.overlayWaitMs) })
    try {
      const first = await Promise.race([attempt, slow])
      if (first !== 'slow') return first
    } finally {
      clearTimeout(timer)
    }
    this.overlay.fallbacks.dialing(to)
    attempt.then(opened => {
      this.overlay.fallbacks.connected(to)
      // nothing left to send (the frames went over the overlay meanwhile): a stream kept open with no
      // frame on it would cost this node the peer's idle deadline (IDLE_DEADLINE); the next frame
      // opens one on the connection that is there now
      if (!this.started || o.framed !== undefined || o.queue.length === 0 || !this.d.current(to, o)) { opened.stream.abort(new Error('not needed')); return }
      log('the connection to %s opened: frames leave the overlay', to)
      this.adopt(to, o, opened, len)
    }, (err: Error) => {
      if (err instanceof RouteLimitError) { this.overlay.fallbacks.connected(to); return }
      this.overlay.fallbacks.fellBack(to, `no direct or relayed connection opened (${err.message.slice(0, 160)})`)
    })
    return undefined
  }

  /** The outbox's stream from now on (and relayed connections to the peer left used up and empty are closed). */
  adopt (to: string, o: Outbox, opened: { stream: Stream, conn?: Connection }, len: number): FramedStream {
    const framed = o.framed = new FramedStream(opened.stream, { maxFrameBytes: TRAINING_MAX_FRAME })
    o.conn = opened.conn
    if (opened.conn !== undefined) this.noteOpened(to, opened.conn)
    // a fresh relayed connection has its whole budget: the used-up ones go
    const spent = wireBytes(len + Math.max(REPLY_ALLOWANCE_BYTES, len))
    for (const c of this.host.getConnections(peerIdFromString(to))) if (c !== opened.conn) closeIfRedundant(this.host, c, undefined, spent)
    return framed
  }

  /**
   * Whether the next frame may go on the current stream: always on a direct connection; on a
   * relayed one while no direct connection to the peer exists (DCUtR, or the peer dialled us),
   * the relay still allows the frame plus a part of the same size coming the other way (the
   * relay counts both directions), and the connection is not near the relay's duration limit.
   */
  fits (o: Outbox, len: number): boolean {
    const c = o.conn
    if (c === undefined) return true
    if (c.status !== 'open') return false
    const left = limitBytesLeft(c)
    if (left === undefined) return true
    if (this.host.getConnections(c.remotePeer).some(x => x.status === 'open' && x.limits === undefined)) return false
    const age = Date.now() - c.timeline.open
    if (age > RELAYED_MAX_AGE_MS) return false
    const need = wireBytes(len + Math.max(REPLY_ALLOWANCE_BYTES, len))
    if (left >= need && (left < need * PREOPEN_NEEDS || age > RELAYED_MAX_AGE_MS - PREOPEN_AGE_MS)) this.preopen(c, need)
    return left >= need
  }

  /**
   * Opens the fresh relayed connection that will replace `used` while `used` still has room (a
   * dial through a relay takes a few hundred ms on a loaded host: frames waiting for it missed
   * their round). Once per peer at a time; not when another relayed connection to the peer
   * already has more room than `used`. The next frame that does not fit `used`
   * finds it (the route book takes the relayed connection with the most room).
   */
  private preopen (used: Connection, need: number): void {
    const book = this.routeBook
    const peer = used.remotePeer
    const id = peer.toString()
    if (book === undefined || this.preopening.has(id) || !this.started) return
    // one spare: a relayed connection to the peer with more room than `used` (ours, or one the
    // peer or another protocol opened), or an idle one (no slices on it yet) with room for a
    // frame. The idle case matters with a small relay budget (below PREOPEN_NEEDS frames): `used`
    // may itself be nearly full, and a fresh spare of the same relay never has more room than
    // it plus a frame, so each frame dialled one more (review16c)
    const room = (limitBytesLeft(used) ?? 0) + need
    const young = (x: Connection): boolean => Date.now() - x.timeline.open <= RELAYED_MAX_AGE_MS - PREOPEN_AGE_MS
    const spare = (x: Connection): boolean => {
      const left = limitBytesLeft(x) ?? Infinity
      return left >= room || (left >= need && !x.streams.some(s => s.protocol === ALLREDUCE_PROTOCOL))
    }
    if (this.host.getConnections(peer).some(x => x !== used && x.status === 'open' && spare(x) && young(x))) return
    this.preopening.add(id)
    log('the relayed connection %s to %s has %s bytes left: a fresh one opens ahead of need', used.id, id, String(limitBytesLeft(used)))
    book.freshRelayed(peer, used, AbortSignal.timeout(15_000)).then(
      conn => {
        const released = this.releasedWhileDialling.get(id)
        // the job ended while it was dialled (both members preopen as the last round's slices fill
        // their connections): it would otherwise hold a relay circuit, idle, until the relay's limit
        if (released?.() === true) { closeWhenIdle(conn, released); log('a fresh relayed connection %s to %s opened after the job ended: closed', conn.id, id); return }
        this.noteOpened(id, conn)
        log('a fresh relayed connection %s to %s is ready (%s bytes)', conn.id, id, String(limitBytesLeft(conn)))
      },
      (err: Error) => { log('no fresh relayed connection to %s ahead of need: %s', id, err.message) }
    ).finally(() => { this.preopening.delete(id); this.releasedWhileDialling.delete(id) })
  }

  /** Ends the current stream after what was written on it (the peer reads it to the end). */
  retire (o: Outbox): void {
    const f = o.framed
    const conn = o.conn
    o.framed = undefined
    if (f !== undefined) log('the stream to %s on connection %s retires (%s bytes left)', conn?.remotePeer.toString(), conn?.id, conn !== undefined ? String(limitBytesLeft(conn)) : '?')
    void f?.close({ signal: AbortSignal.timeout(10_000) }).catch((err: Error) => { f.abort(err) }).finally(() => { if (conn !== undefined) closeIfRedundant(this.host, conn, f?.stream) })
  }

  /**
   * A stream to `to` that can carry a frame of `len` bytes: through the route book when the host
   * has one (an unlimited connection first; a relayed one with room for it; a fresh relayed one
   * when the relay's budget or age is used up), else on any open connection or a dial. One
   * retry: a connection the remote just opened to us may not be registered yet.
   */
  async openStream (to: string, len: number, previous?: Connection): Promise<{ stream: Stream, conn?: Connection }> {
    const peer = peerIdFromString(to)
    for (let attempt = 0; ; attempt++) {
      const signal = AbortSignal.timeout(15_000)
      try {
        if (this.routeBook !== undefined) {
          const before = this.host.getConnections(peer)
          let conn = await this.routeBook.connectionFor(peer, len, { signal, replyBytes: Math.max(REPLY_ALLOWANCE_BYTES, len) })
          if (conn.limits !== undefined && Date.now() - conn.timeline.open > RELAYED_MAX_AGE_MS) conn = await this.routeBook.freshRelayed(peer, conn, signal)
          this.noteOpened(to, conn, before)
          const stream = await conn.newStream(ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true })
          log('a stream for a frame of %d bytes to %s opened on connection %s (%s, %s bytes left, previous %s)', len, to, conn.id, conn.remoteAddr.toString(), String(limitBytesLeft(conn)), previous?.id)
          this.routeLog.noteConnection(to, this.routeBook.classify(conn), conn, previous)
          return { stream, conn }
        }
        const conn = this.host.getConnections(peer).find(c => c.status === 'open')
        if (conn !== undefined) return { stream: await conn.newStream(ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true }), conn }
        return { stream: await this.host.dialProtocol(peer, ALLREDUCE_PROTOCOL, { signal, runOnLimitedConnection: true }) }
      } catch (err) {
        if (err instanceof RouteLimitError || attempt >= 1 || !this.started) throw err
        await new Promise(resolve => setTimeout(resolve, 250))
      }
    }
  }
}

/** Removes the queue's first frame. */
export function dequeue (o: Outbox): void {
  const q = o.queue.shift()
  if (q !== undefined) o.queuedBytes -= q.bytes.byteLength
}

/** Drops everything queued; returns how many frames that was. */
export function clearQueue (o: Outbox): number {
  const n = o.queue.length
  o.queue.length = 0
  o.queuedBytes = 0
  return n
}
