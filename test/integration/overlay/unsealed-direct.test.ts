// Direct copies without the envelope's own seal (/dbc/relay/1.1.0): a copy the sender hands to the
// recipient itself rides a connection that Noise encrypts end to end to the recipient and that
// proves the sender, so it goes unsealed; relayed copies stay sealed and signed; older peers (1.0.0
// only) still get and send sealed direct copies. Real libp2p nodes on 127.0.0.1, one process.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { lpStream } from '@libp2p/utils'
import { startNode, connect, type TestNode } from './nodes.js'
import { waitUntil } from '../../helpers/wait.js'
import { EnvelopeService, RELAY_PROTOCOL, RELAY_PROTOCOL_UNSEALED, type ReceivedMessage } from '../../../src/net/overlay/envelopes.js'
import { sealEnvelope, unsealedEnvelope, checkEnvelope, AckStatus, type Envelope } from '../../../src/crypto/index.js'
import { relayRequestFrameOf, frameBody, decodeAck } from '../../../src/crypto/envelope-codec.js'
import { dbc } from '../../../src/wire/gen/wire.js'

const names = ['A', 'B', 'R', 'OLD', 'EVE', 'DOWN'] as const
type Name = typeof names[number]
const nodes = new Map<Name, TestNode>()
const services = new Map<Name, EnvelopeService>()
const inbox = new Map<Name, ReceivedMessage[]>()
const relayed: Envelope[] = []
const node = (n: Name): TestNode => nodes.get(n) as TestNode
const svc = (n: Name): EnvelopeService => services.get(n) as EnvelopeService
const bytesOf = (n: Name): Uint8Array => node(n).node.peerId.toMultihash().bytes
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

test.before(async () => {
  for (const name of names) {
    const n = await startNode()
    nodes.set(name, n)
    inbox.set(name, [])
    const s = new EnvelopeService(n.node, { secretKey: n.secretKey, ackTimeoutMs: 3000, onMessage: m => inbox.get(name)?.push(m), onRelay: e => { if (name === 'R') relayed.push(e) } })
    await s.start()
    services.set(name, s)
  }
  // OLD stands for a peer of the version before 1.1.0: it does not offer that protocol
  await node('OLD').node.unhandle(RELAY_PROTOCOL_UNSEALED)
  for (let i = 0; i < names.length; i++) for (let j = i + 1; j < names.length; j++) await connect(node(names[i]), node(names[j]))
})

test.after(async () => {
  for (const s of services.values()) await s.stop()
  for (const n of nodes.values()) await n.node.stop()
})

test('direct copies to a peer that speaks /dbc/relay/1.1.0 go unsealed once the stream is open; k = 2\'s relayed copy stays sealed and signed', async () => {
  for (let i = 0; i < 4; i++) await svc('A').send(node('B').id, text(`message ${i}`), { k: 1 })
  const got = inbox.get('B') ?? []
  assert.equal(got.map(m => new TextDecoder().decode(m.payload)), ['message 0', 'message 1', 'message 2', 'message 3'])
  assert.ok(got.every(m => m.sender === node('A').id))
  // the first message went before the stream had negotiated anything: sealed; the rest unsealed
  assert.is(svc('A').stats.unsealedSent, 3)
  assert.is(svc('B').stats.unsealedReceived, 3)
  // k = 2: the direct copy unsealed, the relayed one sealed to B and signed (R can check it, not read it)
  const r = await svc('A').send(node('B').id, text('both ways'), { k: 2 })
  await waitUntil('both copies', () => svc('B').stats.received + svc('B').stats.duplicates >= 6, { ms: 15_000, everyMs: 10 })
  assert.is(svc('B').stats.received, 5, 'delivered once')
  assert.is(svc('B').stats.duplicates, 1, 'the other copy was a duplicate of the same message id')
  assert.is(svc('A').stats.unsealedSent, 4)
  const copy = relayed.find(e => Buffer.from(e.messageId).toString('hex') === r.messageId)
  assert.ok(copy !== undefined, 'one copy went through R')
  assert.is(copy.nonce.length, 12)
  assert.is(copy.payload.length, 0, 'no clear payload through a relay')
  assert.ok(!Buffer.from(copy.ciphertext).includes(Buffer.from('both ways')), 'R sees no plaintext')
  assert.is(copy.signature.length, 64)
  assert.ok(checkEnvelope(copy, { now: Date.now() }).ok)
  await waitUntil('the late copy settled', () => svc('A').copiesInFlight === 0, { ms: 15_000, everyMs: 10 })
})

