// A relay's replay window (src/net/overlay/relay-inbound.ts): one entry per (sender, message id,
// path id), keyed by the id's bytes (ReceiveWindow.checkId) with sender and path as the owner. The
// same copy from the same neighbour again is a replay (refused, charged); the same id on another
// path, or another sender's envelope with the same id, is a copy of its own (forwarded).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, AckStatus, type Envelope } from '../../../src/crypto/index.js'
import { PeerScoreBook, type Offence } from '../../../src/core/routing/index.js'
import { RelayInbound, type EnvelopeStats } from '../../../src/net/overlay/relay-inbound.js'
import { peerIdTextOf } from '../../../src/net/peer-ids.js'
import { dbc } from '../../../src/wire/gen/wire.js'

function party (seed: number): { secretKey: Uint8Array, bytes: Uint8Array, id: string } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  const bytes = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  return { secretKey, bytes, id: peerIdTextOf(bytes) }
}

test('a relay refuses the same copy from the same neighbour again, and forwards the same id on another path or from another sender', async () => {
  const alice = party(1); const carol = party(2); const relay = party(3); const bob = party(4)
  const now = 1_700_000_000_000
  const stats: EnvelopeStats = { sent: 0, delivered: 0, failed: 0, received: 0, duplicates: 0, relayed: 0, rejected: 0, relayedJunk: 0, unsealedSent: 0, unsealedReceived: 0 }
  const penalties: Array<{ peer: string, offence: Offence }> = []
  const forwarded: number[] = []
  const inbound = new RelayInbound({
    init: { secretKey: relay.secretKey },
    selfBytes: relay.bytes,
    maxBytes: 1 << 20,
    ackTimeoutMs: 1000,
    scores: new PeerScoreBook<string>(),
    stats,
    now: () => now,
    penalize: (peer, offence) => { penalties.push({ peer, offence }) },
    connectedTo: () => true,
    forward: (_peer, messageId, pathId, _frame, _t, done) => { forwarded.push(pathId); done(undefined, dbc.envelope.v1.Ack.create({ messageId, pathId, status: AckStatus.OK })) },
    deliver: () => {}
  })
  const id = createRng(9).bytes(new Uint8Array(16))
  const seal = (from: ReturnType<typeof party>): Envelope => sealEnvelope({ senderSecretKey: from.secretKey, sender: from.bytes, recipient: bob.bytes, payload: new Uint8Array(8), expiresAt: now + 30_000, random: createRng(5).bytes, mode: 'static', messageId: id })
  const frame = (e: Envelope, pathId: number): Uint8Array => dbc.envelope.v1.RelayRequest.encode({ envelope: e, hopsLeft: 1, pathId }).finish()
  const status = async (from: string, f: Uint8Array): Promise<dbc.envelope.v1.Ack> => await inbound.handleFrame(from, f)
  const a = seal(alice)
  assert.is((await status(alice.id, frame(a, 1))).status, AckStatus.OK)
  const again = await status(alice.id, frame(a, 1))
  assert.is(again.status, AckStatus.REJECTED)
  assert.is(again.reason, 'replayed')
  assert.equal(penalties, [{ peer: alice.id, offence: 'replayed' }])
  assert.is((await status(alice.id, frame(a, 2))).status, AckStatus.OK, 'the same id on another path')
  // (handed over by the same neighbour, on the same path: only the sender tells the two apart)
  assert.is((await status(alice.id, frame(seal(carol), 1))).status, AckStatus.OK, 'another sender\'s envelope with the same id')
  assert.equal(forwarded, [1, 2, 1])
})

test.run()
