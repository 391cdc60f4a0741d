// Unsealed direct copies ride only connections that encrypt end to end to the recipient and prove
// the sender (Noise; 'native' for WebRTC's DTLS): on any other (a plaintext encrypter) the sender
// seals its direct copies and the recipient refuses an unsealed one, charging no one. Fake hosts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { unsealedEnvelope, AckStatus, isUnsealed } from '../../../src/crypto/index.js'
import { decodeEnvelope } from '../../../src/crypto/envelope-codec.js'
import { parseRelayRequest } from '../../../src/net/overlay/relay-frames.js'
import { EnvelopeService, RELAY_PROTOCOL_UNSEALED, sealsEndToEnd } from '../../../src/net/overlay/envelopes.js'
import { peerIdTextOf } from '../../../src/net/peer-ids.js'
import type { Offence } from '../../../src/core/routing/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { FakeStream } from '../net/fake-stream.js'

const rng = createRng(21)
function party (seed: number): { secretKey: Uint8Array, bytes: Uint8Array, id: string } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  const bytes = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  return { secretKey, bytes, id: peerIdTextOf(bytes) }
}
const alice = party(1); const bob = party(2)

/** A host for `me` whose streams to any peer negotiate /dbc/relay/1.1.0 on a connection with `encryption`. */
function fakeHost (me: ReturnType<typeof party>, encryption: string | undefined): { host: ConstructorParameters<typeof EnvelopeService>[0], streams: FakeStream[] } {
  const streams: FakeStream[] = []
  const host = {
    peerId: { toMultihash: () => ({ bytes: me.bytes }), toString: () => me.id },
    handle: async () => {},
    unhandle: async () => {},
    getConnections: () => [{ encryption, streams, status: 'open', remotePeer: { toString: () => bob.id } }],
    hangUp: async () => {},
    dialProtocol: async () => { const s = new FakeStream(); (s as unknown as { protocol: string }).protocol = RELAY_PROTOCOL_UNSEALED; streams.push(s); return s as unknown as Stream }
  }
  return { host: host as unknown as ConstructorParameters<typeof EnvelopeService>[0], streams }
}

/** The envelopes alice's service wrote on its stream to bob (frames: varint length, RelayRequest). */
function written (s: FakeStream): dbc.envelope.v1.Envelope[] {
  return s.sent.map(b => { let o = 0; while (b[o] >= 0x80) o++; return parseRelayRequest(b.subarray(o + 1))?.envelope ?? decodeEnvelope(new Uint8Array(0)) })
}

test('the connection encryptions that carry unsealed copies: Noise and native (WebRTC DTLS) only', () => {
  assert.ok(sealsEndToEnd('/noise'))
  assert.ok(sealsEndToEnd('native'))
  for (const e of [undefined, '/plaintext/2.0.0', '', '/tls/1.0.0x']) assert.not.ok(sealsEndToEnd(e), String(e))
})

test('a sender seals its direct copies on a stream of 1.1.0 whose connection does not encrypt end to end; on Noise it does not', async () => {
  for (const [encryption, unsealedAfterFirst] of [['/plaintext/2.0.0', false], ['/noise', true]] as const) {
    const { host, streams } = fakeHost(alice, encryption)
    const svc = new EnvelopeService(host, { secretKey: alice.secretKey, ackTimeoutMs: 60_000 })
    const pending: Array<Promise<unknown>> = []
    pending.push(svc.send(bob.id, new Uint8Array([1]), { k: 1 }).catch(() => {}))
    await new Promise(resolve => setImmediate(resolve)) // the stream opens
    pending.push(svc.send(bob.id, new Uint8Array([2]), { k: 1 }).catch(() => {}))
    const envs = written(streams[0])
    assert.is(envs.length, 2, encryption)
    assert.not.ok(isUnsealed(envs[0]), `${encryption}: the first copy goes before the stream is open: sealed`)
    assert.is(isUnsealed(envs[1]), unsealedAfterFirst, encryption)
    assert.is(svc.stats.unsealedSent, unsealedAfterFirst ? 1 : 0)
    await svc.start(); await svc.stop()
    await Promise.all(pending)
  }
})

test('a recipient refuses an unsealed copy from its sender on a connection that does not encrypt end to end, charging no one', () => {
  const penalties: Array<{ peer: string, offence: Offence }> = []
  const inbox: unknown[] = []
  const svc = new EnvelopeService(fakeHost(bob, '/noise').host, { secretKey: bob.secretKey, disconnectBadPeers: false, onMessage: m => inbox.push(m), onPenalty: (peer, offence) => penalties.push({ peer, offence }) })
  const inbound = (svc as unknown as { inbound: { handleFrame: (from: string, frame: Uint8Array, vias: undefined, unsealedOk: boolean) => dbc.envelope.v1.Ack } }).inbound
  const frame = (): Uint8Array => dbc.envelope.v1.RelayRequest.encode({ envelope: unsealedEnvelope({ sender: alice.bytes, recipient: bob.bytes, payload: new Uint8Array([7]), expiresAt: Date.now() + 10_000, random: rng.bytes }), hopsLeft: 0, pathId: 0 }).finish()
  const refused = inbound.handleFrame(alice.id, frame(), undefined, false)
  assert.is(refused.status, AckStatus.REJECTED)
  assert.is(refused.reason, 'undecryptable')
  assert.is(inbox.length, 0)
  assert.equal(penalties, [])
  const taken = inbound.handleFrame(alice.id, frame(), undefined, true)
  assert.is(taken.status, AckStatus.OK, taken.reason)
  assert.is(inbox.length, 1)
})

test.run()
