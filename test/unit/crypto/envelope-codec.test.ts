// The hand-written hot-path encoders must write exactly the bytes protobufjs writes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, openEnvelope, envelopeAad, type Envelope } from '../../../src/crypto/index.js'
import { nobleSuite } from '../../../src/crypto/suite.js'
import { encodeEnvelopeFast, relayRequestFrameBytes, relayRequestFrameOf, encodedEnvelopeSize, ackFrameBytes, frameBody, directFrameAround, setFrameIds } from '../../../src/crypto/envelope-codec.js'
import { encodeFrame } from '../../../src/wire/frame.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import $protobuf from 'protobufjs/minimal.js'

const rng = createRng(11)
const party = (seed: number): { secretKey: Uint8Array, peerId: Uint8Array } => {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}
const alice = party(1); const bob = party(2)
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const generated = (e: dbc.envelope.v1.Envelope.$Properties): Uint8Array => dbc.envelope.v1.Envelope.encode(e).finish()

function seal (over: Partial<Parameters<typeof sealEnvelope>[0]> = {}): Envelope {
  return sealEnvelope({ senderSecretKey: alice.secretKey, sender: alice.peerId, recipient: bob.peerId, payload: rng.bytes(new Uint8Array(300)), expiresAt: 1_700_000_030_000, random: rng.bytes, ...over })
}

test('sealed envelopes encode to the generated encoder\'s bytes (static/ephemeral, signed/unsigned, odd field values)', () => {
  const cases: Envelope[] = [
    seal(), seal({ mode: 'static' }), seal({ mode: 'static', sign: false }), seal({ sequence: 300, contentType: 15 }),
    seal({ sequence: 0xffffffff, contentType: 1, payload: new Uint8Array(0) }), seal({ payload: rng.bytes(new Uint8Array(200_000)) })
  ]
  const odd = seal(); odd.expiresAt = -0; cases.push(odd)
  const neg = seal(); neg.expiresAt = -12.5; cases.push(neg)
  const nan = seal(); nan.expiresAt = NaN; cases.push(nan)
  const empty = dbc.envelope.v1.Envelope.create({}); cases.push(empty)
  for (const e of cases) assert.is(hex(encodeEnvelopeFast(e)), hex(generated(e)))
})

test('decoded envelopes (also with unknown fields) encode like the generated encoder', () => {
  const bytes = generated(seal())
  const w = $protobuf.Writer.create(); w.uint32((99 << 3) | 2).bytes(new Uint8Array([1, 2, 3]))
  const withUnknown = new Uint8Array([...bytes, ...w.finish()])
  for (const b of [bytes, withUnknown]) {
    const e = dbc.envelope.v1.Envelope.decode(b)
    assert.is(hex(encodeEnvelopeFast(e)), hex(generated(e)))
  }
  // a field of the wrong type goes to the generated encoder too (which then decides)
  const weird = seal() as unknown as Record<string, unknown>; weird.sequence = 1.5
  assert.is(hex(encodeEnvelopeFast(weird as unknown as Envelope)), hex(generated(weird as unknown as Envelope)))
})

test('relay request frames are the framed RelayRequest the generated encoder writes', () => {
  const env = generated(seal())
  for (const [hops, path] of [[0, 0], [1, 0], [2, 7], [200, 70_000]]) {
    const want = encodeFrame($protobuf.Writer.create().uint32(10).bytes(env).uint32(16).uint32(hops).uint32(24).uint32(path).finish())
    const got = relayRequestFrameBytes(env, hops, path)
    assert.is(hex(got), hex(want))
    // the envelope written straight into the frame: the same bytes
    const decoded = dbc.envelope.v1.Envelope.decode(env)
    assert.is(hex(relayRequestFrameOf(decoded, hops, path)), hex(want))
    assert.is(encodedEnvelopeSize(decoded), env.length)
    // one with unknown fields goes through the generated encoder, framed the same way
    const w = $protobuf.Writer.create(); w.uint32((99 << 3) | 2).bytes(new Uint8Array([1, 2, 3]))
    const odd = dbc.envelope.v1.Envelope.decode(new Uint8Array([...env, ...w.finish()]))
    assert.is(hex(relayRequestFrameOf(odd, hops, path)), hex(relayRequestFrameBytes(generated(odd), hops, path)))
    assert.is(encodedEnvelopeSize(odd), generated(odd).length)
    const rr = dbc.envelope.v1.RelayRequest.decode(frameBody(got))
    assert.is(rr.hopsLeft, hops); assert.is(rr.pathId, path)
    assert.is(hex(generated(rr.envelope as Envelope)), hex(env))
  }
  // a large envelope: a multi-byte length prefix
  const big = generated(seal({ payload: new Uint8Array(300_000) }))
  const f = relayRequestFrameBytes(big, 1, 2)
  assert.is(hex(frameBody(f)), hex($protobuf.Writer.create().uint32(10).bytes(big).uint32(16).uint32(1).uint32(24).uint32(2).finish()))
})

