// Frame helpers of /dbc/relay/1.0.0 shared by the sending side (envelopes.ts) and the inbound
// side (relay-inbound.ts): match keys, ack status names, RelayRequest parsing, ack writing.
import $protobuf from 'protobufjs/minimal.js'
import { dbc } from '../../wire/gen/wire.js'
import { encodeFrame } from '../../wire/frame.js'
import { ackFrameBytes, decodeEnvelope, decodeAck } from '../../crypto/envelope-codec.js'
import { AckStatus } from '../../crypto/ack.js'
import { bytesEqual } from '../../core/identity/index.js'
import type { AckStatus as CoreAckStatus } from '../../core/routing/index.js'
import type { FramedStream } from '../framed.js'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { RequestChannel } from './channel.js'
import { RELAY_PROTOCOLS } from './relay-protocols.js'

const Reader = $protobuf.Reader

/** Lower-case hex (native; the same text as core/identity's toHex, several times faster on the hot path). */
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/**
 * The key an ack is matched by on a relay channel (RequestChannel): 40 bits of the message id and
 * the path id in one number, so that neither a copy sent nor an ack received makes a hex string
 * (a path id of 8192 or more, which this overlay never makes, takes the text form, message id in
 * hex). The number alone can collide (an id has 128 bits): the channel checks an ack found under
 * it against the request's full message id (ackAnswers), so a colliding ack is dropped, as one
 * under no key is. Two requests waiting under one key: the second is refused (its path fails).
 */
export function ackKey (messageId: Uint8Array, pathId: number): number | string {
  if (!(pathId >= 0 && pathId < 8192 && Number.isInteger(pathId))) return `${toHex(messageId)}/${pathId}`
  // (bytes past the end read as undefined, which | turns into 0; ackAnswers compares the full id)
  const low = (messageId[0] | messageId[1] << 8 | messageId[2] << 16) >>> 0
  const high = (messageId[3] | messageId[4] << 8) >>> 0
  return (high * 0x1000000 + low) * 8192 + pathId
}

/** Whether `ack`, found under ackKey(messageId, pathId), answers that request: the same full message id (the key holds the path id exactly). */
export function ackAnswers (ack: dbc.envelope.v1.Ack, messageId: unknown): boolean {
  return messageId instanceof Uint8Array && bytesEqual(ack.messageId, messageId)
}

export const STATUS: Record<number, CoreAckStatus> = { [AckStatus.OK]: 'ok', [AckStatus.DUPLICATE]: 'duplicate', [AckStatus.REJECTED]: 'rejected', [AckStatus.UNREACHABLE]: 'unreachable' }

/** Writes an ack frame on an inbound relay stream, in this turn; a stream already gone drops it (the sender times the copy out). */
export function writeAck (framed: FramedStream, ack: dbc.envelope.v1.Ack): void {
  try { framed.stream.send(ackFrameBytes(ack) ?? encodeFrame(dbc.envelope.v1.Ack.encode(ack).finish())) } catch {}
}

export interface RelayRequestFrame { envelope: dbc.envelope.v1.Envelope, envelopeBytes: Uint8Array, hopsLeft: number, pathId: number }

/**
 * A RelayRequest frame read field by field, keeping the envelope's own bytes (a relay forwards
 * them unchanged); undefined when it does not decode or carries no envelope. Same field rules as
 * the generated decoder (the last occurrence of a field wins; unknown fields are skipped).
 */
export function parseRelayRequest (frame: Uint8Array): RelayRequestFrame | undefined {
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
    return { envelope: decodeEnvelope(envelopeBytes), envelopeBytes, hopsLeft, pathId }
  } catch { return undefined }
}

/** Message and path id of a RelayRequest frame, to answer one we will not process. */
export function peekIds (frame: Uint8Array): { messageId: Uint8Array, pathId: number } {
  try {
    const r = dbc.envelope.v1.RelayRequest.decode(frame)
    return { messageId: r.envelope?.messageId ?? new Uint8Array(0), pathId: r.pathId }
  } catch { return { messageId: new Uint8Array(0), pathId: 0 } }
}

/**
 * An Ack frame and its match key; undefined when it does not decode. An Ack has no repeated or
 * nested fields, so decodeMessage's shape walk (src/wire/decode.ts) could never refuse one: the
 * generated decoder alone, on every ack of the hot path.
 */
export function decodeAckFrame (frame: Uint8Array): { key: number | string, ack: dbc.envelope.v1.Ack } | undefined {
  try {
    const ack = decodeAck(frame)
    return { key: ackKey(ack.messageId, ack.pathId), ack }
  } catch { return undefined }
}

/** The sender's long-lived channel to a neighbour: RelayRequest frames out, Ack frames back (matched by ackKey, checked by ackAnswers). */
export function relayChannel (host: Pick<Libp2p, 'dialProtocol' | 'getConnections'>, peer: PeerId, maxBytes: number): RequestChannel<dbc.envelope.v1.Ack, number | string> {
  return new RequestChannel(host, peer, { protocol: RELAY_PROTOCOLS, maxFrameBytes: maxBytes + 64, decodeAck: decodeAckFrame, accepts: ackAnswers })
}
