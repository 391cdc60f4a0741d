// /dbc/relay/1.0.0: sealed envelopes over k paths. This adapter pumps the core machines
// (MultipathDelivery for sending, ReceiveWindow + PeerScoreBook for receiving and relaying) with
// real streams and timers; all decisions are theirs. One long-lived stream per neighbour carries
// RelayRequest frames one way and Ack frames the other, matched by (message id, path id).
import type { Libp2p, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { guardedHandle } from '../guard/index.js'
import { dbc } from '../../wire/gen/wire.js'
import { DbcError } from '../../errors.js'
import { sealEnvelope, unsealedEnvelope, isUnsealed, signEnvelope, signEnvelopeAsync, encodeEnvelope, DEFAULT_MAX_ENVELOPE_BYTES } from '../../crypto/envelope.js'
import { relayRequestFrameBytes, relayRequestFrameOf, directFrameAround, setFrameIds } from '../../crypto/envelope-codec.js'
import { relayedSizeOf, sealedOf, settleOutgoing, ackAuthentic, type Outgoing } from './outgoing.js'
import { MultipathDelivery, PeerScoreBook, type DeliveryEvent, type SendCommand, type Offence } from '../../core/routing/index.js'
import type { RequestChannel, StreamTest } from './channel.js'
import type { RelayFailureBook } from './relay-failures.js'
import { RandomPool } from '../../crypto/random.js'
import { peerIdTextOf, peerIdBytesOf, peerIdObjectOf } from '../peer-ids.js'
import { RelayInbound, type EnvelopeStats } from './relay-inbound.js'
import { RELAY_PROTOCOL_UNSEALED, RELAY_PROTOCOLS, sealsEndToEnd } from './relay-protocols.js'
import { PathCache, buildPaths, type Paths } from './path-cache.js'
import { ackKey, relayChannel, STATUS } from './relay-frames.js'
import type { ReceivedMessage, DeliveryReceipt, EnvelopeServiceInit, SendOptions } from './envelope-types.js'

export { RELAY_PROTOCOL, RELAY_PROTOCOL_UNSEALED, sealsEndToEnd } from './relay-protocols.js'
export { MAX_IN_FLIGHT_PER_STREAM } from './relay-inbound.js'
export type { ReceivedMessage, DeliveryReceipt, EnvelopeServiceInit, SendOptions } from './envelope-types.js'

/** A stream that takes unsealed direct copies: /dbc/relay/1.1.0 on a connection that seals end to end. */
const takesUnsealed: StreamTest = (protocol, encryption) => protocol === RELAY_PROTOCOL_UNSEALED && sealsEndToEnd(encryption)

type Host = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections' | 'hangUp'>

export class EnvelopeService {
  readonly scores: PeerScoreBook<string>
  readonly stats: EnvelopeStats = { sent: 0, delivered: 0, failed: 0, received: 0, duplicates: 0, relayed: 0, rejected: 0, relayedJunk: 0, unsealedSent: 0, unsealedReceived: 0 }
  private readonly delivery: MultipathDelivery<string>
  /** Inbound RelayRequest frames: delivered to us, forwarded, or refused (relay-inbound.ts). */
  private readonly inbound: RelayInbound
  private readonly channels = new Map<string, RequestChannel<dbc.envelope.v1.Ack, number | string>>()
  private readonly outgoing = new Map<string, Outgoing>()
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly selfBytes: Uint8Array
  private readonly self: string
  private readonly maxBytes: number
  private readonly now: () => number
  private readonly random: (out: Uint8Array) => Uint8Array
  private sequence = 0
  private deliveryIds = 0
  private started = false
  private pumping = false
  private stopped = false
  /** Relayed copies waiting for their message's signature (signThenLaunch). */
  private awaitingSignature = 0
  private pumpAgain = false
  private readonly pathCache = new PathCache()
  /** The last recipient as the caller named it, and its bytes and canonical text (sendNow). */
  private lastTo: PeerId | string | undefined
  private lastToBytes: Uint8Array = new Uint8Array(0)
  private lastToText = ''
  /** Applications that consume envelopes addressed to us (besides init.onMessage): src/net/overlay/task-envelopes.ts. */
  private readonly listeners = new Set<(msg: ReceivedMessage) => void>()
  /** sealEnvelope's `place` for unsigned envelopes: lays out the direct copy's frame, left in placedFrame. */
  private readonly place: (e: dbc.envelope.v1.Envelope, sealedLength: number) => Uint8Array | undefined
  private placedFrame: Uint8Array | undefined

  constructor (private readonly host: Host, private readonly init: EnvelopeServiceInit) {
    this.scores = init.scores ?? new PeerScoreBook<string>()
    this.delivery = new MultipathDelivery<string>({ ackTimeoutMs: init.ackTimeoutMs ?? 2000, maxAttempts: init.maxAttempts ?? 4, hopLimit: init.hopLimit ?? 2 })
    this.selfBytes = host.peerId.toMultihash().bytes
    this.self = host.peerId.toString()
    this.maxBytes = init.maxEnvelopeBytes ?? DEFAULT_MAX_ENVELOPE_BYTES
    this.now = init.now ?? Date.now
    this.random = init.random ?? new RandomPool().fill
    this.place = (e, sealedLength) => {
      const f = directFrameAround(e, sealedLength)
      if (f === undefined) return undefined
      this.placedFrame = f.frame
      return f.ciphertext
    }
    const self = this
    this.inbound = new RelayInbound({
      init,
      selfBytes: this.selfBytes,
      maxBytes: this.maxBytes,
      ackTimeoutMs: this.delivery.ackTimeoutMs,
      scores: this.scores,
      stats: this.stats,
      now: this.now,
      penalize: (peer, offence) => { self.penalize(peer, offence) },
      connectedTo: peer => self.connectedTo(peer),
      forward: (peer, messageId, pathId, frame, timeoutMs, done) => { self.channel(peer).sendFramed(ackKey(messageId, pathId), frame, timeoutMs, done, undefined, messageId) },
      deliver: msg => {
        init.onMessage?.(msg)
        for (const l of self.listeners) { try { l(msg) } catch {} }
      }
    })
  }

  /** Relayed copies that failed to open, per (relay, sender): not charged to the relay (see relay-failures.ts). */
  get relayFailures (): RelayFailureBook { return this.inbound.relayFailures }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    this.stopped = false
    for (const protocol of RELAY_PROTOCOLS) {
      await guardedHandle(this.host, protocol, (stream, connection, g) => { this.inbound.serve(stream, connection, g.open) }, { maxInboundStreams: 32, runOnLimitedConnection: true, expectsRequest: true })
    }
  }

  /** Copies we sent or forwarded whose ack has not come back yet (late copies of delivered messages too). */
  get copiesInFlight (): number {
    let n = this.awaitingSignature
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
    this.stopped = true
    await this.host.unhandle(RELAY_PROTOCOLS)
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
    // the canonical text form (a caller's string may be spelled differently): relay filters compare
    // it; the last recipient's forms are kept (a chatty pair sends to the same one again and again)
    let toBytes: Uint8Array; let toStr: string
    if (recipient === this.lastTo) { toBytes = this.lastToBytes; toStr = this.lastToText } else {
      toBytes = typeof recipient === 'string' ? peerIdBytesOf(recipient) : recipient.toMultihash().bytes
      toStr = peerIdTextOf(toBytes)
      this.lastTo = recipient; this.lastToBytes = toBytes; this.lastToText = toStr
    }
    const now = this.now()
    const expiresAt = now + (opts.ttlMs ?? this.init.ttlMs ?? 30_000)
    // static mode: unsigned until a copy first goes to a relay (see launch and src/crypto/envelope.ts)
    const mode = this.init.mode ?? 'static'
    const sign = mode !== 'static' || this.init.signDirect === true
    // A direct copy to a recipient whose stream negotiated /dbc/relay/1.1.0 goes unsealed: that
    // connection encrypts end to end to it and proves us to it (src/crypto/envelope.ts); a relayed
    // copy of the same message is sealed when it goes (sealedOf). Before a first stream to the peer
    // is open (the first message to it) or to an older peer, the direct copy is sealed as before;
    // after an idle stream's reset the last stream's protocol stands (the copy is written only if
    // the new stream takes it, see launch).
    const ch = this.channels.get(toStr)
    const unsealed = !sign && this.init.sealDirect !== true && opts.direct !== false && ch !== undefined && takesUnsealed(ch.protocol, ch.encryption)
    // an unsigned sealed envelope is sealed straight into its direct copy's frame (no second buffer, no copy)
    // (the frame is never kept past this call, also when sealing throws after laying it out)
    let env: dbc.envelope.v1.Envelope
    let directFrame: Uint8Array | undefined
    const sequence = opts.sequence ?? ++this.sequence
    const contentType = opts.contentType ?? dbc.envelope.v1.ContentType.CONTENT_RAW
    if (unsealed) {
      env = unsealedEnvelope({ sender: this.selfBytes, recipient: toBytes, payload, expiresAt, sequence, contentType, random: this.random })
    } else {
      try {
        env = sealEnvelope({ senderSecretKey: this.init.secretKey, sender: this.selfBytes, recipient: toBytes, payload, expiresAt, sequence, contentType, random: this.random, mode, sign, place: sign ? undefined : this.place })
        directFrame = this.placedFrame
      } finally { this.placedFrame = undefined }
    }
    // the limit is the relayed copy's (sealed and signed), not the direct copy's as built: relays
    // and the recipient refuse a larger one as oversized and charge us for it (review16b)
    const size = relayedSizeOf(env)
    if (size > this.maxBytes) throw new DbcError('ENVELOPE_TOO_LARGE', `sealed message of ${size} bytes exceeds the ${this.maxBytes} byte limit`, { hint: 'send bulk data on a data stream and put only its hash in the message' })
    // the delivery machine's name for the message: a number of ours, not the id's hex (made only
    // if a receipt's messageId is read: outgoing.ts Receipt)
    const id = String(++this.deliveryIds)
    const { paths, spares } = this.choosePaths(toStr, opts)
    if (paths.length === 0) throw new DbcError('NO_PATH', `no path to ${toStr}: not connected and no relay candidates`, { hint: 'connect to the peer or to peers that can reach it first' })
    const result = new Promise<DeliveryReceipt>((resolve, reject) => {
      // (every field set, also those filled in later: one object shape for every message)
      this.outgoing.set(id, { envelope: env, sealed: undefined, directFrame, relayBytes: undefined, signing: undefined, recipient: env.recipient, resolve, reject })
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

  /** Paths for a message to `recipient`: the cached choice (path-cache.ts), else a new one. */
  private choosePaths (recipient: string, opts: SendOptions): Paths {
    const k = opts.k ?? this.init.k ?? 2
    const useDirect = opts.direct !== false
    const now = this.now()
    const cached = this.pathCache.get(recipient, k, useDirect, now)
    if (cached !== undefined) return cached
    const pool = this.init.relayCandidates?.() ?? [...new Set(this.host.getConnections().map(c => c.remotePeer.toString()))]
    const paths = buildPaths({ recipient, k, useDirect, self: this.self, pool, usable: peer => !this.scores.isBanned(now, peer), location: this.init.location, locate: this.init.locate })
    this.pathCache.set(recipient, k, useDirect, now, paths)
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
        // Direct copies first. A relayed copy that still needs its signature (~40 us of Ed25519,
        // once per message) is signed off the event loop when a direct copy was just written
        // (signAsync: libuv's thread pool), so the direct copy's ack is not held up behind the
        // signature (k = 2: it was what serialised the second copy); with nothing else in flight
        // it is signed here, at once.
        let wroteDirect = false
        for (const cmd of cmds) if (cmd.via === undefined) { this.launch(cmd); wroteDirect = true }
        for (const cmd of cmds) {
          if (cmd.via === undefined) continue
          const o = wroteDirect ? this.outgoing.get(cmd.id) : undefined
          if (o !== undefined && o.relayBytes === undefined && (o.sealed ?? o.envelope).signature.length === 0) this.signThenLaunch(o, cmd)
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

  /** Signs `o`'s envelope off the event loop (once), then launches its waiting relayed copies. */
  private signThenLaunch (o: Outgoing, cmd: SendCommand<string>): void {
    this.awaitingSignature++
    if (o.signing !== undefined) { o.signing.push(cmd); return }
    o.signing = [cmd]
    // an unsealed message's relayed copy is sealed first (~4 us of ChaCha20-Poly1305, on this
    // thread): in the check phase, after the I/O that may bring the direct copy's ack, which it would
    // otherwise hold up (as the signature goes to the thread pool for the same reason)
    if (o.sealed === undefined && isUnsealed(o.envelope)) setImmediate(() => { this.signSealed(o) })
    else this.signSealed(o)
  }

  /** signThenLaunch's second half: signs the message's sealed envelope off the event loop, then launches the copies waiting for it. */
  private signSealed (o: Outgoing): void {
    signEnvelopeAsync(this.sealedOf(o), this.init.secretKey, (err) => {
      const cmds = o.signing ?? []
      o.signing = undefined
      this.awaitingSignature -= cmds.length
      if (err !== undefined) {
        // (a local fault, not a peer's) the copies fail and the delivery machine tries other paths
        for (const c of cmds) this.delivery.pathFailed(this.now(), c.id, c.pathId)
        this.pump()
        return
      }
      // the copies go even when the direct ack settled the message meanwhile: a k = 2 message is
      // committed to k paths when it is sent (on separate machines the ack takes longer than the
      // signature anyway); only a stopped service sends nothing more
      if (this.stopped) return
      for (const c of cmds) this.launch(c, o)
    })
  }

  /**
   * Hands one copy to its neighbour; its ack (or failure) comes back to onCopyAck. The direct
   * copy of a static-mode envelope goes unsigned (its AEAD tag and our connection prove it); a
   * relayed copy is signed first, once per message, so relays of any version and recipients that
   * verify signatures (trustAead: false) can check it (see src/crypto/envelope.ts).
   */
  private launch (cmd: SendCommand<string>, signed?: Outgoing): void {
    const o = signed ?? this.outgoing.get(cmd.id)
    if (o === undefined) return
    const neighbour = cmd.via ?? cmd.recipient
    const channel = this.channel(neighbour)
    let frame: Uint8Array
    let onlyOn: StreamTest | undefined
    if (cmd.via !== undefined) {
      // (signEnvelope fills the envelope's signature in place: a direct copy sent again after this carries it too, still valid)
      if (o.relayBytes === undefined) {
        const sealed = this.sealedOf(o)
        o.relayBytes = encodeEnvelope(sealed.signature.length === 0 ? signEnvelope(sealed, this.init.secretKey) : sealed)
      }
      frame = relayRequestFrameBytes(o.relayBytes, cmd.hopsLeft, cmd.pathId)
    } else if (o.directFrame !== undefined && setFrameIds(o.directFrame, cmd.hopsLeft, cmd.pathId)) {
      // (once: a frame handed to the stream is never written again)
      frame = o.directFrame
      o.directFrame = undefined
    } else if (isUnsealed(o.envelope) && takesUnsealed(channel.protocol, channel.encryption)) {
      // written only on a stream that (still) takes it: one (re-)opened to an older peer fails the
      // copy unsent, and the delivery machine's next try goes sealed (the branch below)
      frame = relayRequestFrameOf(o.envelope, cmd.hopsLeft, cmd.pathId)
      onlyOn = takesUnsealed
      this.stats.unsealedSent++
    } else {
      frame = relayRequestFrameOf(this.sealedOf(o), cmd.hopsLeft, cmd.pathId)
    }
    const id = o.envelope.messageId
    channel.sendFramed(ackKey(id, cmd.pathId), frame, this.delivery.ackTimeoutMs * 2, (err, ack) => { this.onCopyAck(o.envelope, cmd, neighbour, err, ack) }, undefined, id, onlyOn)
  }

  /** The message's sealed envelope (outgoing.ts sealedOf: an unsealed one's made once, unsigned; launch signs it). */
  private sealedOf (o: Outgoing): dbc.envelope.v1.Envelope {
    return sealedOf(o, this.init.secretKey, this.random)
  }

  private onCopyAck (envelope: dbc.envelope.v1.Envelope, cmd: SendCommand<string>, neighbour: string, err: Error | undefined, ack: dbc.envelope.v1.Ack | undefined): void {
    if (err !== undefined || ack === undefined) {
      this.delivery.pathFailed(this.now(), cmd.id, cmd.pathId)
    } else {
      const status = STATUS[ack.status] ?? 'rejected'
      // An ack straight from the recipient is authenticated by the connection; through a relay it must be signed.
      if ((status === 'ok' || status === 'duplicate') && cmd.via !== undefined && !ackAuthentic(envelope, ack, this.init.secretKey)) {
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
    settleOutgoing(o, ev, this.stats)
  }

  private channel (peer: string): RequestChannel<dbc.envelope.v1.Ack, number | string> {
    let c = this.channels.get(peer)
    if (c === undefined) {
      c = relayChannel(this.host, peerIdFromString(peer), this.maxBytes)
      this.channels.set(peer, c)
    }
    return c
  }

  /** Whether this node holds an open connection to `peer` (peer id bytes; false when they do not parse). */
  private connectedTo (peer: Uint8Array | null | undefined): boolean {
    try {
      return this.host.getConnections(peerIdObjectOf(peerIdTextOf(peer ?? new Uint8Array(0)))).some(c => c.status === 'open')
    } catch { return false }
  }

  /**
   * Sends one RelayRequest frame to a neighbour and waits for its ack (also used by tests to send
   * crafted frames); `key` names the copy as "<message id in hex>/<path id>".
   */
  async request (neighbour: string, key: string, frame: Uint8Array, timeoutMs = this.delivery.ackTimeoutMs * 2): Promise<dbc.envelope.v1.Ack> {
    const slash = key.lastIndexOf('/')
    const id = Uint8Array.from(Buffer.from(key.slice(0, slash), 'hex'))
    return await this.channel(neighbour).request(ackKey(id, Number(key.slice(slash + 1))), frame, timeoutMs, undefined, id)
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

  /** The answer to one RelayRequest frame (relay-inbound.ts; tests call it with crafted frames). */
  private handleFrame (from: string, frame: Uint8Array): dbc.envelope.v1.Ack | Promise<dbc.envelope.v1.Ack> {
    return this.inbound.handleFrame(from, frame)
  }
}
