// Acks that come back through a relay, between real libp2p nodes (one process): for a static-mode
// envelope the recipient MACs its ack with the pair's ack key (no Ed25519 sign + verify); the
// sender accepts only an ack it can check, so a relay that claims deliveries it never made is
// charged and the message fails instead of counting as delivered.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { startNode, connect, type TestNode } from './nodes.js'
import { EnvelopeService, RELAY_PROTOCOL, type ReceivedMessage } from '../../../src/net/overlay/envelopes.js'
import { sealEnvelope, staticAckKey, verifyAckMac, verifyAck, ACK_MAC_BYTES, AckStatus } from '../../../src/crypto/index.js'
import { FramedStream } from '../../../src/net/framed.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import type { Offence } from '../../../src/core/routing/index.js'
import { createRng } from '../../../src/core/rng.js'

const nodes: TestNode[] = []
const stops: Array<() => Promise<void>> = []
test.after(async () => {
  for (const s of stops) await s().catch(() => {})
  for (const n of nodes) { try { await n.node.stop() } catch {} }
})

async function trio (): Promise<{ a: TestNode, b: TestNode, r: TestNode }> {
  const [a, b, r] = [await startNode(), await startNode(), await startNode()]
  nodes.push(a, b, r)
  await connect(a, r); await connect(r, b)
  return { a, b, r }
}

test('through an honest relay: delivered once, the ack is a pair-key MAC the sender checks', async () => {
  const { a, b, r } = await trio()
  const inbox: ReceivedMessage[] = []
  const [sa, sb, sr] = [new EnvelopeService(a.node, { secretKey: a.secretKey, ackTimeoutMs: 2000 }), new EnvelopeService(b.node, { secretKey: b.secretKey, onMessage: m => inbox.push(m) }), new EnvelopeService(r.node, { secretKey: r.secretKey })]
  for (const s of [sa, sb, sr]) { await s.start(); stops.push(async () => { await s.stop() }) }
  const receipt = await sa.send(b.id, new TextEncoder().encode('hello via relay'), { k: 1, direct: false })
  assert.is(receipt.via, r.id)
  assert.is(inbox.length, 1)
  assert.is(new TextDecoder().decode(inbox[0].payload), 'hello via relay')
  assert.is(sr.stats.relayed, 1)
  // the ack itself, as the sender sees it: a crafted static copy handed to the relay
  const aBytes = a.node.peerId.toMultihash().bytes; const bBytes = b.node.peerId.toMultihash().bytes
  const env = sealEnvelope({ senderSecretKey: a.secretKey, sender: aBytes, recipient: bBytes, payload: new Uint8Array(8), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o), mode: 'static' })
  const frame = dbc.envelope.v1.RelayRequest.encode({ envelope: env, hopsLeft: 1, pathId: 4 }).finish()
  const ack = await sa.request(r.id, `${Buffer.from(env.messageId).toString('hex')}/4`, frame, 5000)
  assert.is(ack.status, AckStatus.OK)
  assert.is(ack.signature.length, ACK_MAC_BYTES)
  assert.ok(verifyAckMac(staticAckKey(a.secretKey, aBytes, bBytes, true) as Uint8Array, ack))
  // an ephemeral-mode envelope's ack is still Ed25519-signed
  const eph = sealEnvelope({ senderSecretKey: a.secretKey, sender: aBytes, recipient: bBytes, payload: new Uint8Array(8), expiresAt: Date.now() + 10_000, random: o => crypto.getRandomValues(o), mode: 'ephemeral' })
  const ack2 = await sa.request(r.id, `${Buffer.from(eph.messageId).toString('hex')}/5`, dbc.envelope.v1.RelayRequest.encode({ envelope: eph, hopsLeft: 1, pathId: 5 }).finish(), 5000)
  assert.is(ack2.status, AckStatus.OK)
  assert.is(ack2.signature.length, 64)
  assert.ok(verifyAck(bBytes, ack2))
})

