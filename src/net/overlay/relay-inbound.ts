// The inbound side of /dbc/relay/1.0.0 (src/net/overlay/envelopes.ts sends): each RelayRequest
// frame on a neighbour's stream is delivered (we are the recipient), forwarded (we hold a
// connection to the recipient) or refused, as the core's relay decision says, and answered with an
// Ack frame. Frames are handled in the turn they arrive (push mode), like a plain stream listener.
import type { Stream, Connection } from '@libp2p/interface'
import type { FramedStream } from '../framed.js'
import { wasHandled, type GuardedStreamInit } from '../guard/index.js'
import { dbc } from '../../wire/gen/wire.js'
import { WireError } from '../../errors.js'
import { openEnvelope, checkEnvelope, staticAckKey, isUnsealed, type EnvelopeRejection } from '../../crypto/envelope.js'
import { relayRequestFrameBytes } from '../../crypto/envelope-codec.js'
import { signAck, macAck, AckStatus } from '../../crypto/ack.js'
import { ReceiveWindow, decideRelay, type PeerScoreBook, type Offence } from '../../core/routing/index.js'
import { bytesEqual } from '../../core/identity/index.js'
import { RelayFailureBook } from './relay-failures.js'
import { peerIdTextOf, peerIdBytesOf } from '../peer-ids.js'
import { toHex, writeAck, parseRelayRequest, peekIds } from './relay-frames.js'
import type { AckCallback } from './channel.js'
import type { EnvelopeServiceInit, ReceivedMessage } from './envelope-types.js'
import { sealsEndToEnd } from './relay-protocols.js'
import { currentProtocolContext, inProtocolContext } from '../../node/protocol-context.js'

const NO_SIGNATURE = new Uint8Array(0)

/** Copies one inbound stream may have in processing at once (a peer can not queue unbounded work). */
export const MAX_IN_FLIGHT_PER_STREAM = 256

/** `unsealedSent` / `unsealedReceived`: direct copies that went without the envelope's own seal (see src/crypto/envelope.ts). */
export interface EnvelopeStats { sent: number, delivered: number, failed: number, received: number, duplicates: number, relayed: number, rejected: number, relayedJunk: number, unsealedSent: number, unsealedReceived: number }

/** What the inbound side needs of its service. */
export interface InboundHost {
  readonly init: EnvelopeServiceInit
  readonly selfBytes: Uint8Array
  readonly maxBytes: number
  readonly ackTimeoutMs: number
  readonly scores: PeerScoreBook<string>
  readonly stats: EnvelopeStats
  now: () => number
  penalize: (peer: string, offence: Offence) => void
  /** Whether we hold an open connection to `peer` (peer id bytes). */
  connectedTo: (peer: Uint8Array) => boolean
  /** Sends a RelayRequest frame (message `messageId`, path `pathId`) on to `peer` and calls back with its ack. */
  forward: (peer: string, messageId: Uint8Array, pathId: number, frame: Uint8Array, timeoutMs: number, done: AckCallback<dbc.envelope.v1.Ack>) => void
  /** Hands a new message addressed to us to the applications. */
  deliver: (msg: ReceivedMessage) => void
}

export class RelayInbound {
  private readonly window = new ReceiveWindow<string>()
  private readonly relayWindow = new ReceiveWindow<string>()
  /** Relayed copies that failed to open, per (relay, sender): not charged to the relay (see relay-failures.ts). */
  readonly relayFailures = new RelayFailureBook()
  /** The last sender's peer id bytes and text: a chatty pair skips the text lookup (a latin1 string and a map hash per copy). */
  private lastSenderBytes: Uint8Array = new Uint8Array(0)
  private lastSenderText = ''

  constructor (private readonly h: InboundHost) {}

