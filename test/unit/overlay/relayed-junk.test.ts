// EnvelopeService (src/net/overlay/envelopes.ts) against a fake host: relayed copies are signed
// (the direct copy is not); a relayed copy that fails to open is not charged to the relay but
// counted per (relay, sender) pair, muted after RELAY_PAIR_MAX_FAILURES; a recipient that
// verifies signatures refuses an unsigned relayed copy without charging anyone; a relay that
// acks a delivery it can not prove is still charged.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, encodeEnvelope, nodeSuite, AckStatus, ACK_MAC_BYTES, type Envelope } from '../../../src/crypto/index.js'
import { frameBody } from '../../../src/crypto/envelope-codec.js'
import { EnvelopeService, type EnvelopeServiceInit, type ReceivedMessage } from '../../../src/net/overlay/envelopes.js'
import { RELAY_PAIR_MAX_FAILURES, RELAY_PAIR_MUTE_MS } from '../../../src/net/overlay/relay-failures.js'
import { peerIdTextOf } from '../../../src/net/peer-ids.js'
import type { Offence } from '../../../src/core/routing/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { encodeFrame } from '../../../src/wire/frame.js'
import { FakeStream } from '../net/fake-stream.js'

const rng = createRng(11)
function party (seed: number): { secretKey: Uint8Array, bytes: Uint8Array, id: string } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  const bytes = peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey))
  return { secretKey, bytes, id: peerIdTextOf(bytes) }
}
const alice = party(1); const bob = party(2); const relay = party(3); const relay2 = party(4); const stranger = party(5)
let now = 1_700_000_000_000

/** A host for `me` whose outbound streams are fakes (kept by peer, in order). */
function fakeHost (me: ReturnType<typeof party>): { host: ConstructorParameters<typeof EnvelopeService>[0], streams: Map<string, FakeStream> } {
  const streams = new Map<string, FakeStream>()
  const host = {
    peerId: { toMultihash: () => ({ bytes: me.bytes }), toString: () => me.id },
    handle: async () => {},
    unhandle: async () => {},
    getConnections: () => [],
    hangUp: async () => {},
    dialProtocol: async (peer: { toString: () => string }) => { const s = new FakeStream(); streams.set(peer.toString(), s); return s as unknown as Stream }
  }
  return { host: host as unknown as ConstructorParameters<typeof EnvelopeService>[0], streams }
}

/** Bob's service; `handle` runs one RelayRequest frame as if it came from `from`. */
function bobService (over: Partial<EnvelopeServiceInit> = {}): { svc: EnvelopeService, inbox: ReceivedMessage[], penalties: Array<{ peer: string, offence: Offence }>, handle: (from: string, env: Envelope) => dbc.envelope.v1.Ack } {
  const inbox: ReceivedMessage[] = []
  const penalties: Array<{ peer: string, offence: Offence }> = []
  const svc = new EnvelopeService(fakeHost(bob).host, { secretKey: bob.secretKey, now: () => now, disconnectBadPeers: false, onMessage: m => inbox.push(m), onPenalty: (peer, offence) => penalties.push({ peer, offence }), ...over })
  const handle = (from: string, env: Envelope): dbc.envelope.v1.Ack => {
    const frame = dbc.envelope.v1.RelayRequest.encode({ envelope: env, hopsLeft: 0, pathId: 1 }).finish()
    const ack = (svc as unknown as { handleFrame: (f: string, b: Uint8Array) => dbc.envelope.v1.Ack | Promise<dbc.envelope.v1.Ack> }).handleFrame(from, frame)
    if (ack instanceof Promise) throw new Error('a copy for us is answered at once')
    return ack
  }
  return { svc, inbox, penalties, handle }
}

function seal (from: ReturnType<typeof party>, over: Partial<Parameters<typeof sealEnvelope>[0]> = {}): Envelope {
  return sealEnvelope({ senderSecretKey: from.secretKey, sender: from.bytes, recipient: bob.bytes, payload: new Uint8Array(24), expiresAt: now + 30_000, random: rng.bytes, mode: 'static', ...over })
}
/** A copy whose ciphertext was flipped (what a stranger hands an honest relay as "its own" envelope). */
function junk (from: ReturnType<typeof party>): Envelope {
  const e = dbc.envelope.v1.Envelope.decode(encodeEnvelope(seal(from)))
  e.ciphertext[0] ^= 1
  return e
}

