// Recipient-signed acks: an OK or DUPLICATE ack travelling back through a relay is signed by the
// recipient, so a relay that drops a copy can not also claim it was delivered.
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
