// Acks of relayed copies: MACed with the pair's ack key for static-mode envelopes (only sender
// and recipient can make or check one), Ed25519-signed otherwise; and a relay's check of a copy
// the sender handed it itself.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, checkEnvelope, encodeEnvelope, staticAckKey, macAck, verifyAckMac, signAck, verifyAck, ACK_MAC_BYTES, AckStatus, type Envelope } from '../../../src/crypto/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'

function party (seed: number): { secretKey: Uint8Array, peerId: Uint8Array } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}
const alice = party(11); const bob = party(12); const relay = party(13)
const rng = createRng(5)
const NOW = 1_700_000_000_000
const id = rng.bytes(new Uint8Array(16))

test('sender and recipient derive the same ack key; other pairs and the other direction do not', () => {
  const asSender = staticAckKey(alice.secretKey, alice.peerId, bob.peerId, true)
  const asRecipient = staticAckKey(bob.secretKey, alice.peerId, bob.peerId, false)
  assert.ok(asSender !== undefined && asRecipient !== undefined)
  assert.equal(Array.from(asSender), Array.from(asRecipient))
  assert.is(asSender.length, 32)
  // the relay, pretending to be either side, gets another key
  const byRelay = [staticAckKey(relay.secretKey, alice.peerId, bob.peerId, true), staticAckKey(relay.secretKey, alice.peerId, bob.peerId, false)]
  for (const k of byRelay) assert.not.equal(Array.from(k ?? []), Array.from(asSender))
  // bob -> alice messages use their own key
  const reverse = staticAckKey(bob.secretKey, bob.peerId, alice.peerId, true)
  assert.not.equal(Array.from(reverse ?? []), Array.from(asSender))
  // libp2p's 64-byte secret key form gives the same key
  const long = new Uint8Array(64); long.set(alice.secretKey); long.set(ed25519PublicKey(alice.secretKey), 32)
  assert.equal(Array.from(staticAckKey(long, alice.peerId, bob.peerId, true) ?? []), Array.from(asSender))
  // a peer id without an Ed25519 key: no key, no throw
  assert.is(staticAckKey(alice.secretKey, alice.peerId, new Uint8Array([1, 2, 3]), true), undefined)
})

test('a MACed ack verifies with the pair key only; a changed status, id or key fails; garbage never throws', () => {
  const key = staticAckKey(bob.secretKey, alice.peerId, bob.peerId, false) as Uint8Array
  const ack = macAck(key, id, 3, AckStatus.OK)
  assert.is(ack.signature.length, ACK_MAC_BYTES)
  const senderKey = staticAckKey(alice.secretKey, alice.peerId, bob.peerId, true) as Uint8Array
  assert.ok(verifyAckMac(senderKey, ack))
  // it went through protobuf unchanged
  assert.ok(verifyAckMac(senderKey, dbc.envelope.v1.Ack.decode(dbc.envelope.v1.Ack.encode(ack).finish())))
  assert.not.ok(verifyAckMac(senderKey, { ...ack, status: AckStatus.DUPLICATE } as dbc.envelope.v1.Ack), 'status is covered')
  const otherId = id.slice(); otherId[0] ^= 1
  assert.not.ok(verifyAckMac(senderKey, { ...ack, messageId: otherId } as dbc.envelope.v1.Ack), 'message id is covered')
  const relayKey = staticAckKey(relay.secretKey, alice.peerId, bob.peerId, true) as Uint8Array
  assert.not.ok(verifyAckMac(senderKey, macAck(relayKey, id, 3, AckStatus.OK)), 'a relay cannot make one')
  // an Ed25519-signed ack is not a MAC, and a MAC is not a signature
  const signed = signAck(bob.secretKey, id, 3, AckStatus.OK)
  assert.not.ok(verifyAckMac(senderKey, signed))
  assert.ok(verifyAck(bob.peerId, signed))
  assert.not.ok(verifyAck(bob.peerId, ack))
  for (let i = 0; i < 200; i++) {
    const junk = { messageId: rng.bytes(new Uint8Array(rng.int(20))), pathId: rng.int(5), status: rng.int(300), signature: rng.bytes(new Uint8Array(rng.int(3) === 0 ? 32 : rng.int(70))) } as unknown as dbc.envelope.v1.Ack
    assert.is(verifyAckMac(senderKey, junk), false)
  }
  assert.is(verifyAckMac(senderKey, { messageId: null, status: 0, signature: null } as unknown as dbc.envelope.v1.Ack), false)
})

function seal (over: Partial<Parameters<typeof sealEnvelope>[0]> = {}): Envelope {
  return sealEnvelope({ senderSecretKey: alice.secretKey, sender: alice.peerId, recipient: bob.peerId, payload: new Uint8Array(40), expiresAt: NOW + 30_000, random: rng.bytes, mode: 'static', ...over })
}

test('a relay handed a copy by its sender takes the signature as read (it must be there); from anyone else it verifies', () => {
  const good = seal()
  assert.ok(checkEnvelope(good, { now: NOW, deliveredBySender: true }).ok)
  assert.ok(checkEnvelope(good, { now: NOW }).ok)
  // a bad signature: only the sender's own connection vouches for it
  const bad = dbc.envelope.v1.Envelope.decode(encodeEnvelope(good)); bad.signature[0] ^= 1
  assert.ok(checkEnvelope(bad, { now: NOW, deliveredBySender: true }).ok)
  assert.is((checkEnvelope(bad, { now: NOW }) as { reason: string }).reason, 'forged')
  // unsigned (static mode): refused from anyone, its sender too (a relayed copy must carry a
  // signature: old relays and recipients that verify signatures check it)
  const unsigned = seal({ sign: false })
  assert.is((checkEnvelope(unsigned, { now: NOW, deliveredBySender: true }) as { reason: string }).reason, 'forged')
  assert.is((checkEnvelope(unsigned, { now: NOW }) as { reason: string }).reason, 'forged')
  // an ephemeral-mode envelope without its signature is malformed, whoever hands it over
  const eph = dbc.envelope.v1.Envelope.decode(encodeEnvelope(seal({ mode: 'ephemeral' }))); eph.signature = new Uint8Array(0)
  assert.is((checkEnvelope(eph, { now: NOW, deliveredBySender: true }) as { reason: string }).reason, 'malformed')
  // expiry and shape are still checked
  assert.is((checkEnvelope(seal({ expiresAt: NOW - 1 }), { now: NOW, deliveredBySender: true }) as { reason: string }).reason, 'expired')
  const short = dbc.envelope.v1.Envelope.decode(encodeEnvelope(good)); short.signature = new Uint8Array(10)
  assert.is((checkEnvelope(short, { now: NOW, deliveredBySender: true }) as { reason: string }).reason, 'malformed')
})

test.run()