test('junk a stranger sends through an honest relay costs the relay nothing; the pair is muted after the limit', () => {
  const { svc, inbox, penalties, handle } = bobService()
  const score0 = svc.scores.score(now, relay.id)
  for (let i = 0; i < RELAY_PAIR_MAX_FAILURES; i++) {
    const ack = handle(relay.id, junk(stranger))
    assert.is(ack.status, AckStatus.REJECTED)
    assert.ok(ack.reason === 'forged' || ack.reason === 'undecryptable', ack.reason)
  }
  assert.equal(penalties, [], 'no one charged')
  assert.ok(svc.scores.score(now, relay.id) >= score0, 'the relay keeps its score')
  assert.is(svc.stats.relayedJunk, RELAY_PAIR_MAX_FAILURES)
  // muted: the stranger's copies via that relay are dropped unopened, even a good one
  const muted = handle(relay.id, seal(stranger))
  assert.is(muted.reason, 'muted')
  assert.is(inbox.length, 0)
  assert.is(svc.stats.relayedJunk, RELAY_PAIR_MAX_FAILURES, 'not opened, so not counted again')
  // the same relay still carries other senders' messages, and the stranger's good copies via another relay arrive
  assert.is(handle(relay.id, seal(alice)).status, AckStatus.OK)
  assert.is(handle(relay2.id, seal(stranger)).status, AckStatus.OK)
  assert.equal(inbox.map(m => m.sender), [alice.id, stranger.id])
  assert.equal(penalties, [])
  // the mute ends after RELAY_PAIR_MUTE_MS and the count starts over
  now += RELAY_PAIR_MUTE_MS
  assert.is(handle(relay.id, seal(stranger)).status, AckStatus.OK)
  assert.is(handle(relay.id, junk(stranger)).reason === 'muted', false)
  assert.is(handle(relay.id, seal(stranger)).status, AckStatus.OK, 'one failure does not mute')
})

test('junk handed over by its own sender is still charged to that sender', () => {
  const { penalties, handle } = bobService()
  const ack = handle(stranger.id, junk(stranger))
  assert.is(ack.status, AckStatus.REJECTED)
  assert.equal(penalties.map(p => p.peer), [stranger.id])
})

test('a recipient that verifies signatures refuses an unsigned relayed copy, charging no one; signed ones arrive', () => {
  const { svc, inbox, penalties, handle } = bobService({ trustAead: false })
  for (let i = 0; i < RELAY_PAIR_MAX_FAILURES + 2; i++) {
    const ack = handle(relay.id, seal(alice, { sign: false }))
    assert.is(ack.status, AckStatus.REJECTED)
    assert.is(ack.reason, 'forged')
  }
  assert.equal(penalties, [])
  assert.is(svc.relayFailures.size, 0, 'not counted against the pair either')
  assert.is(handle(relay.id, seal(alice)).status, AckStatus.OK, 'a signed relayed copy is delivered')
  // from the sender's own connection an unsigned copy is fine
  assert.is(handle(alice.id, seal(alice, { sign: false })).status, AckStatus.OK)
  assert.is(inbox.length, 2)
})

test('the sender: the direct copy goes unsigned, relayed copies signed; a relay that fakes an ack is charged', async () => {
  const { host, streams } = fakeHost(alice)
  const penalties: Array<{ peer: string, offence: Offence }> = []
  const svc = new EnvelopeService(host, { secretKey: alice.secretKey, relayCandidates: () => [relay.id], ackTimeoutMs: 60_000, disconnectBadPeers: false, onPenalty: (peer, offence) => penalties.push({ peer, offence }) })
  const sending = svc.send(bob.id, new Uint8Array(16), { k: 2 })
  for (let i = 0; i < 2000 && (streams.get(bob.id)?.sent.length !== 1 || streams.get(relay.id)?.sent.length !== 1); i++) await new Promise(resolve => setTimeout(resolve, 5))
  const copy = (peer: string): { env: Envelope, pathId: number } => {
    const req = dbc.envelope.v1.RelayRequest.decode(frameBody(streams.get(peer)!.sent[0]))
    return { env: req.envelope as Envelope, pathId: req.pathId }
  }
  const direct = copy(bob.id); const relayed = copy(relay.id)
  assert.is(direct.env.signature.length, 0, 'direct copy unsigned')
  assert.is(relayed.env.signature.length, 64, 'relayed copy signed')
  assert.equal(Array.from(relayed.env.messageId), Array.from(direct.env.messageId))
  // the relay answers OK with a MAC it made up: charged as forged, not counted delivered
  const fake = dbc.envelope.v1.Ack.create({ messageId: relayed.env.messageId, pathId: relayed.pathId, status: AckStatus.OK, signature: new Uint8Array(ACK_MAC_BYTES).fill(7) })
  streams.get(relay.id)!.deliver(encodeFrame(dbc.envelope.v1.Ack.encode(fake).finish()))
  for (let i = 0; i < 2000 && penalties.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 5))
  assert.equal(penalties, [{ peer: relay.id, offence: 'forged' }])
  // the recipient's own ack on the direct path delivers it
  const ok = dbc.envelope.v1.Ack.create({ messageId: direct.env.messageId, pathId: direct.pathId, status: AckStatus.OK })
  streams.get(bob.id)!.deliver(encodeFrame(dbc.envelope.v1.Ack.encode(ok).finish()))
  const receipt = await sending
  assert.is(receipt.via, undefined)
  await svc.stop()
})

