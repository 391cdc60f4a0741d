// The hand-written hot-path decoders (decodeEnvelope, decodeAck) must read exactly what the
// generated decoders read, throw where they throw, and give every envelope (and every ack) one
// object shape: every field set, in one order.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, unsealedEnvelope, encodeEnvelope, type Envelope } from '../../../src/crypto/index.js'
import { decodeEnvelope, decodeAck, encodeEnvelopeFast } from '../../../src/crypto/envelope-codec.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import $protobuf from 'protobufjs/minimal.js'

const rng = createRng(23)
const party = (seed: number): { secretKey: Uint8Array, peerId: Uint8Array } => {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}
const alice = party(1); const bob = party(2)
const E = dbc.envelope.v1.Envelope
const A = dbc.envelope.v1.Ack
const ENVELOPE_FIELDS = ['sender', 'recipient', 'messageId', 'expiresAt', 'sequence', 'contentType', 'ephemeralKey', 'nonce', 'ciphertext', 'signature', 'payload']
const ACK_FIELDS = ['messageId', 'pathId', 'status', 'reason', 'signature']

function seal (over: Partial<Parameters<typeof sealEnvelope>[0]> = {}): Envelope {
  return sealEnvelope({ senderSecretKey: alice.secretKey, sender: alice.peerId, recipient: bob.peerId, payload: rng.bytes(new Uint8Array(256)), expiresAt: 1_700_000_030_000, sequence: 4, contentType: 15, random: rng.bytes, ...over })
}

/** Field by field (bytes by content, numbers with Object.is), and the unknown fields kept. */
function same (got: Record<string, unknown>, want: Record<string, unknown>, fields: string[], what: string): void {
  for (const f of fields) {
    const g = got[f]; const w = want[f]
    if (g instanceof Uint8Array && w instanceof Uint8Array) assert.is(Buffer.from(g).toString('hex'), Buffer.from(w).toString('hex'), `${what}: ${f}`)
    else assert.ok(Object.is(g, w), `${what}: ${f} ${String(g)} vs ${String(w)}`)
  }
  assert.equal(got.$unknowns, want.$unknowns, `${what}: $unknowns`)
}

/** What a decoder returns or throws, for comparing two of them. */
function outcome<T> (f: () => T): { ok: true, value: T } | { ok: false, error: string } {
  try { return { ok: true, value: f() } } catch (err) { return { ok: false, error: String(err) } }
}

test('sealed envelopes of every kind decode as the generated decoder reads them, into one shape', () => {
  const cases = [
    seal({ mode: 'static', sign: false }), seal({ mode: 'static' }), seal(), seal({ sequence: 0, contentType: 0 }),
    seal({ payload: new Uint8Array(0) }), seal({ sequence: 0xffffffff, payload: rng.bytes(new Uint8Array(70_000)) }),
    E.create({}), E.create({ expiresAt: -0 }), E.create({ expiresAt: -12.5 }),
    // an unsealed direct copy (the payload in the clear, field 11), and one with an empty payload
    unsealedEnvelope({ sender: seal().sender, recipient: seal().recipient, payload: rng.bytes(new Uint8Array(300)), expiresAt: 1e12, sequence: 3, contentType: 1, random: rng.bytes }),
    unsealedEnvelope({ sender: seal().sender, recipient: seal().recipient, payload: new Uint8Array(0), expiresAt: 1e12, random: rng.bytes })
  ]
  assert.equal(Object.keys(cases[cases.length - 1]), ENVELOPE_FIELDS, 'unsealedEnvelope sets every field, in the same order')
  const sealedKeys = Object.keys(seal({ mode: 'static', sign: false }))
  assert.equal(sealedKeys, ENVELOPE_FIELDS, 'sealEnvelope sets every field, in this order')
  for (const [i, e] of cases.entries()) {
    const bytes = encodeEnvelope(e)
    const got = decodeEnvelope(bytes)
    same(got as unknown as Record<string, unknown>, E.decode(bytes) as unknown as Record<string, unknown>, ENVELOPE_FIELDS, `case ${i}`)
    assert.ok(got instanceof E)
    // the same own fields in the same order as a sealed envelope, whatever was on the wire
    assert.equal(Object.keys(got), sealedKeys, `case ${i}: shape`)
    // and it encodes back to the same bytes
    assert.is(Buffer.from(encodeEnvelopeFast(got)).toString('hex'), Buffer.from(bytes).toString('hex'))
  }
})

