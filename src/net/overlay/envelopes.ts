// /dbc/relay/1.0.0: sealed envelopes over k paths. This adapter pumps the core machines
// (MultipathDelivery for sending, ReceiveWindow + PeerScoreBook for receiving and relaying) with
// real streams and timers; all decisions are theirs. One long-lived stream per neighbour carries
// RelayRequest frames one way and Ack frames the other, matched by (message id, path id).
import type { Libp2p, PeerId, Stream, Connection } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { FramedStream } from '../framed.js'
import { encodeFrame } from '../../wire/frame.js'
import { guardedHandle, wasHandled, type GuardedStreamInit } from '../guard/index.js'
import { dbc } from '../../wire/gen/wire.js'
import $protobuf from 'protobufjs/minimal.js'
import { decodeMessage } from '../../wire/decode.js'
import { DbcError, WireError } from '../../errors.js'
import { sealEnvelope, signEnvelope, openEnvelope, checkEnvelope, encodeEnvelope, staticAckKey, DEFAULT_MAX_ENVELOPE_BYTES, type EnvelopeRejection } from '../../crypto/envelope.js'
import { relayRequestFrameBytes, ackFrameBytes } from '../../crypto/envelope-codec.js'
import { signAck, verifyAck, macAck, verifyAckMac, ACK_MAC_BYTES, AckStatus } from '../../crypto/ack.js'
import { MultipathDelivery, choosePaths, ReceiveWindow, decideRelay, PeerScoreBook, type AckStatus as CoreAckStatus, type DeliveryEvent, type SendCommand, type RelayCandidate, type Offence } from '../../core/routing/index.js'
import { cellIdOf, predictOneWayMs, type LatLon } from '../../core/geo/index.js'
import { bytesEqual } from '../../core/identity/index.js'
import { RequestChannel } from './channel.js'
import { RelayFailureBook } from './relay-failures.js'
import { RandomPool } from '../../crypto/random.js'
import { peerIdTextOf, peerIdBytesOf } from '../peer-ids.js'

const Reader = $protobuf.Reader

export const RELAY_PROTOCOL = '/dbc/relay/1.0.0'
/** Copies one inbound stream may have in processing at once (a peer can not queue unbounded work). */
export const MAX_IN_FLIGHT_PER_STREAM = 256
/** How long the paths chosen for a recipient are reused, and for how many recipients at most. */
const PATH_CACHE_MS = 1000
const PATH_CACHE_MAX = 1024

export interface ReceivedMessage {
  sender: string
  messageId: string
  contentType: number
  sequence: number
  payload: Uint8Array
  /** Neighbour that handed us this copy (the sender itself, or a relay). */
  via: string
}

export interface DeliveryReceipt {
  messageId: string
  pathId: number
  via?: string
  latencyMs: number
  attempts: number
}

export interface EnvelopeServiceInit {
  /** Our Ed25519 secret key (32-byte seed or libp2p's 64-byte raw form). */
  secretKey: Uint8Array
  onMessage?: (msg: ReceivedMessage) => void
  /** Sees every envelope this node relays for others (tracing; it holds only ciphertext). */
  onRelay?: (envelope: dbc.envelope.v1.Envelope, from: string) => void
  /** Called when a neighbour is charged; `disconnect` means its score crossed the threshold. */
  onPenalty?: (peer: string, offence: Offence, score: number, disconnect: boolean) => void
  /** Where a peer is (declared location), for predicted latency and cell diversity of relays. */
  locate?: (peer: string) => LatLon | undefined
  /** Our own location. */
  location?: LatLon
  /** Peers that may relay for us; default: every peer we are connected to. */
  relayCandidates?: () => string[]
  scores?: PeerScoreBook<string>
  k?: number
  hopLimit?: number
  ackTimeoutMs?: number
  maxAttempts?: number
  ttlMs?: number
  maxEnvelopeBytes?: number
  /**
   * Key mode of envelopes we seal: 'static' (default; per-peer-pair key, cached) or 'ephemeral'
   * (fresh X25519 key per envelope: forward secrecy, ~2 scalar multiplications more per message).
   */
  mode?: 'static' | 'ephemeral'
  /**
   * Accept a static-mode envelope whose AEAD tag verifies without checking the Ed25519 signature:
   * only the sender and we hold the pair key, so the tag already proves the sender (what is lost:
   * if OUR key leaks, others could be impersonated to us). Default true. A static-mode copy the
   * sender hands us itself carries no signature (unless it sets signDirect); relayed copies are
   * signed. false: verify signatures, and take unsigned copies only from their sender's own
   * connection (an unsigned relayed copy, e.g. from an older sender, is refused, no one charged).
   */
  trustAead?: boolean
  /**
   * Sign every envelope, also the static-mode copies we hand to the recipient ourselves (default
   * false: those go unsigned; relayed copies are always signed, see src/crypto/envelope.ts). Turn
   * on where the recipient must be able to show a third party that we sent it; ~35-50 us a message.
   */
  signDirect?: boolean
  /** Close connections to peers whose score crosses the threshold (default true). */
  disconnectBadPeers?: boolean
  random?: (out: Uint8Array) => Uint8Array
  now?: () => number
}

