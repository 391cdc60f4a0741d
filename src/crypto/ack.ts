// Recipient-signed acks: an OK or DUPLICATE ack travelling back through a relay is signed by the
// recipient (or, for a static-mode envelope, MACed with a key only sender and recipient hold), so
// a relay that drops a copy can not also claim it was delivered.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { dbc } from '../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes } from '../core/identity/index.js'
import { nodeSuite, ed25519Seed, type CryptoSuite } from './suite.js'

export type Ack = dbc.envelope.v1.Ack
export const AckStatus = dbc.envelope.v1.Ack.Status

const ACK_DOMAIN = new TextEncoder().encode('dbc/ack/v1\0')

function ackMessage (messageId: Uint8Array, status: number): Uint8Array {
  const m = new Uint8Array(ACK_DOMAIN.length + messageId.length + 1)
  m.set(ACK_DOMAIN); m.set(messageId, ACK_DOMAIN.length); m[m.length - 1] = status & 0xff
  return m
}

/** A signed ack from the recipient (status OK or DUPLICATE). */
export function signAck (secretKey: Uint8Array, messageId: Uint8Array, pathId: number, status: number, suite: CryptoSuite = nodeSuite): Ack {
  return dbc.envelope.v1.Ack.create({ messageId, pathId, status, signature: suite.sign(ed25519Seed(secretKey), ackMessage(messageId, status)) })
}

/** Whether `ack` carries a valid signature by the key inside `recipient` (peer id bytes). */
export function verifyAck (recipient: Uint8Array, ack: Ack, suite: CryptoSuite = nodeSuite): boolean {
  const key = ed25519KeyFromPeerIdBytes(recipient)
  return key !== undefined && suite.verify(key, ackMessage(ack.messageId, ack.status), ack.signature)
}

/** Length of an ack MAC (HMAC-SHA256) in the ack's signature field; an Ed25519 signature has 64. */
export const ACK_MAC_BYTES = 32

function ackMac (key: Uint8Array, messageId: Uint8Array, status: number): Uint8Array {
  return new Uint8Array(createHmac('sha256', key).update(ackMessage(messageId, status)).digest())
}

/**
 * An ack for a static-mode envelope, authenticated with the pair's ack key (staticAckKey in
 * ./envelope.ts) instead of an Ed25519 signature: only sender and recipient hold that key, so a
 * relay still can not claim a delivery; what is given up is only that a third party could check
 * the ack (no one does: acks go to the sender alone).
 */
export function macAck (ackKey: Uint8Array, messageId: Uint8Array, pathId: number, status: number): Ack {
  return dbc.envelope.v1.Ack.create({ messageId, pathId, status, signature: ackMac(ackKey, messageId, status) })
}

/** Whether `ack` carries the MAC of `ackKey` (constant-time compare); never throws. */
export function verifyAckMac (ackKey: Uint8Array, ack: Ack): boolean {
  const got = ack.signature
  if (!(got instanceof Uint8Array) || got.length !== ACK_MAC_BYTES || !(ack.messageId instanceof Uint8Array)) return false
  return timingSafeEqual(ackMac(ackKey, ack.messageId, ack.status & 0xff), got)
}
