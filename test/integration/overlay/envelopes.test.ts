// Sealed multi-path messages between real libp2p nodes on 127.0.0.1 (one process).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startNode, connect, type TestNode } from './nodes.js'
import { waitUntil } from '../../helpers/wait.js'
import { EnvelopeService, RELAY_PROTOCOL, type ReceivedMessage } from '../../../src/net/overlay/envelopes.js'
import { sealEnvelope, openEnvelope, checkEnvelope, encodeEnvelope, AckStatus, type Envelope } from '../../../src/crypto/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'

const nodes: TestNode[] = []
const services: EnvelopeService[] = []
const inbox = new Map<string, ReceivedMessage[]>()
const relayed = new Map<string, Envelope[]>()

// Locations: A in Paris, B in Berlin, relays spread so their cells differ.
const places: Record<string, { lat: number, lon: number }> = {}
const where = ['A', 'B', 'R1', 'R2', 'R3', 'EVE']
const coords = [[48.85, 2.35], [52.52, 13.4], [50.1, 8.7], [45.46, 9.19], [40.4, -3.7], [51.5, -0.12]]

function svc (name: string): EnvelopeService { return services[where.indexOf(name)] }
function node (name: string): TestNode { return nodes[where.indexOf(name)] }

test.before(async () => {
  for (let i = 0; i < where.length; i++) {
    const n = await startNode()
    nodes.push(n)
    places[n.id] = { lat: coords[i][0], lon: coords[i][1] }
    inbox.set(where[i], []); relayed.set(where[i], [])
  }
  for (let i = 0; i < where.length; i++) {
    const name = where[i]
    const s = new EnvelopeService(nodes[i].node, {
      secretKey: nodes[i].secretKey,
      location: places[nodes[i].id],
      locate: p => places[p],
      // stopped relays fail their copies at once (stream closed, refused), so the timeout only
      // bounds a slow path: 500 ms timed out healthy relayed copies on a loaded 2-core box
      ackTimeoutMs: 3000,
      maxEnvelopeBytes: 64 * 1024,
      onMessage: m => inbox.get(name)!.push(m),
      onRelay: e => relayed.get(name)!.push(e)
    })
    await s.start()
    services.push(s)
  }
  // everyone talks to everyone (a small full mesh)
  for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) await connect(nodes[i], nodes[j])
})

test.after(async () => {
  for (const s of services) await s.stop()
  for (const n of nodes) await n.node.stop()
})

test('k=2 (direct + relay) is delivered exactly once and acked', async () => {
  const payload = new TextEncoder().encode('task 1: sum 1..1e6')
  const r = await svc('A').send(node('B').id, payload, { k: 2 })
  assert.ok(r.latencyMs >= 0)
  await waitUntil('both copies', () => svc('B').stats.duplicates + svc('B').stats.received >= 2, { ms: 15_000, everyMs: 10 })
  const got = inbox.get('B')!
  assert.is(got.length, 1)
  assert.is(new TextDecoder().decode(got[0].payload), 'task 1: sum 1..1e6')
  // the receipt names the message as the recipient does (its id in hex, made when read), also as JSON
  assert.match(r.messageId, /^[0-9a-f]{32}$/)
  assert.is(r.messageId, got[0].messageId)
  assert.is((JSON.parse(JSON.stringify(r)) as { messageId: string }).messageId, got[0].messageId)
  assert.is(got[0].sender, node('A').id)
  assert.is(svc('B').stats.duplicates, 1)
  // the relayed copy was signed off the event loop before it left: a relay that verifies accepts it
  const copies = [...relayed.values()].flat().filter(e => Buffer.from(e.messageId).toString('hex') === r.messageId)
  assert.is(copies.length, 1, 'one relayed copy')
  assert.is(copies[0].signature.length, 64)
  assert.ok(checkEnvelope(copies[0], { now: Date.now() }).ok, 'its signature verifies')
  await waitUntil('the late copy settled', () => svc('A').copiesInFlight === 0, { ms: 15_000, everyMs: 10 })
})

