// /dbc/relay's inbound frames run in the protocol context the guard's handler ran in
// (src/node/protocol-context.ts): the frames arrive in later event turns, and each re-enters the
// context (src/net/overlay/relay-inbound.ts), so a penalty's metrics label and the last-resort
// handler name the protocol and peer behind what a frame did.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Connection, Stream } from '@libp2p/interface'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { unsealedEnvelope, encodeEnvelope } from '../../../src/crypto/index.js'
import { PeerScoreBook } from '../../../src/core/routing/index.js'
import { RelayInbound, type EnvelopeStats } from '../../../src/net/overlay/relay-inbound.js'
import { FramedStream } from '../../../src/net/framed.js'
import { peerIdTextOf } from '../../../src/net/peer-ids.js'
import { withProtocolContext, currentProtocolContext, type ProtocolContext } from '../../../src/node/protocol-context.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { encodeFrame } from '../../../src/wire/frame.js'
import { FakeStream } from '../net/fake-stream.js'

function party (seed: number): { secretKey: Uint8Array, bytes: Uint8Array, id: string } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  const bytes = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  return { secretKey, bytes, id: peerIdTextOf(bytes) }
}

test('a frame handled in a later turn sees the context its stream was served in, and only its own', async () => {
  const alice = party(1); const bob = party(2)
  const now = 1_700_000_000_000
  const seen: Array<ProtocolContext | undefined> = []
  const stats: EnvelopeStats = { sent: 0, delivered: 0, failed: 0, received: 0, duplicates: 0, relayed: 0, rejected: 0, relayedJunk: 0, unsealedSent: 0, unsealedReceived: 0 }
  const inbound = new RelayInbound({
    init: { secretKey: bob.secretKey },
    selfBytes: bob.bytes,
    maxBytes: 1 << 20,
    ackTimeoutMs: 1000,
    scores: new PeerScoreBook<string>(),
    stats,
    now: () => now,
    penalize: () => {},
    connectedTo: () => false,
    forward: () => {},
    deliver: () => { seen.push(currentProtocolContext()) }
  })
  const stream = new FakeStream()
  const connection = { remotePeer: { toString: () => alice.id }, encryption: '/noise' } as unknown as Connection
  const ctx = { protocol: '/dbc/relay/1.1.0', peer: alice.id }
  withProtocolContext(ctx, () => { inbound.serve(stream as unknown as Stream, connection, init => new FramedStream(stream as unknown as Stream, init)) })
  await new Promise(resolve => setImmediate(resolve))
  assert.is(currentProtocolContext(), undefined, 'outside the handler')
  const env = unsealedEnvelope({ sender: alice.bytes, recipient: bob.bytes, payload: new Uint8Array(8), expiresAt: now + 30_000, random: createRng(3).bytes })
  stream.deliver(encodeFrame(dbc.envelope.v1.RelayRequest.encode({ envelope: dbc.envelope.v1.Envelope.decode(encodeEnvelope(env)), hopsLeft: 0, pathId: 0 }).finish()))
  assert.is(stats.received, 1, 'delivered')
  assert.equal(seen, [ctx])
  assert.is(currentProtocolContext(), undefined, 'left again after the frame')
  assert.is(stream.sent.length, 1, 'acked')
})

test.run()