export interface SendOptions {
  k?: number
  /** Use the direct path when possible (default true); false forces relays only. */
  direct?: boolean
  contentType?: number
  ttlMs?: number
  sequence?: number
  signal?: AbortSignal
}

/**
 * A message of ours in flight: its encoded bytes for the direct copy, and (made when its first
 * relayed copy goes out) the signed bytes every relayed copy carries.
 */
interface Outgoing { envelope: dbc.envelope.v1.Envelope, bytes: Uint8Array, relayBytes?: Uint8Array, recipient: Uint8Array, resolve: (r: DeliveryReceipt) => void, reject: (e: Error) => void }

type Host = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections' | 'hangUp'>

/** Lower-case hex (native; the same text as core/identity's toHex, several times faster on the hot path). */
const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')
const ackKey = (messageId: Uint8Array | string, pathId: number): string => `${typeof messageId === 'string' ? messageId : toHex(messageId)}/${pathId}`

const STATUS: Record<number, CoreAckStatus> = { [AckStatus.OK]: 'ok', [AckStatus.DUPLICATE]: 'duplicate', [AckStatus.REJECTED]: 'rejected', [AckStatus.UNREACHABLE]: 'unreachable' }

export class EnvelopeService {
  readonly scores: PeerScoreBook<string>
  readonly stats = { sent: 0, delivered: 0, failed: 0, received: 0, duplicates: 0, relayed: 0, rejected: 0, relayedJunk: 0 }
  private readonly delivery: MultipathDelivery<string>
  private readonly window = new ReceiveWindow<string>()
  private readonly relayWindow = new ReceiveWindow<string>()
  /** Relayed copies that failed to open, per (relay, sender): not charged to the relay (see relay-failures.ts). */
  readonly relayFailures = new RelayFailureBook()
  private readonly channels = new Map<string, RequestChannel<dbc.envelope.v1.Ack>>()
  private readonly outgoing = new Map<string, Outgoing>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly selfBytes: Uint8Array
  private readonly self: string
  private readonly maxBytes: number
  private readonly now: () => number
  private readonly random: (out: Uint8Array) => Uint8Array
  private sequence = 0
  private started = false
  private pumping = false
  private pumpAgain = false
  /** Relayed copies waiting to be signed and written in the next turn (see pump). */
  private deferred: Array<SendCommand<string>> = []
  private readonly pathCache = new Map<string, { at: number, paths: ReturnType<typeof choosePaths<string>> }>()
  private readonly peerIds = new Map<string, PeerId>()
  /** Applications that consume envelopes addressed to us (besides init.onMessage): src/net/overlay/task-envelopes.ts. */
  private readonly listeners = new Set<(msg: ReceivedMessage) => void>()