test('an older recipient (no /dbc/relay/1.1.0) gets sealed direct copies', async () => {
  const before = svc('A').stats.unsealedSent
  for (let i = 0; i < 4; i++) await svc('A').send(node('OLD').id, text(`old ${i}`), { k: 1 })
  assert.equal((inbox.get('OLD') ?? []).map(m => new TextDecoder().decode(m.payload)), ['old 0', 'old 1', 'old 2', 'old 3'])
  assert.is(svc('A').stats.unsealedSent, before, 'nothing unsealed went to it')
  assert.is(svc('OLD').stats.unsealedReceived, 0)
})

test('a newer recipient takes an older sender\'s sealed, unsigned direct copy on /dbc/relay/1.0.0', async () => {
  const stream = await node('EVE').node.dialProtocol(node('B').node.peerId, RELAY_PROTOCOL)
  const lp = lpStream(stream)
  const env = sealEnvelope({ senderSecretKey: node('EVE').secretKey, sender: bytesOf('EVE'), recipient: bytesOf('B'), payload: text('from an older sender'), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o), mode: 'static', sign: false })
  await lp.write(frameBody(relayRequestFrameOf(env, 0, 0)))
  const ack = decodeAck((await lp.read()).subarray())
  assert.is(ack.status, AckStatus.OK, ack.reason)
  assert.ok((inbox.get('B') ?? []).some(m => new TextDecoder().decode(m.payload) === 'from an older sender' && m.sender === node('EVE').id))
  await stream.close()
})

test('an unsealed copy handed over by anyone but its sender is refused and charged; relays refuse to forward one', async () => {
  const received = svc('B').stats.received
  // EVE hands B an unsealed copy that names A as its sender: only A's own connection could prove that
  const forged = unsealedEnvelope({ sender: bytesOf('A'), recipient: bytesOf('B'), payload: text('pay EVE'), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o) })
  const ack = await svc('EVE').request(node('B').id, `${Buffer.from(forged.messageId).toString('hex')}/0`, dbc.envelope.v1.RelayRequest.encode({ envelope: forged, hopsLeft: 0, pathId: 0 }).finish(), 3000)
  assert.is(ack.status, AckStatus.REJECTED)
  assert.is(ack.reason, 'forged')
  assert.ok(svc('B').scores.score(Date.now(), node('EVE').id) < 0, 'EVE was charged')
  // EVE asks R to forward an unsealed copy of its own to B: R would hand B a clear payload that B must not take from R
  const relayedBefore = svc('R').stats.relayed
  const own = unsealedEnvelope({ sender: bytesOf('EVE'), recipient: bytesOf('B'), payload: text('via R'), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o) })
  const ack2 = await svc('EVE').request(node('R').id, `${Buffer.from(own.messageId).toString('hex')}/1`, dbc.envelope.v1.RelayRequest.encode({ envelope: own, hopsLeft: 1, pathId: 1 }).finish(), 3000)
  assert.is(ack2.status, AckStatus.REJECTED)
  assert.is(ack2.reason, 'malformed')
  assert.is(svc('R').stats.relayed, relayedBefore, 'not forwarded')
  assert.is(svc('B').stats.received, received, 'B took neither')
})

test('after a stream\'s reset the peer\'s version stands: the next copy goes unsealed on the new stream, or, to a peer that went back to 1.0.0, is not written and goes sealed', async () => {
  // B keeps 1.1.0: the connection (and the stream on it) is closed, the next message re-dials
  await svc('A').send(node('B').id, text('before the reset'), { k: 1 })
  const sent = svc('A').stats.unsealedSent; const got = svc('B').stats.unsealedReceived
  await node('A').node.hangUp(node('B').node.peerId)
  await svc('A').send(node('B').id, text('after the reset'), { k: 1 })
  assert.is(svc('A').stats.unsealedSent, sent + 1, 'the first copy on the new stream went unsealed')
  assert.is(svc('B').stats.unsealedReceived, got + 1)
  // DOWN spoke 1.1.0, then restarts as an older version (1.0.0 only)
  for (let i = 0; i < 3; i++) await svc('A').send(node('DOWN').id, text(`down ${i}`), { k: 1 })
  assert.is(svc('DOWN').stats.unsealedReceived, 2)
  await node('DOWN').node.unhandle(RELAY_PROTOCOL_UNSEALED)
  await node('A').node.hangUp(node('DOWN').node.peerId)
  const r = await svc('A').send(node('DOWN').id, text('to the older version'), { k: 1 })
  assert.ok(r.attempts >= 1)
  assert.ok((inbox.get('DOWN') ?? []).some(m => new TextDecoder().decode(m.payload) === 'to the older version'), 'delivered')
  assert.is(svc('DOWN').stats.unsealedReceived, 2, 'sealed: the unsealed copy was not written on the 1.0.0 stream')
})

test.run()
