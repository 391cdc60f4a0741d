// The sender's side of one message of ours in flight (src/net/overlay/envelopes.ts): what it keeps
// per message, the size its relayed copy will have, and that copy's sealed envelope when the
// message itself went unsealed (a direct copy on /dbc/relay/1.1.0).
import { dbc } from '../../wire/gen/wire.js'
import { sealEnvelope, isUnsealed, staticAckKey, NONCE_BYTES, TAG_BYTES } from '../../crypto/envelope.js'
import { verifyAck, verifyAckMac, ACK_MAC_BYTES } from '../../crypto/ack.js'
import { encodedEnvelopeSize } from '../../crypto/envelope-codec.js'
import type { SendCommand, DeliveryEvent } from '../../core/routing/index.js'
import { DbcError } from '../../errors.js'
import { toHex } from './relay-frames.js'
import type { DeliveryReceipt } from './envelope-types.js'
import type { EnvelopeStats } from './relay-inbound.js'

/** varint bytes of n (n < 2^35) */
const varintBytes = (n: number): number => n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
/**
 * The encoded size of `env`'s relayed copy: the same message sealed (an unsealed one's clear
 * payload becomes a nonce and a ciphertext 16 bytes longer) and signed (64 bytes and their field).
 */
export function relayedSizeOf (env: dbc.envelope.v1.Envelope): number {
  let size = encodedEnvelopeSize(env)
  if (isUnsealed(env)) {
    const p = env.payload.length
    size += -(p > 0 ? 1 + varintBytes(p) + p : 0) + (2 + NONCE_BYTES) + (1 + varintBytes(p + TAG_BYTES) + p + TAG_BYTES)
  }
  return env.signature.length === 0 ? size + 2 + 64 : size
}

/**
 * A message of ours in flight: the envelope (a direct copy's frame is written from it) and,
 * made when its first relayed copy goes out, the signed bytes every relayed copy carries.
 */
export interface Outgoing {
  /** Sealed, or unsealed when its direct copy goes to a recipient that takes that (then `sealed` is made for relayed copies). */
  envelope: dbc.envelope.v1.Envelope
  /** An unsealed message's envelope sealed, made when a copy first needs it (a relayed one, or a direct one to an older peer). */
  sealed?: dbc.envelope.v1.Envelope
  /** The first direct copy's frame, the envelope sealed into it (sendNow); taken by the first direct launch. */
  directFrame?: Uint8Array
  relayBytes?: Uint8Array
  /** Relayed copies waiting for the signature being made off the event loop (see pump). */
  signing?: Array<SendCommand<string>>
  recipient: Uint8Array
  resolve: (r: DeliveryReceipt) => void
  reject: (e: Error) => void
}

/**
 * The message's sealed envelope: its own envelope, or for an unsealed one the same message (id,
 * expiry, sequence, content type) sealed now, once, unsigned (static mode: the caller signs it).
 */
export function sealedOf (o: Outgoing, secretKey: Uint8Array, random: (out: Uint8Array) => Uint8Array): dbc.envelope.v1.Envelope {
  const e = o.envelope
  if (!isUnsealed(e)) return e
  o.sealed ??= sealEnvelope({ senderSecretKey: secretKey, sender: e.sender, recipient: e.recipient, payload: e.payload, expiresAt: e.expiresAt, sequence: e.sequence, contentType: e.contentType, messageId: e.messageId, random, mode: 'static', sign: false })
  return o.sealed
}

/** A delivered message's receipt; its messageId (the id in hex) is made when first read. */
export class Receipt implements DeliveryReceipt {
  private hex: string | undefined
  via?: string
  constructor (private readonly id: Uint8Array, readonly pathId: number, readonly latencyMs: number, readonly attempts: number) {}
  get messageId (): string { return (this.hex ??= toHex(this.id)) }
  toJSON (): DeliveryReceipt {
    const r: DeliveryReceipt = { messageId: this.messageId, pathId: this.pathId, latencyMs: this.latencyMs, attempts: this.attempts }
    if (this.via !== undefined) r.via = this.via
    return r
  }
}

/** Settles a message's promise with the delivery machine's verdict. */
export function settleOutgoing (o: Outgoing, ev: DeliveryEvent<string>, stats: EnvelopeStats): void {
  if (ev.type === 'delivered') {
    stats.delivered++
    const r = new Receipt(o.envelope.messageId, ev.pathId, ev.latencyMs, ev.attempts)
    if (ev.via !== undefined) r.via = ev.via
    o.resolve(r)
  } else {
    stats.failed++
    o.reject(new DbcError('DELIVERY_FAILED', `message ${toHex(o.envelope.messageId)} to ${ev.recipient} was not delivered: ${ev.reason}${ev.detail !== undefined ? ` (${ev.detail})` : ''}`, { hint: 'check that the recipient is online and reachable', data: { reason: ev.reason, attempts: ev.attempts } }))
  }
}

/**
 * Whether an OK/DUPLICATE ack that came back through a relay was made by the recipient: MACed with
 * the pair's ack key (a static-mode envelope), else signed by the recipient.
 */
export function ackAuthentic (sent: dbc.envelope.v1.Envelope, ack: dbc.envelope.v1.Ack, secretKey: Uint8Array): boolean {
  if (sent.ephemeralKey.length === 0 && ack.signature.length === ACK_MAC_BYTES) {
    const key = staticAckKey(secretKey, sent.sender, sent.recipient, true)
    return key !== undefined && verifyAckMac(key, ack)
  }
  return verifyAck(sent.recipient, ack)
}