  /**
   * Inbound stream: one RelayRequest per frame, each answered with an Ack frame. Frames are
   * handled in the turn they arrive (push mode, as a plain stream's 'message' listener would).
   */
  serve (stream: Stream, connection: Connection, open: (init: GuardedStreamInit) => FramedStream): void {
    const from = connection.remotePeer.toString()
    if (this.h.scores.isBanned(this.h.now(), from)) { stream.abort(new Error('peer score below threshold')); return }
    const framed = open({ maxFrameBytes: this.h.maxBytes + 64 })
    let inFlight = 0
    // the replay window's "via" texts of this stream (`${from}/${pathId}`), made once per path id
    const vias: string[] = []
    // whether this connection may carry unsealed copies (its encryption seals them to us and proves the sender)
    const unsealedOk = sealsEndToEnd(connection.encryption)
    const onFrame = (frame: Uint8Array): void => {
      // Bounded work per stream: beyond MAX_IN_FLIGHT_PER_STREAM the copy is refused (not charged).
      if (inFlight >= MAX_IN_FLIGHT_PER_STREAM) {
        writeAck(framed, dbc.envelope.v1.Ack.create({ ...peekIds(frame), status: AckStatus.UNREACHABLE, reason: 'busy' }))
        return
      }
      // a copy for us (or one refused) is answered in this turn; only a forwarded one waits
      let answer: dbc.envelope.v1.Ack | Promise<dbc.envelope.v1.Ack>
      try { answer = this.handleFrame(from, frame, vias, unsealedOk) } catch { return }
      if (answer instanceof Promise) {
        inFlight++
        answer.then(ack => { writeAck(framed, ack) }, () => {}).finally(() => { inFlight-- })
      } else {
        writeAck(framed, answer)
      }
    }
    // the frames run in the stream's event turns: each re-enters the protocol context the guard set
    // (src/node/protocol-context.ts; an AsyncLocalStorage run, a fraction of AsyncResource.bind's
    // per-call cost, which was ~2 us of every direct copy's round trip)
    const ctx = currentProtocolContext()
    framed.listen({
      frame: ctx === undefined ? onFrame : (f) => { inProtocolContext(ctx, onFrame, f) },
      end: (err) => {
        if (err === undefined) { framed.close().catch(() => {}); return }
        if (err instanceof WireError && !wasHandled(err)) this.h.penalize(from, err.code === 'FRAME_TOO_LARGE' ? 'oversized' : 'malformed')
        framed.abort(err)
      }
    })
  }

  private reject (from: string, messageId: Uint8Array, pathId: number, reason: EnvelopeRejection | 'replayed' | 'hop-limit' | 'muted', offence?: Offence): dbc.envelope.v1.Ack {
    this.h.stats.rejected++
    if (offence !== undefined) this.h.penalize(from, offence)
    return dbc.envelope.v1.Ack.create({ messageId, pathId, status: AckStatus.REJECTED, reason })
  }

  /**
   * Acks to the sender itself ride its authenticated connection; acks through a relay are
   * authenticated: MACed with the pair's ack key for a static-mode envelope (only sender and we
   * hold it), signed for an ephemeral one.
   */
  private ack (fromSender: boolean, env: dbc.envelope.v1.Envelope, pathId: number, status: number): dbc.envelope.v1.Ack {
    const id = env.messageId
    if (fromSender) {
      // (fields set one by one: the generated create walks Object.keys of a properties object;
      // all of them, in decodeAck's order: one object shape for every ack)
      const a = new dbc.envelope.v1.Ack()
      a.messageId = id; a.pathId = pathId; a.status = status; a.reason = ''; a.signature = NO_SIGNATURE
      return a
    }
    const key = env.ephemeralKey.length === 0 ? staticAckKey(this.h.init.secretKey, env.sender, env.recipient, false) : undefined
    return key !== undefined ? macAck(key, id, pathId, status) : signAck(this.h.init.secretKey, id, pathId, status)
  }