  constructor (private readonly host: Host, private readonly init: EnvelopeServiceInit) {
    this.scores = init.scores ?? new PeerScoreBook<string>()
    this.delivery = new MultipathDelivery<string>({ ackTimeoutMs: init.ackTimeoutMs ?? 2000, maxAttempts: init.maxAttempts ?? 4, hopLimit: init.hopLimit ?? 2 })
    this.selfBytes = host.peerId.toMultihash().bytes
    this.self = host.peerId.toString()
    this.maxBytes = init.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES
    this.now = init.now ?? Date.now
    this.random = init.random ?? new RandomPool().fill
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await guardedHandle(this.host, RELAY_PROTOCOL, (stream, connection, g) => { void this.serve(stream, connection, g.open) }, { maxInboundStreams: 32, runOnLimitedConnection: true, expectsRequest: true })
  }

  /** Copies we sent or forwarded whose ack has not come back yet (late copies of delivered messages too). */
  get copiesInFlight (): number {
    let n = 0
    for (const c of this.channels.values()) n += c.pendingCount
    return n
  }

  /** Delivers every new message addressed to us to `fn` too; returns the unsubscribe. */
  subscribe (fn: (msg: ReceivedMessage) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.host.unhandle(RELAY_PROTOCOL)
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    for (const c of this.channels.values()) c.close()
    this.channels.clear()
    for (const o of this.outgoing.values()) o.reject(new DbcError('OVERLAY_STOPPED', 'the overlay stopped before the message was delivered'))
    this.outgoing.clear()
  }

  /** Seals `payload` to `recipient` and delivers it over k paths; resolves on the first signed ack. */
  send (recipient: PeerId | string, payload: Uint8Array, opts: SendOptions = {}): Promise<DeliveryReceipt> {
    // not an async function (one promise and one turn less per message); errors still arrive as rejections
    try { return this.sendNow(recipient, payload, opts) } catch (err) { return Promise.reject(err) }
  }

  private sendNow (recipient: PeerId | string, payload: Uint8Array, opts: SendOptions): Promise<DeliveryReceipt> {
    const toBytes = typeof recipient === 'string' ? peerIdBytesOf(recipient) : recipient.toMultihash().bytes
    // the canonical text form (a caller's string may be spelled differently): relay filters compare it
    const toStr = peerIdTextOf(toBytes)
    const now = this.now()
    const expiresAt = now + (opts.ttlMs ?? this.init.ttlMs ?? 30_000)
    // static mode: unsigned until a copy first goes to a relay (see launch and src/crypto/envelope.ts)
    const mode = this.init.mode ?? 'static'
    const env = sealEnvelope({ senderSecretKey: this.init.secretKey, sender: this.selfBytes, recipient: toBytes, payload, expiresAt, sequence: opts.sequence ?? ++this.sequence, contentType: opts.contentType ?? dbc.envelope.v1.ContentType.CONTENT_RAW, random: this.random, mode, sign: mode !== 'static' || this.init.signDirect === true })
    const bytes = encodeEnvelope(env)
    if (bytes.length > this.maxBytes) throw new DbcError('ENVELOPE_TOO_LARGE', `sealed message of ${bytes.length} bytes exceeds the ${this.maxBytes} byte limit`, { hint: 'send bulk data on a data stream and put only its hash in the message' })
    const id = toHex(env.messageId)
    const { paths, spares } = this.choosePaths(toStr, opts)
    if (paths.length === 0) throw new DbcError('NO_PATH', `no path to ${toStr}: not connected and no relay candidates`, { hint: 'connect to the peer or to peers that can reach it first' })
    const result = new Promise<DeliveryReceipt>((resolve, reject) => {
      this.outgoing.set(id, { envelope: env, bytes, recipient: env.recipient, resolve, reject })
    })
    if (opts.signal !== undefined) {
      opts.signal.addEventListener('abort', () => {
        const o = this.outgoing.get(id)
        if (o !== undefined) { this.outgoing.delete(id); o.reject(opts.signal?.reason ?? new Error('aborted')) }
      }, { once: true })
    }
    if (!this.delivery.send(now, { id, recipient: toStr, expiresAt }, paths, spares)) {
      this.outgoing.delete(id)
      throw new DbcError('OVERLAY_BUSY', 'too many messages in flight', { hint: 'wait for earlier sends to finish' })
    }
    this.stats.sent++
    this.pump()
    return result
  }

