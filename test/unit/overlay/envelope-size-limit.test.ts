// The envelope size limit is the relayed copy's (review16b): a direct copy goes unsigned (static
// mode) or unsealed (/dbc/relay/1.1.0), and a message's relayed copy is the same message sealed and
// signed: up to ~97 bytes larger. A payload whose direct copy fit the limit but whose relayed copy
// did not was taken by send(), and every relay (and a recipient) then refused that copy as
// oversized and charged the honest sender for it. send() now refuses such a payload, as it refuses
// one whose sealed copy is too large, whichever way its direct copy would go.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, signEnvelope } from '../../../src/crypto/index.js'
import { encodedEnvelopeSize } from '../../../src/crypto/envelope-codec.js'
import { EnvelopeService, RELAY_PROTOCOL_UNSEALED } from '../../../src/net/overlay/envelopes.js'
import { peerIdTextOf } from '../../../src/net/peer-ids.js'
import { FakeStream } from '../net/fake-stream.js'

const rng = createRng(33)
function party (seed: number): { secretKey: Uint8Array, bytes: Uint8Array, id: string } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  const bytes = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  return { secretKey, bytes, id: peerIdTextOf(bytes) }
}
const alice = party(1); const bob = party(2)
const MAX = 1000

/** A host for alice whose streams to bob negotiate /dbc/relay/1.1.0 over Noise. */
function fakeHost (): ConstructorParameters<typeof EnvelopeService>[0] {
  const streams: FakeStream[] = []
  return {
    peerId: { toMultihash: () => ({ bytes: alice.bytes }), toString: () => alice.id },
    handle: async () => {},
    unhandle: async () => {},
    getConnections: () => [{ encryption: '/noise', streams, status: 'open', remotePeer: { toString: () => bob.id } }],
    hangUp: async () => {},
    dialProtocol: async () => { const s = new FakeStream(); (s as unknown as { protocol: string }).protocol = RELAY_PROTOCOL_UNSEALED; streams.push(s); return s as unknown as Stream }
  } as unknown as ConstructorParameters<typeof EnvelopeService>[0]
}

/** The encoded size of the message's relayed copy: sealed, static mode, signed. */
function relayedSize (payloadBytes: number): number {
  const e = sealEnvelope({ senderSecretKey: alice.secretKey, sender: alice.bytes, recipient: bob.bytes, payload: new Uint8Array(payloadBytes), expiresAt: Date.now() + 30_000, sequence: 1, contentType: 15, random: rng.bytes, mode: 'static', sign: false })
  return encodedEnvelopeSize(signEnvelope(e, alice.secretKey))
}

async function refused (p: Promise<unknown>): Promise<string | undefined> {
  try { await Promise.race([p, new Promise(resolve => setImmediate(resolve))]) } catch (err) { return (err as { code?: string }).code }
  return undefined
}

test('send() refuses a payload whose relayed copy would exceed the limit, also when its direct copy goes unsigned or unsealed', async () => {
  let fits = 0
  while (relayedSize(fits + 1) <= MAX) fits++
  assert.ok(fits > 700 && fits < MAX, String(fits))
  const svc = new EnvelopeService(fakeHost(), { secretKey: alice.secretKey, ackTimeoutMs: 60_000, maxEnvelopeBytes: MAX })
  const pending: Array<Promise<unknown>> = []
  const send = (n: number): Promise<unknown> => { const p = svc.send(bob.id, new Uint8Array(n), { k: 1 }); pending.push(p.catch(() => {})); return p }
  // the first message to bob: its direct copy sealed, unsigned (static mode)
  assert.is(await refused(send(fits + 1)), 'ENVELOPE_TOO_LARGE', 'sealed unsigned direct copy: the signature is left out of the size')
  assert.is(await refused(send(fits)), undefined, 'the largest payload whose relayed copy fits is taken')
  await new Promise(resolve => setImmediate(resolve)) // the stream opened: 1.1.0 on Noise, direct copies go unsealed now
  assert.is(await refused(send(fits)), undefined)
  assert.ok(svc.stats.unsealedSent >= 1, 'the direct copy went unsealed')
  assert.is(await refused(send(fits + 1)), 'ENVELOPE_TOO_LARGE', 'unsealed direct copy: the seal and the signature are left out of the size')
  assert.is(await refused(send(fits + 60)), 'ENVELOPE_TOO_LARGE')
  await svc.start(); await svc.stop()
  await Promise.all(pending)
})

test.run()