  private senderText (sender: Uint8Array): string {
    if (bytesEqual(sender, this.lastSenderBytes)) return this.lastSenderText
    const text = peerIdTextOf(sender)
    // (a copy: the envelope's bytes are a view into a frame buffer)
    this.lastSenderBytes = sender.slice(); this.lastSenderText = text
    return text
  }

  /**
   * The answer to one RelayRequest frame: at once, or (when forwarding) once the next hop answers.
   * `vias`: the stream's cache of via texts by path id (serve keeps one per stream).
   */
  handleFrame (from: string, frame: Uint8Array, vias?: string[], unsealedOk = true): dbc.envelope.v1.Ack | Promise<dbc.envelope.v1.Ack> {
    const now = this.h.now()
    const req = parseRelayRequest(frame)
    if (req === undefined) return this.reject(from, new Uint8Array(0), 0, 'malformed', 'malformed')
    const env = req.envelope
    const id = env.messageId
    // compare bytes: the sender field is unvalidated until the envelope's shape is checked
    const deliveredBySender = bytesEqual(env.sender, peerIdBytesOf(from))
    // what to do with the copy is the core's decision (the simulator runs the same one), from real
    // facts: are we the recipient, how many hops are left, do we hold a connection to the recipient
    // (looked up only when we are not the recipient: the decision does not read it then)
    const recipientIsSelf = bytesEqual(env.recipient, this.h.selfBytes)
    const decision = decideRelay({ recipientIsSelf, hopsLeft: req.hopsLeft, recipientReachable: !recipientIsSelf && this.h.connectedTo(env.recipient) })
    if (decision === 'deliver') {
      const senderHex = deliveredBySender ? '' : toHex(env.sender)
      if (deliveredBySender && !unsealedOk && isUnsealed(env)) {
        // its sender, on a connection that does not encrypt end to end (a plaintext test encrypter,
        // say): refused, not charged (our senders do not send one there: sealsEndToEnd)
        return this.reject(from, id, req.pathId, 'undecryptable')
      }
      if (!deliveredBySender) {
        // an unsealed copy comes only on its sender's own connection: no honest relay passes one
        // on (relays refuse them, older ones as malformed), so the peer that hands one over made it
        if (isUnsealed(env)) return this.reject(from, id, req.pathId, 'forged', 'forged')
        // we verify signatures and a relay handed over an unsigned copy (an older sender's, or
        // one a relay stripped): refused, no one charged (neither can be told apart from honest)
        if (env.signature.length === 0 && this.h.init.trustAead === false) return this.reject(from, id, req.pathId, 'forged')
        if (this.relayFailures.muted(now, from, senderHex)) return this.reject(from, id, req.pathId, 'muted')
      }
      const opened = openEnvelope(env, { now, maxBytes: this.h.maxBytes, knownSize: req.envelopeBytes.length, recipient: this.h.selfBytes, recipientSecretKey: this.h.init.secretKey, verifySignature: this.h.init.trustAead === false, deliveredBySender })
      if (!opened.ok) {
        // through a relay, a copy that does not open or verify is not the relay's doing (it forwards
        // a sender's bytes unchecked, by design) and does not prove its sender: counted per pair
        if (!deliveredBySender && (opened.reason === 'forged' || opened.reason === 'undecryptable')) {
          this.h.stats.relayedJunk++
          this.relayFailures.fail(now, from, senderHex)
          return this.reject(from, id, req.pathId, opened.reason)
        }
        return this.reject(from, id, req.pathId, opened.reason, opened.reason)
      }
      // (the shape is checked now: the sender's text form is cached per peer, cheaper than its hex)
      const sender = this.senderText(env.sender)
      // keyed by the message id's bytes (no hex text per copy: dedup.ts checkId), the sender kept beside it
      const verdict = this.window.checkId(now, id, env.expiresAt, viaOf(vias, from, req.pathId), sender)
      if (verdict === 'replayed') return this.reject(from, id, req.pathId, 'replayed', 'replayed')
      if (verdict === 'new') {
        this.h.stats.received++
        if (isUnsealed(env)) this.h.stats.unsealedReceived++
        this.h.scores.reward(now, from, 0.1)
        this.h.deliver(new Received(sender, id.slice(), opened.contentType, opened.sequence, opened.payload, from))
        return this.ack(deliveredBySender, env, req.pathId, AckStatus.OK)
      }
      this.h.stats.duplicates++
      return this.ack(deliveredBySender, env, req.pathId, AckStatus.DUPLICATE)
    }
    // Relaying: the recipient is someone else. Relays check size, signature and expiry; the
    // signature is taken as read when the sender itself handed the copy over (its connection
    // proves the same; see checkEnvelope's deliveredBySender), but it must be there.
    const checked = checkEnvelope(env, { now, maxBytes: this.h.maxBytes, knownSize: req.envelopeBytes.length, deliveredBySender })
    if (!checked.ok) {
      // an unsigned copy from its own sender (a version that relayed copies unsigned): refused, not charged
      const offence = deliveredBySender && checked.reason === 'forged' && env.signature.length === 0 ? undefined : checked.reason
      return this.reject(from, id, req.pathId, checked.reason, offence)
    }
    // one entry per (sender, message id, path id): the id's bytes as the key (no hex), sender and path as the owner
    if (this.relayWindow.checkId(now, id, env.expiresAt, from, `${peerIdTextOf(env.sender)}/${req.pathId}`) === 'replayed') return this.reject(from, id, req.pathId, 'replayed', 'replayed')
    const recipient = peerIdTextOf(env.recipient)
    if (decision === 'hop-limit') return this.reject(from, id, req.pathId, 'hop-limit')
    // a relay forwards only over a connection it already holds: it does not dial on a stranger's behalf
    if (decision === 'unreachable') return dbc.envelope.v1.Ack.create({ messageId: id, pathId: req.pathId, status: AckStatus.UNREACHABLE, reason: 'the relay holds no connection to the recipient' })
    this.h.stats.relayed++
    try { this.h.init.onRelay?.(env, from) } catch (err) {
      return dbc.envelope.v1.Ack.create({ messageId: id, pathId: req.pathId, status: AckStatus.UNREACHABLE, reason: (err as Error).message })
    }
    // the envelope's own bytes go on as they came (not re-encoded from the decoded copy)
    const fwd = relayRequestFrameBytes(req.envelopeBytes, req.hopsLeft - 1, req.pathId)
    return new Promise(resolve => {
      this.h.forward(recipient, id, req.pathId, fwd, this.h.ackTimeoutMs, (err, ack) => {
        resolve(err !== undefined || ack === undefined ? dbc.envelope.v1.Ack.create({ messageId: id, pathId: req.pathId, status: AckStatus.UNREACHABLE, reason: err?.message ?? 'no ack' }) : ack)
      })
    })
  }
}

/** A new message as the applications get it; its messageId (the id in hex) is made when first read. */
class Received implements ReceivedMessage {
  private hex: string | undefined
  /** `id`: the message id's own bytes (not a view into a read buffer). */
  constructor (readonly sender: string, private readonly id: Uint8Array, readonly contentType: number, readonly sequence: number, readonly payload: Uint8Array, readonly via: string) {}
  get messageId (): string { return (this.hex ??= toHex(this.id)) }
  toJSON (): ReceivedMessage {
    return { sender: this.sender, messageId: this.messageId, contentType: this.contentType, sequence: this.sequence, payload: this.payload, via: this.via }
  }
}

/** `${from}/${pathId}`, from the stream's cache for the small path ids senders use (k paths). */
function viaOf (vias: string[] | undefined, from: string, pathId: number): string {
  if (vias === undefined || pathId >= 16) return `${from}/${pathId}`
  return vias[pathId] ?? (vias[pathId] = `${from}/${pathId}`)
}