  /**
   * Paths for a message to `recipient`, reused for a second per (recipient, k, direct): building
   * them walks and sorts every connection as a relay candidate, which a chatty peer pair would
   * otherwise pay on every message (a node with a hundred connections: a hundred predictions and
   * a sort per send). Path objects are never mutated, so messages can share them.
   */
  private choosePaths (recipient: string, opts: SendOptions): ReturnType<typeof choosePaths<string>> {
    const k = opts.k ?? this.init.k ?? 2
    const useDirect = opts.direct !== false
    const key = `${recipient}\n${k}\n${useDirect ? 1 : 0}`
    const now = this.now()
    const cached = this.pathCache.get(key)
    if (cached !== undefined && now - cached.at < PATH_CACHE_MS) return cached.paths
    const loc = this.init.location
    const recLoc = this.init.locate?.(recipient)
    const candidates: Array<RelayCandidate<string>> = []
    const pool = this.init.relayCandidates?.() ?? [...new Set(this.host.getConnections().map(c => c.remotePeer.toString()))]
    for (const peer of pool) {
      if (peer === recipient || peer === this.self || this.scores.isBanned(now, peer)) continue
      const rl = this.init.locate?.(peer)
      const predictedMs = loc !== undefined && rl !== undefined && recLoc !== undefined ? predictOneWayMs(loc, rl) + predictOneWayMs(rl, recLoc) : 50
      candidates.push({ peer, cell: rl !== undefined ? cellIdOf(rl.lat, rl.lon, 3) : `unknown:${peer}`, predictedMs })
    }
    const direct = useDirect ? { predictedMs: loc !== undefined && recLoc !== undefined ? predictOneWayMs(loc, recLoc) : 0 } : undefined
    const paths = choosePaths({ k, direct, candidates, exclude: [recipient] })
    this.pathCache.delete(key)
    if (this.pathCache.size >= PATH_CACHE_MAX) this.pathCache.delete(this.pathCache.keys().next().value as string)
    this.pathCache.set(key, { at: now, paths })
    return paths
  }

  /**
   * Drains the delivery machine: starts copies, settles promises, re-arms the timer. Not
   * re-entrant (a copy that fails at once calls back into it): a nested call makes the running
   * one go round again.
   */
  private pump (): void {
    if (this.pumping) { this.pumpAgain = true; return }
    this.pumping = true
    try {
      do {
        this.pumpAgain = false
        const cmds = this.delivery.pollOutbound()
        // Direct copies first. A relayed copy that still needs its signature (~50 us of Ed25519,
        // once per message) waits for the next turn when a direct copy was just written: the
        // stream flushes that copy after this turn, so signing now would delay it all the same
        // (and a message the direct ack settles first is never signed at all).
        let wroteDirect = false
        for (const cmd of cmds) if (cmd.via === undefined) { this.launch(cmd); wroteDirect = true }
        for (const cmd of cmds) {
          if (cmd.via === undefined) continue
          if (wroteDirect && this.unsignedForRelay(cmd.id)) this.defer(cmd)
          else this.launch(cmd)
        }
        for (const ev of this.delivery.pollEvents()) this.settle(ev)
      } while (this.pumpAgain)
    } finally {
      this.pumping = false
    }
    // One ticking timer while anything is in flight, not one per message: deadlines are checked
    // every `tickMs` (a quarter of the ack timeout, at most 250 ms), so arming costs nothing per send.
    if (this.timer === undefined && this.delivery.inFlight > 0 && this.started) {
      this.timer = setTimeout(() => { this.timer = undefined; this.delivery.tick(this.now()); this.pump() }, this.tickMs)
      this.timer.unref?.()
    }
  }

  /** Whether message `id`'s relayed copies are still to be signed. */
  private unsignedForRelay (id: string): boolean {
    const o = this.outgoing.get(id)
    return o !== undefined && o.relayBytes === undefined && o.envelope.signature.length === 0
  }

  private defer (cmd: SendCommand<string>): void {
    this.deferred.push(cmd)
    if (this.deferred.length > 1) return
    setImmediate(() => {
      const cmds = this.deferred
      this.deferred = []
      // a message settled meanwhile (its direct ack came back, or it was aborted) is skipped by launch
      for (const c of cmds) this.launch(c)
    })
  }