test('odd envelopes: unknown fields, wrong wire types, repeats, truncation and junk decode (or throw) as the generated decoder does', () => {
  const good = encodeEnvelope(seal())
  const w = (f: (w: $protobuf.Writer) => void): Uint8Array => { const x = $protobuf.Writer.create(); f(x); return x.finish() }
  const odd: Uint8Array[] = [
    new Uint8Array([...good, ...w(x => x.uint32((99 << 3) | 2).bytes(new Uint8Array([1, 2, 3])))]), // unknown field
    new Uint8Array([...good, ...w(x => x.uint32((5 << 3) | 2).bytes(new Uint8Array([7])))]), // sequence with the wrong wire type
    new Uint8Array([...good, ...w(x => x.uint32((1 << 3) | 2).bytes(new Uint8Array([9, 9])))]), // sender again: the last wins
    new Uint8Array([...good, ...w(x => x.uint32((9 << 3) | 2).bytes(new Uint8Array(0)))]), // an empty signature on the wire
    new Uint8Array([...good, ...w(x => x.uint32((4 << 3) | 1).double(0))]), // expiry 0 on the wire
    new Uint8Array([...good, 0x8a, 0x00, 0x01, 0x05]), // sender's tag written in two bytes
    new Uint8Array([...good, 0x00]), // field number 0
    new Uint8Array([...good, 0x0c]), // end group with no start
    good.subarray(0, good.length - 3), good.subarray(0, 1), new Uint8Array(0)
  ]
  // and random mutations of a good one
  for (let i = 0; i < 400; i++) {
    const b = Uint8Array.from(good)
    const n = 1 + rng.int(4)
    for (let k = 0; k < n; k++) b[rng.int(b.length)] = rng.int(256)
    odd.push(rng.int(4) === 0 ? b.subarray(0, rng.int(b.length)) : b)
  }
  let threw = 0; let decoded = 0
  for (const [i, bytes] of odd.entries()) {
    const got = outcome(() => decodeEnvelope(bytes)); const want = outcome(() => E.decode(bytes))
    assert.is(got.ok, want.ok, `case ${i}: ${got.ok ? 'decoded' : got.error} vs ${want.ok ? 'decoded' : want.error}`)
    if (!got.ok || !want.ok) { threw++; assert.is(got.ok ? '' : got.error, want.ok ? '' : want.error); continue }
    decoded++
    same(got.value as unknown as Record<string, unknown>, want.value as unknown as Record<string, unknown>, ENVELOPE_FIELDS, `case ${i}`)
  }
  assert.ok(threw > 0 && decoded > 100, `both kinds were tried (${threw} threw, ${decoded} decoded)`)
})

test('acks of every kind decode as the generated decoder reads them, into one shape; odd ones likewise', () => {
  const id = rng.bytes(new Uint8Array(16))
  const kinds: Array<dbc.envelope.v1.Ack.$Properties> = [
    { messageId: id }, { messageId: id, pathId: 3, status: 1 }, { messageId: id, pathId: 1, status: 0, signature: rng.bytes(new Uint8Array(32)) },
    { messageId: id, pathId: 2, status: 2, reason: 'forged' }, { messageId: id, status: 3, reason: 'the relay holds no connection to the recipient' },
    { messageId: id, status: -1 as dbc.envelope.v1.Ack.Status }, {}
  ]
  const odd: Uint8Array[] = []
  for (const [i, k] of kinds.entries()) {
    const bytes = A.encode(A.create(k)).finish()
    const got = decodeAck(bytes)
    same(got as unknown as Record<string, unknown>, A.decode(bytes) as unknown as Record<string, unknown>, ACK_FIELDS, `kind ${i}`)
    assert.equal(Object.keys(got), ACK_FIELDS, `kind ${i}: shape`)
    for (let m = 0; m < 60; m++) {
      const b = Uint8Array.from(bytes)
      if (b.length > 0) b[rng.int(b.length)] = rng.int(256)
      odd.push(m % 5 === 0 ? new Uint8Array([...b, (9 << 3) | 2, 1, 1]) : b)
    }
  }
  let threw = 0
  for (const [i, bytes] of odd.entries()) {
    const got = outcome(() => decodeAck(bytes)); const want = outcome(() => A.decode(bytes))
    assert.is(got.ok, want.ok, `odd ack ${i}`)
    if (!got.ok || !want.ok) { threw++; assert.is(got.ok ? '' : got.error, want.ok ? '' : want.error); continue }
    same(got.value as unknown as Record<string, unknown>, want.value as unknown as Record<string, unknown>, ACK_FIELDS, `odd ack ${i}`)
  }
  assert.ok(threw > 0, 'some odd acks did not decode')
})

test.run()