test('a relay on one path is stopped mid-flight: delivered exactly once over the other paths', async () => {
  inbox.get('B')!.length = 0
  const before = svc('B').stats.received
  const sending = svc('A').send(node('B').id, new TextEncoder().encode('task 2'), { k: 2, direct: false })
  // stop the two preferred relays while their copies are in flight
  await Promise.all([node('R1').node.stop(), node('R2').node.stop()])
  const r = await sending
  await new Promise(resolve => setTimeout(resolve, 700))
  assert.is(inbox.get('B')!.length, 1, 'exactly once')
  assert.is(svc('B').stats.received - before, 1)
  assert.ok(r.via !== undefined, 'went through a relay')
})

test('a relay forwards ciphertext it can not read', async () => {
  const r3 = relayed.get('R3')!
  const all = [...relayed.get('R1')!, ...relayed.get('R2')!, ...r3, ...relayed.get('EVE')!]
  assert.ok(all.length > 0, 'some envelope was relayed')
  for (const e of all) {
    const relayNode = [node('R1'), node('R2'), node('R3'), node('EVE')]
    for (const rn of relayNode) {
      const asSelf = openEnvelope(e, { now: Date.now(), recipient: rn.node.peerId.toMultihash().bytes, recipientSecretKey: rn.secretKey })
      assert.is((asSelf as { reason: string }).reason, 'wrong-recipient')
      const pretend = openEnvelope(e, { now: Date.now(), recipient: e.recipient, recipientSecretKey: rn.secretKey })
      assert.is((pretend as { reason: string }).reason, 'undecryptable')
    }
  }
  assert.is(inbox.get('R3')!.length, 0)
})

function craft (over: Partial<Parameters<typeof sealEnvelope>[0]> = {}): Envelope {
  const eve = node('EVE'); const b = node('B')
  return sealEnvelope({ senderSecretKey: eve.secretKey, sender: eve.node.peerId.toMultihash().bytes, recipient: b.node.peerId.toMultihash().bytes, payload: new Uint8Array(10), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o), ...over })
}
async function eveSends (env: Envelope, pathId = 0): Promise<dbc.envelope.v1.Ack> {
  const frame = dbc.envelope.v1.RelayRequest.encode({ envelope: env, hopsLeft: 0, pathId }).finish()
  return await svc('EVE').request(node('B').id, `${Buffer.from(env.messageId).toString('hex')}/${pathId}`, frame, 2000)
}