  /**
   * Hands one copy to its neighbour; its ack (or failure) comes back to onCopyAck. The direct
   * copy of a static-mode envelope goes unsigned (its AEAD tag and our connection prove it); a
   * relayed copy is signed first, once per message, so relays of any version and recipients that
   * verify signatures (trustAead: false) can check it (see src/crypto/envelope.ts).
   */
  private launch (cmd: SendCommand<string>): void {
    const o = this.outgoing.get(cmd.id)
    if (o === undefined) return
    const neighbour = cmd.via ?? cmd.recipient
    let bytes = o.bytes
    if (cmd.via !== undefined) {
      // (signEnvelope fills the decoded envelope's signature; o.bytes, the direct copy's, stay unsigned)
      if (o.relayBytes === undefined) o.relayBytes = o.envelope.signature.length === 0 ? encodeEnvelope(signEnvelope(o.envelope, this.init.secretKey)) : o.bytes
      bytes = o.relayBytes
    }
    const frame = relayRequestFrameBytes(bytes, cmd.hopsLeft, cmd.pathId)
    this.channel(neighbour).sendFramed(ackKey(cmd.id, cmd.pathId), frame, this.delivery.ackTimeoutMs * 2, (err, ack) => { this.onCopyAck(o.envelope, cmd, neighbour, err, ack) })
  }

  private onCopyAck (envelope: dbc.envelope.v1.Envelope, cmd: SendCommand<string>, neighbour: string, err: Error | undefined, ack: dbc.envelope.v1.Ack | undefined): void {
    if (err !== undefined || ack === undefined) {
      this.delivery.pathFailed(this.now(), cmd.id, cmd.pathId)
    } else {
      const status = STATUS[ack.status] ?? 'rejected'
      // An ack straight from the recipient is authenticated by the connection; through a relay it must be signed.
      if ((status === 'ok' || status === 'duplicate') && cmd.via !== undefined && !this.ackAuthentic(envelope, ack)) {
        // a relay claiming a delivery it can not prove
        this.penalize(neighbour, 'forged')
        this.delivery.pathFailed(this.now(), cmd.id, cmd.pathId)
      } else {
        this.delivery.handleAck(this.now(), cmd.id, cmd.pathId, status, ack.reason)
      }
    }
    this.pump()
  }

  private get tickMs (): number {
    return Math.max(5, Math.min(250, Math.floor(this.delivery.ackTimeoutMs / 4)))
  }

  private settle (ev: DeliveryEvent<string>): void {
    const o = this.outgoing.get(ev.id)
    if (o === undefined) return
    this.outgoing.delete(ev.id)
    if (ev.type === 'delivered') {
      this.stats.delivered++
      const r: DeliveryReceipt = { messageId: ev.id, pathId: ev.pathId, latencyMs: ev.latencyMs, attempts: ev.attempts }
      if (ev.via !== undefined) r.via = ev.via
      o.resolve(r)
    } else {
      this.stats.failed++
      o.reject(new DbcError('DELIVERY_FAILED', `message ${ev.id} to ${ev.recipient} was not delivered: ${ev.reason}${ev.detail !== undefined ? ` (${ev.detail})` : ''}`, { hint: 'check that the recipient is online and reachable', data: { reason: ev.reason, attempts: ev.attempts } }))
    }
  }

  private channel (peer: string): RequestChannel<dbc.envelope.v1.Ack> {
    let c = this.channels.get(peer)
    if (c === undefined) {
      c = new RequestChannel(this.host, peerIdFromString(peer), {
        protocol: RELAY_PROTOCOL,
        maxFrameBytes: this.maxBytes + 64,
        decodeAck: frame => {
          const d = decodeMessage(dbc.envelope.v1.Ack, frame)
          return d.ok ? { key: ackKey(d.value.messageId, d.value.pathId), ack: d.value } : undefined
        }
      })
      this.channels.set(peer, c)
    }
    return c
  }

  /** Whether this node holds an open connection to `peer` (peer id bytes; false when they do not parse). */
  private connectedTo (peer: Uint8Array | null | undefined): boolean {
    try {
      return this.host.getConnections(this.peerIdOf(peerIdTextOf(peer ?? new Uint8Array(0)))).some(c => c.status === 'open')
    } catch { return false }
  }