test('a relay that acks OK with a made-up MAC is charged as forged and the message is not counted delivered', async () => {
  const { a, b, r } = await trio()
  // the relay answers every copy with OK and 32 random bytes, and forwards nothing
  let copies = 0
  await r.node.handle(RELAY_PROTOCOL, (stream: Stream) => {
    const framed = new FramedStream(stream, { maxFrameBytes: 1 << 20 })
    void (async () => {
      for (;;) {
        const f = await framed.read().catch(() => undefined)
        if (f === undefined) return
        copies++
        const req = dbc.envelope.v1.RelayRequest.decode(f)
        const fake = dbc.envelope.v1.Ack.create({ messageId: req.envelope?.messageId, pathId: req.pathId, status: AckStatus.OK, signature: crypto.getRandomValues(new Uint8Array(ACK_MAC_BYTES)) })
        await framed.write(dbc.envelope.v1.Ack.encode(fake).finish()).catch(() => {})
      }
    })()
  }, { runOnLimitedConnection: true })
  const penalties: Array<{ peer: string, offence: Offence }> = []
  const inbox: ReceivedMessage[] = []
  const sa = new EnvelopeService(a.node, { secretKey: a.secretKey, ackTimeoutMs: 300, maxAttempts: 2, disconnectBadPeers: false, onPenalty: (peer, offence) => penalties.push({ peer, offence }) })
  const sb = new EnvelopeService(b.node, { secretKey: b.secretKey, onMessage: m => inbox.push(m) })
  for (const s of [sa, sb]) { await s.start(); stops.push(async () => { await s.stop() }) }
  const err = await sa.send(b.id, new Uint8Array(16), { k: 1, direct: false }).then(() => undefined, (e: Error) => e)
  assert.ok(err instanceof Error, 'not delivered')
  assert.match(err.message, 'not delivered')
  assert.ok(copies >= 1)
  assert.ok(penalties.some(p => p.peer === r.id && p.offence === 'forged'), `the relay was charged: ${JSON.stringify(penalties)}`)
  assert.is(sa.stats.delivered, 0)
  assert.is(inbox.length, 0)
})

test('every mangled RelayRequest frame gets an ack (never a throw); whole frames still decode the same as the generated decoder', async () => {
  const { a, b, r } = await trio()
  const sb = new EnvelopeService(b.node, { secretKey: b.secretKey, disconnectBadPeers: false })
  const sr = new EnvelopeService(r.node, { secretKey: r.secretKey, disconnectBadPeers: false })
  for (const s of [sb, sr]) { await s.start(); stops.push(async () => { await s.stop() }) }
  const rng = createRng(99)
  const aBytes = a.node.peerId.toMultihash().bytes; const bBytes = b.node.peerId.toMultihash().bytes
  // a copy: protobufjs hands back a Buffer, whose slice() is a view
  const good = new Uint8Array(dbc.envelope.v1.RelayRequest.encode({ envelope: sealEnvelope({ senderSecretKey: a.secretKey, sender: aBytes, recipient: bBytes, payload: new Uint8Array(30), expiresAt: Date.now() + 60_000, random: o => crypto.getRandomValues(o), mode: 'static' }), hopsLeft: 1, pathId: 2 }).finish())
  const handle = async (svc: EnvelopeService, frame: Uint8Array): Promise<dbc.envelope.v1.Ack> => await (svc as unknown as { handleFrame: (from: string, f: Uint8Array) => Promise<dbc.envelope.v1.Ack> }).handleFrame(a.id, frame)
  let refused = 0
  for (let i = 0; i < 400; i++) {
    let f: Uint8Array
    const kind = i % 4
    if (kind === 0) f = rng.bytes(new Uint8Array(rng.int(200)))
    else if (kind === 1) f = good.subarray(0, rng.int(good.length))
    else if (kind === 2) { f = new Uint8Array(good); for (let j = 0; j < 1 + rng.int(4); j++) f[rng.int(f.length)] ^= 1 << rng.int(8) }
    else { f = new Uint8Array(good.length + 6); f.set(good); f.set([0x28, 0x07, 0x32, 0x02, 0x01, 0x02], good.length) } // unknown fields 5 (varint) and 6 (bytes) appended
    for (const svc of [sb, sr]) {
      const ack = await handle(svc, f)
      assert.ok(ack instanceof dbc.envelope.v1.Ack, `frame ${i}: an ack`)
      if (ack.status === AckStatus.REJECTED) refused++
      if (kind === 3) assert.ok(ack.status !== AckStatus.REJECTED || ack.reason === 'replayed', `unknown fields are skipped, not refused: ${ack.reason}`)
    }
  }
  assert.ok(refused > 100, `garbage was refused (${refused})`)
})

test.run()