test('k = 2: the relayed copy is signed off the event loop and still goes when the direct ack came first; not after stop', async () => {
  // hold the thread-pool signature until the direct ack has settled the message; releasing one
  // resolves once the service's callback has run (a copy it launches dials the relay in that turn)
  const held: Array<() => Promise<void>> = []
  const original = nodeSuite.signAsync!
  nodeSuite.signAsync = (seed, message, done) => {
    held.push(async () => { await new Promise<void>(resolve => { original(seed, message, (err, signature) => { done(err, signature); resolve() }) }) })
  }
  try {
    const { host, streams } = fakeHost(alice)
    const svc = new EnvelopeService(host, { secretKey: alice.secretKey, relayCandidates: () => [relay.id], ackTimeoutMs: 60_000, disconnectBadPeers: false })
    await svc.start()
    const sending = svc.send(bob.id, new Uint8Array(16), { k: 2 })
    for (let i = 0; i < 2000 && (streams.get(bob.id)?.sent.length !== 1 || held.length !== 1); i++) await new Promise(resolve => setTimeout(resolve, 5))
    assert.is(held.length, 1, 'the relayed copy waits for its signature')
    assert.is(streams.get(relay.id)?.sent.length ?? 0, 0, 'nothing went to the relay yet')
    const req = dbc.envelope.v1.RelayRequest.decode(frameBody(streams.get(bob.id)!.sent[0]))
    streams.get(bob.id)!.deliver(encodeFrame(dbc.envelope.v1.Ack.encode(dbc.envelope.v1.Ack.create({ messageId: req.envelope!.messageId, pathId: req.pathId, status: AckStatus.OK })).finish()))
    const receipt = await sending
    assert.is(receipt.via, undefined, 'delivered by the direct copy')
    assert.ok(svc.copiesInFlight >= 1, 'the copy waiting for its signature counts as in flight')
    void held.shift()!()
    for (let i = 0; i < 2000 && streams.get(relay.id)?.sent.length !== 1; i++) await new Promise(resolve => setTimeout(resolve, 5))
    const relayed = dbc.envelope.v1.RelayRequest.decode(frameBody(streams.get(relay.id)!.sent[0])).envelope as Envelope
    assert.is(relayed.signature.length, 64, 'the relayed copy went, signed, after its message was settled')
    assert.equal(Array.from(relayed.messageId), Array.from(req.envelope!.messageId as Uint8Array))
    // a signature that completes after stop sends nothing
    const s2 = fakeHost(alice)
    const svc2 = new EnvelopeService(s2.host, { secretKey: alice.secretKey, relayCandidates: () => [relay.id], ackTimeoutMs: 60_000, disconnectBadPeers: false })
    await svc2.start()
    svc2.send(bob.id, new Uint8Array(16), { k: 2 }).catch(() => {})
    for (let i = 0; i < 2000 && held.length !== 1; i++) await new Promise(resolve => setTimeout(resolve, 5))
    assert.is(held.length, 1)
    await svc2.stop()
    await held.shift()!()
    assert.is(s2.streams.get(relay.id), undefined, 'no copy after stop: no stream opened to the relay')
    await svc.stop()
  } finally {
    nodeSuite.signAsync = original
  }
})

test.run()