  /** PeerId objects by text, cached: a relay looks the recipient up on every copy it forwards. */
  private peerIdOf (text: string): PeerId {
    let id = this.peerIds.get(text)
    if (id === undefined) {
      id = peerIdFromString(text)
      if (this.peerIds.size >= PATH_CACHE_MAX) this.peerIds.delete(this.peerIds.keys().next().value as string)
      this.peerIds.set(text, id)
    }
    return id
  }

  /** Sends one RelayRequest frame to a neighbour and waits for its ack (also used by tests to send crafted frames). */
  async request (neighbour: string, key: string, frame: Uint8Array, timeoutMs = this.delivery.ackTimeoutMs * 2): Promise<dbc.envelope.v1.Ack> {
    return await this.channel(neighbour).request(key, frame, timeoutMs)
  }

  private penalize (peer: string, offence: Offence): void {
    const { score, disconnect } = this.scores.penalize(this.now(), peer, offence)
    this.init.onPenalty?.(peer, offence, score, disconnect)
    if (disconnect) this.pathCache.clear() // a banned relay leaves the cached paths at once
    if (disconnect && (this.init.disconnectBadPeers ?? true)) {
      this.channels.get(peer)?.close()
      this.channels.delete(peer)
      void this.host.hangUp(peerIdFromString(peer)).catch(() => {})
    }
  }

  /** Inbound stream: one RelayRequest per frame, each answered with an Ack frame. */
  private async serve (stream: Stream, connection: Connection, open: (init: GuardedStreamInit) => FramedStream): Promise<void> {
    const from = connection.remotePeer.toString()
    if (this.scores.isBanned(this.now(), from)) { stream.abort(new Error('peer score below threshold')); return }
    const framed = open({ maxFrameBytes: this.maxBytes + 64 })
    let inFlight = 0
    try {
      for (;;) {
        const frame = await framed.read()
        if (frame === undefined) break
        // Bounded work per stream: beyond MAX_IN_FLIGHT_PER_STREAM the copy is refused (not charged).
        if (inFlight >= MAX_IN_FLIGHT_PER_STREAM) {
          void framed.write(dbc.envelope.v1.Ack.encode({ ...peekIds(frame), status: AckStatus.UNREACHABLE, reason: 'busy' }).finish()).catch(() => {})
          continue
        }
        // a copy for us (or one refused) is answered in this turn; only a forwarded one waits
        let answer: dbc.envelope.v1.Ack | Promise<dbc.envelope.v1.Ack>
        try { answer = this.handleFrame(from, frame) } catch { continue }
        if (answer instanceof Promise) {
          inFlight++
          answer.then(ack => { writeAck(framed, ack) }, () => {}).finally(() => { inFlight-- })
        } else {
          writeAck(framed, answer)
        }
      }
      await framed.close()
    } catch (err) {
      if (err instanceof WireError && !wasHandled(err)) this.penalize(from, err.code === 'FRAME_TOO_LARGE' ? 'oversized' : 'malformed')
      framed.abort(err as Error)
    }
  }

  private reject (from: string, messageId: Uint8Array, pathId: number, reason: EnvelopeRejection | 'replayed' | 'hop-limit' | 'muted', offence?: Offence): dbc.envelope.v1.Ack {
    this.stats.rejected++
    if (offence !== undefined) this.penalize(from, offence)
    return dbc.envelope.v1.Ack.create({ messageId, pathId, status: AckStatus.REJECTED, reason })
  }

  /**
   * Acks to the sender itself ride its authenticated connection; acks through a relay are
   * authenticated: MACed with the pair's ack key for a static-mode envelope (only sender and we
   * hold it), signed for an ephemeral one.
   */
  private ack (fromSender: boolean, env: dbc.envelope.v1.Envelope, pathId: number, status: number): dbc.envelope.v1.Ack {
    const id = env.messageId
    if (fromSender) return dbc.envelope.v1.Ack.create({ messageId: id, pathId, status })
    const key = env.ephemeralKey.length === 0 ? staticAckKey(this.init.secretKey, env.sender, env.recipient, false) : undefined
    return key !== undefined ? macAck(key, id, pathId, status) : signAck(this.init.secretKey, id, pathId, status)
  }