test('ack frames match the generated encoder; acks with a reason are left to it', () => {
  const id = rng.bytes(new Uint8Array(16))
  const acks: Array<dbc.envelope.v1.Ack.$Properties> = [
    { messageId: id, pathId: 0, status: 0 }, { messageId: id, pathId: 3, status: 1 }, { messageId: id, pathId: 300, status: 3, signature: rng.bytes(new Uint8Array(32)) },
    { messageId: id, pathId: 1, status: 0, signature: rng.bytes(new Uint8Array(64)) }, {}
  ]
  for (const a of acks) {
    const ack = dbc.envelope.v1.Ack.create(a)
    assert.is(hex(ackFrameBytes(ack) as Uint8Array), hex(encodeFrame(dbc.envelope.v1.Ack.encode(ack).finish())))
  }
  assert.is(ackFrameBytes({ messageId: id, status: 2, reason: 'forged' }), undefined)
})

test('a message sealed straight into its direct frame: relayRequestFrameOf\'s bytes, and it opens', () => {
  for (const suite of [undefined, nobleSuite]) {
    for (const [hops, path, payload] of [[0, 0, 300], [0, 3, 0], [1, 127, 5000], [0, 1, 20_000]]) {
      let frame: Uint8Array | undefined
      const e = seal({ mode: 'static', sign: false, suite, sequence: 300, contentType: 2, payload: rng.bytes(new Uint8Array(payload)), place: (env, n) => { const f = directFrameAround(env, n); frame = f?.frame; return f?.ciphertext } })
      if (frame === undefined) throw new Error('no frame laid out')
      assert.is(e.ciphertext.buffer, frame.buffer, 'the ciphertext is a view of the frame')
      assert.ok(setFrameIds(frame, hops, path))
      assert.is(hex(frame), hex(relayRequestFrameOf(e, hops, path)), `${hops}/${path}/${payload}`)
      const opened = openEnvelope(e, { now: 1_700_000_000_000, recipient: bob.peerId, recipientSecretKey: bob.secretKey, verifySignature: false, deliveredBySender: true, suite })
      assert.ok(opened.ok)
    }
  }
  // ids that do not fit one byte are refused and leave the frame as it was
  const f = directFrameAround(dbc.envelope.v1.Envelope.create({ messageId: new Uint8Array(16) }), 32) as { frame: Uint8Array }
  const before = hex(f.frame)
  for (const [hops, path] of [[128, 0], [0, 128], [-1, 0], [0, 1.5], [0, NaN]]) assert.not.ok(setFrameIds(f.frame, hops, path))
  assert.is(hex(f.frame), before)
  // only an envelope not yet sealed or signed is laid out; an odd one is left to the generated encoder
  assert.is(directFrameAround(seal({ mode: 'static', sign: false }), 32), undefined)
  const signedOnly = dbc.envelope.v1.Envelope.create({ signature: new Uint8Array(64) })
  assert.is(directFrameAround(signedOnly, 32), undefined)
  const weird = dbc.envelope.v1.Envelope.create({}) as unknown as Record<string, unknown>; weird.sequence = 1.5
  assert.is(directFrameAround(weird as unknown as Envelope, 32), undefined)
  assert.is(directFrameAround(dbc.envelope.v1.Envelope.create({}), 0), undefined)
  // a signed envelope never asks for a place
  let asked = false
  seal({ mode: 'static', place: () => { asked = true; return undefined } })
  assert.not.ok(asked)
  // a place of the wrong length is a local bug: thrown
  assert.throws(() => seal({ mode: 'static', sign: false, place: () => new Uint8Array(3) }), /wrong length/)
})

test('the AAD keeps its layout (domain, length-prefixed ids, big-endian expiry/sequence/type)', () => {
  const e = seal({ mode: 'static', sequence: 0x01020304, contentType: 15 })
  const aad = envelopeAad(e)
  const domain = new TextEncoder().encode('dbc/envelope/v1/sig\0')
  assert.is(hex(aad.subarray(0, domain.length)), hex(domain))
  let o = domain.length
  for (const part of [e.sender, e.recipient, e.messageId, e.ephemeralKey, e.nonce]) {
    assert.is((aad[o] << 8) | aad[o + 1], part.length)
    assert.is(hex(aad.subarray(o + 2, o + 2 + part.length)), hex(part))
    o += 2 + part.length
  }
  const view = new DataView(aad.buffer, aad.byteOffset)
  assert.is(view.getFloat64(o), e.expiresAt)
  assert.is(view.getUint32(o + 8), 0x01020304)
  assert.is(view.getUint32(o + 12), 15)
  assert.is(aad.length, o + 16)
})

test.run()