test('tampered, replayed, expired and oversized envelopes are rejected and cost the sender score', async () => {
  const eve = node('EVE').id
  const b = svc('B')
  const score = (): number => b.scores.score(Date.now(), eve)
  const s0 = score() // may be a little above 0 if Eve relayed good copies earlier
  // replay: first copy is fine, the same copy again is a replay
  const good = craft()
  assert.is((await eveSends(good, 7)).status, AckStatus.OK)
  // an unsigned static-mode copy of A's handed over by Eve (as a relay would): the pair-key tag
  // proves A made it, so B takes it (src/crypto/envelope.ts)
  const unsigned = craft({ mode: 'static', sign: false, sender: node('A').node.peerId.toMultihash().bytes, senderSecretKey: node('A').secretKey })
  assert.is((await eveSends(unsigned)).status, AckStatus.OK)
  const replay = await eveSends(good, 7)
  assert.is(replay.status, AckStatus.REJECTED)
  assert.is(replay.reason, 'replayed')
  const s1 = score()
  assert.ok(s1 < s0 - 10, `score after replay ${s1}`)
  // tampered ciphertext
  const t = dbc.envelope.v1.Envelope.decode(encodeEnvelope(craft()))
  t.ciphertext[0] ^= 1
  const forged = await eveSends(t)
  assert.is(forged.reason, 'forged')
  const s2a = score()
  assert.ok(s2a < s1)
  // a sender field that is not a peer id at all: answered (not dropped) and charged
  const junk = dbc.envelope.v1.Envelope.decode(encodeEnvelope(craft()))
  junk.sender = new Uint8Array([0xff, 0xff, 0xff, 0xff])
  const junkAck = await eveSends(junk)
  assert.is(junkAck.reason, 'malformed')
  const s2 = score()
  assert.ok(s2 < s2a, 'a junk sender costs score')
  // expired
  const expired = await eveSends(craft({ expiresAt: Date.now() - 1 }))
  assert.is(expired.reason, 'expired')
  assert.ok(score() < s2)
  // oversized: B accepts at most 64 KiB
  const s3 = score()
  const big = craft({ payload: new Uint8Array(60 * 1024 + 4096) })
  const ack = await eveSends(big).catch(err => err as Error)
  assert.ok(ack instanceof Error || ack.reason === 'oversized', 'oversized copy refused')
  assert.ok(score() < s3, 'oversized costs score')
  assert.is(inbox.get('B')!.filter(m => m.sender === eve).length, 1, 'only the one good envelope was delivered')
  // keep misbehaving until B disconnects Eve
  for (let i = 0; i < 4 && node('B').node.getConnections(node('EVE').node.peerId).length > 0; i++) {
    const t2 = dbc.envelope.v1.Envelope.decode(encodeEnvelope(craft()))
    t2.ciphertext[1] ^= 1
    await eveSends(t2).catch(() => {})
  }
  await waitUntil('B to hang up on Eve', () => node('B').node.getConnections(node('EVE').node.peerId).length === 0, { ms: 15_000, everyMs: 10 })
  assert.ok(b.scores.isBanned(Date.now(), eve))
})

test('a relay forwards only to a recipient it is connected to: it does not dial for a stranger', async () => {
  const x = await startNode()
  try {
    await connect(node('A'), x)
    const eve = node('A') // EVE is banned by now (the previous test)
    const env = sealEnvelope({ senderSecretKey: eve.secretKey, sender: eve.node.peerId.toMultihash().bytes, recipient: x.node.peerId.toMultihash().bytes, payload: new Uint8Array(10), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o), sign: true })
    const frame = dbc.envelope.v1.RelayRequest.encode({ envelope: env, hopsLeft: 1, pathId: 7 }).finish()
    const ack = await svc('A').request(node('R3').id, `${Buffer.from(env.messageId).toString('hex')}/7`, frame, 2000)
    assert.is(ack.status, AckStatus.UNREACHABLE)
    assert.match(ack.reason, 'no connection to the recipient')
    assert.is(node('R3').node.getConnections(x.node.peerId).length, 0, 'the relay did not dial the recipient')
    // once the relay holds a connection, the same kind of copy is forwarded and delivered
    await connect(node('R3'), x)
    const svcX = new EnvelopeService(x.node, { secretKey: x.secretKey, ackTimeoutMs: 500 })
    await svcX.start()
    const env2 = sealEnvelope({ senderSecretKey: eve.secretKey, sender: eve.node.peerId.toMultihash().bytes, recipient: x.node.peerId.toMultihash().bytes, payload: new Uint8Array(10), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o), sign: true })
    const frame2 = dbc.envelope.v1.RelayRequest.encode({ envelope: env2, hopsLeft: 1, pathId: 8 }).finish()
    const ack2 = await svc('A').request(node('R3').id, `${Buffer.from(env2.messageId).toString('hex')}/8`, frame2, 5000)
    assert.is(ack2.status, AckStatus.OK)
    await svcX.stop()
  } finally {
    await x.node.stop()
  }
})

test('protocol id is stable', () => {
  assert.is(RELAY_PROTOCOL, '/dbc/relay/1.0.0')
})

test.run()