  /** Whether an OK/DUPLICATE ack that came back through a relay was made by the recipient. */
  private ackAuthentic (sent: dbc.envelope.v1.Envelope, ack: dbc.envelope.v1.Ack): boolean {
    if (sent.ephemeralKey.length === 0 && ack.signature.length === ACK_MAC_BYTES) {
      const key = staticAckKey(this.init.secretKey, sent.sender, sent.recipient, true)
      return key !== undefined && verifyAckMac(key, ack)
    }
    return verifyAck(sent.recipient, ack)
  }

  /** The answer to one RelayRequest frame: at once, or (when forwarding) once the next hop answers. */
  private handleFrame (from: string, frame: Uint8Array): dbc.envelope.v1.Ack | Promise<dbc.envelope.v1.Ack> {
    const now = this.now()
    const req = parseRelayRequest(frame)
    if (req === undefined) return this.reject(from, new Uint8Array(0), 0, 'malformed', 'malformed')
    const env = req.envelope
    const id = env.messageId
    const key = `${toHex(env.sender)}/${toHex(id)}`
    const via = `${from}/${req.pathId}`
    // compare bytes: the sender field is unvalidated until the envelope's shape is checked
    const deliveredBySender = bytesEqual(env.sender, peerIdBytesOf(from))
    // what to do with the copy is the core's decision (the simulator runs the same one), from real
    // facts: are we the recipient, how many hops are left, do we hold a connection to the recipient
    // (looked up only when we are not the recipient: the decision does not read it then)
    const recipientIsSelf = bytesEqual(env.recipient, this.selfBytes)
    const decision = decideRelay({ recipientIsSelf, hopsLeft: req.hopsLeft, recipientReachable: !recipientIsSelf && this.connectedTo(env.recipient) })
    if (decision === 'deliver') {
      const senderHex = deliveredBySender ? '' : toHex(env.sender)
      if (!deliveredBySender) {
        // we verify signatures and a relay handed over an unsigned copy (an older sender's, or
        // one a relay stripped): refused, no one charged (neither can be told apart from honest)
        if (env.signature.length === 0 && this.init.trustAead === false) return this.reject(from, id, req.pathId, 'forged')
        if (this.relayFailures.muted(now, from, senderHex)) return this.reject(from, id, req.pathId, 'muted')
      }
      const opened = openEnvelope(env, { now, maxBytes: this.maxBytes, knownSize: req.envelopeBytes.length, recipient: this.selfBytes, recipientSecretKey: this.init.secretKey, verifySignature: this.init.trustAead === false, deliveredBySender })
      if (!opened.ok) {
        // through a relay, a copy that does not open or verify is not the relay's doing (it forwards
        // a sender's bytes unchecked, by design) and does not prove its sender: counted per pair
        if (!deliveredBySender && (opened.reason === 'forged' || opened.reason === 'undecryptable')) {
          this.stats.relayedJunk++
          this.relayFailures.fail(now, from, senderHex)
          return this.reject(from, id, req.pathId, opened.reason)
        }
        return this.reject(from, id, req.pathId, opened.reason, opened.reason)
      }
      const sender = peerIdTextOf(env.sender)
      const verdict = this.window.check(now, key, env.expiresAt, via)
      if (verdict === 'replayed') return this.reject(from, id, req.pathId, 'replayed', 'replayed')
      if (verdict === 'new') {
        this.stats.received++
        this.scores.reward(now, from, 0.1)
        const msg: ReceivedMessage = { sender, messageId: toHex(id), contentType: opened.contentType, sequence: opened.sequence, payload: opened.payload, via: from }
        this.init.onMessage?.(msg)
        for (const l of this.listeners) { try { l(msg) } catch {} }
        return this.ack(deliveredBySender, env, req.pathId, AckStatus.OK)
      }
      this.stats.duplicates++
      return this.ack(deliveredBySender, env, req.pathId, AckStatus.DUPLICATE)
    }
    // Relaying: the recipient is someone else. Relays check size, signature and expiry; the
    // signature is taken as read when the sender itself handed the copy over (its connection
    // proves the same; see checkEnvelope's deliveredBySender), but it must be there.
    const checked = checkEnvelope(env, { now, maxBytes: this.maxBytes, knownSize: req.envelopeBytes.length, deliveredBySender })
    if (!checked.ok) {
      // an unsigned copy from its own sender (a version that relayed copies unsigned): refused, not charged
      const offence = deliveredBySender && checked.reason === 'forged' && env.signature.length === 0 ? undefined : checked.reason
      return this.reject(from, id, req.pathId, checked.reason, offence)
    }
    if (this.relayWindow.check(now, `${key}/${req.pathId}`, env.expiresAt, from) === 'replayed') return this.reject(from, id, req.pathId, 'replayed', 'replayed')
    const recipient = peerIdTextOf(env.recipient)
    if (decision === 'hop-limit') return this.reject(from, id, req.pathId, 'hop-limit')
    // a relay forwards only over a connection it already holds: it does not dial on a stranger's behalf
    if (decision === 'unreachable') return dbc.envelope.v1.Ack.create({ messageId: id, pathId: req.pathId, status: AckStatus.UNREACHABLE, reason: 'the relay holds no connection to the recipient' })
    this.stats.relayed++
    try { this.init.onRelay?.(env, from) } catch (err) {
      return dbc.envelope.v1.Ack.create({ messageId: id, pathId: req.pathId, status: AckStatus.UNREACHABLE, reason: (err as Error).message })
    }
    // the envelope's own bytes go on as they came (not re-encoded from the decoded copy)
    const fwd = relayRequestFrameBytes(req.envelopeBytes, req.hopsLeft - 1, req.pathId)
    return new Promise(resolve => {
      this.channel(recipient).sendFramed(ackKey(id, req.pathId), fwd, this.delivery.ackTimeoutMs, (err, ack) => {
        resolve(err !== undefined || ack === undefined ? dbc.envelope.v1.Ack.create({ messageId: id, pathId: req.pathId, status: AckStatus.UNREACHABLE, reason: err?.message ?? 'no ack' }) : ack)
      })
    })
  }
}

/** Writes an ack frame on an inbound relay stream, in this turn; a stream already gone drops it (the sender times the copy out). */
function writeAck (framed: FramedStream, ack: dbc.envelope.v1.Ack): void {
  try { framed.stream.send(ackFrameBytes(ack) ?? encodeFrame(dbc.envelope.v1.Ack.encode(ack).finish())) } catch {}
}

/**
 * A RelayRequest frame read field by field, keeping the envelope's own bytes (a relay forwards
 * them unchanged); undefined when it does not decode or carries no envelope. Same field rules as
 * the generated decoder (the last occurrence of a field wins; unknown fields are skipped).
 */
function parseRelayRequest (frame: Uint8Array): { envelope: dbc.envelope.v1.Envelope, envelopeBytes: Uint8Array, hopsLeft: number, pathId: number } | undefined {
  try {
    const r = Reader.create(frame)
    let envelopeBytes: Uint8Array | undefined
    let hopsLeft = 0
    let pathId = 0
    while (r.pos < r.len) {
      const tag = r.uint32()
      const field = tag >>> 3
      if (field === 1 && (tag & 7) === 2) envelopeBytes = r.bytes()
      else if (field === 2 && (tag & 7) === 0) hopsLeft = r.uint32()
      else if (field === 3 && (tag & 7) === 0) pathId = r.uint32()
      else r.skipType(tag & 7)
    }
    if (envelopeBytes === undefined) return undefined
    return { envelope: dbc.envelope.v1.Envelope.decode(envelopeBytes), envelopeBytes, hopsLeft, pathId }
  } catch { return undefined }
}

/** Message and path id of a RelayRequest frame, to answer one we will not process. */
function peekIds (frame: Uint8Array): { messageId: Uint8Array, pathId: number } {
  try {
    const r = dbc.envelope.v1.RelayRequest.decode(frame)
    return { messageId: r.envelope?.messageId ?? new Uint8Array(0), pathId: r.pathId }
  } catch { return { messageId: new Uint8Array(0), pathId: 0 } }
}
