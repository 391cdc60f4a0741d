import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../src/core/rng.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { sealEnvelope, unsealedEnvelope, isUnsealed, signEnvelope, signEnvelopeAsync, openEnvelope, checkEnvelope, encodeEnvelope, nobleSuite, nodeSuite, type Envelope } from '../../../src/crypto/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'

const rng = createRng(7)
function party (seed: number): { secretKey: Uint8Array, peerId: Uint8Array } {
  const secretKey = createRng(seed).bytes(new Uint8Array(32))
  return { secretKey, peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(secretKey)) }
}
const alice = party(1); const bob = party(2); const relay = party(3)
const NOW = 1_700_000_000_000
const payload = new TextEncoder().encode('train shard 7 with lr=0.01')

function seal (over: Partial<Parameters<typeof sealEnvelope>[0]> = {}): Envelope {
  return sealEnvelope({ senderSecretKey: alice.secretKey, sender: alice.peerId, recipient: bob.peerId, payload, expiresAt: NOW + 30_000, sequence: 5, contentType: 1, random: rng.bytes, ...over })
}
const openAsBob = (e: Uint8Array | Envelope, now = NOW): ReturnType<typeof openEnvelope> =>
  openEnvelope(e, { now, recipient: bob.peerId, recipientSecretKey: bob.secretKey })

test('seal → encode → open round trip', () => {
  const bytes = encodeEnvelope(seal())
  const r = openAsBob(bytes)
  assert.ok(r.ok, r.ok ? '' : r.detail)
  if (!r.ok) return
  assert.equal(Array.from(r.payload), Array.from(payload))
  assert.equal(Array.from(r.sender), Array.from(alice.peerId))
  assert.is(r.sequence, 5)
  assert.is(r.contentType, 1)
  assert.is(r.messageId.length, 16)
})

test('the node and noble suites interoperate both ways', () => {
  for (const [s, o] of [[nodeSuite, nobleSuite], [nobleSuite, nodeSuite]]) {
    const e = seal({ suite: s })
    const r = openEnvelope(encodeEnvelope(e), { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, suite: o })
    assert.ok(r.ok, `${s.name} → ${o.name}`)
  }
})

test('tampering with any field is detected as forged', () => {
  const original = seal()
  const fields = ['sender', 'recipient', 'messageId', 'expiresAt', 'sequence', 'ephemeralKey', 'nonce', 'ciphertext', 'signature', 'contentType'] as const
  for (const f of fields) {
    const e = dbc.envelope.v1.Envelope.decode(encodeEnvelope(original))
    const v = e[f]
    if (v instanceof Uint8Array) {
      const c = Uint8Array.from(v)
      c[c.length - 1] ^= 1
      ;(e as unknown as Record<string, unknown>)[f] = c
    } else {
      (e as unknown as Record<string, unknown>)[f] = (v as number) + 1
    }
    const r = openAsBob(encodeEnvelope(e))
    assert.not.ok(r.ok, `tampered ${f} was accepted`)
    if (r.ok) continue
    // changing the sender to another valid-shaped id: the signature no longer verifies
    assert.ok(r.reason === 'forged' || (f === 'sender' && r.reason === 'malformed') || (f === 'recipient' && r.reason === 'malformed'), `${f}: ${r.reason} ${r.detail}`)
    if (f !== 'sender' && f !== 'recipient') assert.is(r.reason, 'forged', f)
  }
  // a re-signed envelope with a swapped recipient key is forged too (signature by the wrong key)
  const e = dbc.envelope.v1.Envelope.decode(encodeEnvelope(original))
  e.sender = relay.peerId
  assert.is((openAsBob(e) as { reason: string }).reason, 'forged')
})

test('a relay (third key) can check but not decrypt', () => {
  const e = seal()
  assert.ok(checkEnvelope(encodeEnvelope(e), { now: NOW }).ok)
  const asRelayAddressed = openEnvelope(e, { now: NOW, recipient: relay.peerId, recipientSecretKey: relay.secretKey })
  assert.is((asRelayAddressed as { reason: string }).reason, 'wrong-recipient')
  // even pretending to be the recipient, the relay's key does not open it
  const pretend = openEnvelope(e, { now: NOW, recipient: bob.peerId, recipientSecretKey: relay.secretKey })
  assert.is((pretend as { reason: string }).reason, 'undecryptable')
  // the plaintext does not appear in the bytes on the wire
  const wire = Buffer.from(encodeEnvelope(e)).toString('latin1')
  assert.not.ok(wire.includes('train shard'))
})

test('expired, too-long-lived, oversized and malformed envelopes are rejected with a reason', () => {
  const e = seal()
  assert.is((openAsBob(e, NOW + 30_000) as { reason: string }).reason, 'expired')
  assert.ok(openAsBob(e, NOW + 29_999).ok)
  const far = seal({ expiresAt: NOW + 3_600_000 })
  assert.is((openAsBob(far) as { reason: string }).reason, 'malformed')
  const big = seal({ payload: new Uint8Array(2 << 20) })
  assert.is((openAsBob(encodeEnvelope(big)) as { reason: string }).reason, 'oversized')
  assert.is((openAsBob(big) as { reason: string }).reason, 'oversized')
  assert.is((openAsBob(new Uint8Array([0xff, 0xff, 0xff])) as { reason: string }).reason, 'malformed')
  assert.is((openAsBob(new Uint8Array(0)) as { reason: string }).reason, 'malformed')
  // random garbage never throws
  const g = createRng(99)
  for (let i = 0; i < 200; i++) {
    const r = openAsBob(g.bytes(new Uint8Array(g.int(300))))
    assert.not.ok(r.ok)
  }
})

test('seal is deterministic given the random source', () => {
  const a = encodeEnvelope(seal({ random: createRng(5).bytes }))
  const b = encodeEnvelope(seal({ random: createRng(5).bytes }))
  assert.equal(Array.from(a), Array.from(b))
  const c = encodeEnvelope(seal({ random: createRng(6).bytes }))
  assert.not.equal(Array.from(a), Array.from(c))
})

test('static mode: per-pair key, empty ephemeral key, same checks; AEAD can stand in for the signature', () => {
  const e = seal({ mode: 'static' })
  assert.is(e.ephemeralKey.length, 0)
  const r = openAsBob(encodeEnvelope(e))
  assert.ok(r.ok)
  if (r.ok) assert.equal(Array.from(r.payload), Array.from(payload))
  // the relay can not open it, even claiming to be bob
  assert.is((openEnvelope(e, { now: NOW, recipient: bob.peerId, recipientSecretKey: relay.secretKey }) as { reason: string }).reason, 'undecryptable')
  assert.is((openEnvelope(e, { now: NOW, recipient: bob.peerId, recipientSecretKey: relay.secretKey, verifySignature: false }) as { reason: string }).reason, 'undecryptable')
  // tampering with any signed field: forged, with or without the signature check
  for (const f of ['messageId', 'expiresAt', 'sequence', 'nonce', 'ciphertext', 'contentType'] as const) {
    for (const verifySignature of [true, false]) {
      const t = dbc.envelope.v1.Envelope.decode(encodeEnvelope(e))
      const v = t[f]
      if (v instanceof Uint8Array) { const c = Uint8Array.from(v); c[0] ^= 1; (t as unknown as Record<string, unknown>)[f] = c } else (t as unknown as Record<string, unknown>)[f] = (v as number) + 1
      const o = openEnvelope(t, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, verifySignature })
      assert.is((o as { reason: string }).reason, 'forged', `${f} verify=${verifySignature}`)
    }
  }
  // a tampered signature alone is caught by default and by relays; AEAD-only mode accepts the authentic content
  const t = dbc.envelope.v1.Envelope.decode(encodeEnvelope(e)); t.signature[0] ^= 1
  assert.is((openAsBob(t) as { reason: string }).reason, 'forged')
  assert.is((checkEnvelope(t, { now: NOW }) as { reason: string }).reason, 'forged')
  assert.ok(openEnvelope(t, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, verifySignature: false }).ok)
  // suites agree in static mode too
  const n = seal({ mode: 'static', suite: nobleSuite })
  assert.ok(openEnvelope(n, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, suite: nodeSuite }).ok)
  assert.is((openAsBob(e, NOW + 30_000) as { reason: string }).reason, 'expired')
})

test('unsigned static copies: a recipient trusting the pair-key tag takes them from anyone; a relay from no one', () => {
  const e = seal({ mode: 'static', sign: false })
  assert.is(e.signature.length, 0)
  const asBob = (x: Envelope | Uint8Array, deliveredBySender: boolean, verifySignature?: boolean): ReturnType<typeof openEnvelope> =>
    openEnvelope(x, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender, verifySignature })
  // handed over by alice herself: the pair-key tag is the proof, whatever the signature policy
  for (const v of [undefined, true, false]) {
    const r = asBob(encodeEnvelope(e), true, v)
    assert.ok(r.ok, r.ok ? '' : r.detail)
    if (r.ok) assert.equal(Array.from(r.payload), Array.from(payload))
  }
  // handed over by a relay: a recipient that trusts the tag (the overlay's default) opens it;
  // one that verifies signatures wants a signature on what a relay hands over (it could strip one)
  assert.ok(asBob(encodeEnvelope(e), false, false).ok)
  for (const v of [undefined, true]) assert.is((asBob(encodeEnvelope(e), false, v) as { reason: string }).reason, 'forged')
  // a relay refuses it, also from its sender: what goes through a relay is signed
  assert.is((checkEnvelope(e, { now: NOW, deliveredBySender: true }) as { reason: string }).reason, 'forged')
  assert.is((checkEnvelope(e, { now: NOW }) as { reason: string }).reason, 'forged')
  // nobody but alice and bob can make the tag: a copy claiming another sender, or turned round
  // (bob's own envelope to alice re-addressed as alice → bob), fails it
  const other = dbc.envelope.v1.Envelope.decode(encodeEnvelope(e)); other.sender = relay.peerId
  assert.is((asBob(other, false, false) as { reason: string }).reason, 'undecryptable')
  const fromBob = sealEnvelope({ senderSecretKey: bob.secretKey, sender: bob.peerId, recipient: alice.peerId, payload, expiresAt: NOW + 30_000, random: rng.bytes, mode: 'static', sign: false })
  const turned = dbc.envelope.v1.Envelope.decode(encodeEnvelope(fromBob)); turned.sender = alice.peerId; turned.recipient = bob.peerId
  assert.is((asBob(turned, false, false) as { reason: string }).reason, 'undecryptable')
  // tampered content from the sender's own connection still fails the tag
  const t = dbc.envelope.v1.Envelope.decode(encodeEnvelope(e)); t.ciphertext[0] ^= 1
  assert.is((asBob(t, true) as { reason: string }).reason, 'undecryptable')
  // an ephemeral-mode envelope may not go unsigned, and one arriving without a signature is malformed
  assert.throws(() => seal({ mode: 'ephemeral', sign: false }), /static-mode/)
  const eph = dbc.envelope.v1.Envelope.decode(encodeEnvelope(seal())); eph.signature = new Uint8Array(0)
  assert.is((asBob(eph, true) as { reason: string }).reason, 'malformed')
  // signed afterwards (as the overlay does before a copy's first relay hop): relays accept it,
  // from its sender or anyone else, and a recipient that verifies signatures opens it
  signEnvelope(e, alice.secretKey)
  assert.is(e.signature.length, 64)
  assert.ok(checkEnvelope(e, { now: NOW }).ok)
  assert.ok(checkEnvelope(e, { now: NOW, deliveredBySender: true }).ok)
  assert.ok(asBob(encodeEnvelope(e), false).ok)
})

test('signed off the event loop: the same signature as signEnvelope, from both suites, and never in the caller\'s turn', async () => {
  for (const suite of [nodeSuite, nobleSuite]) {
    const e = seal({ mode: 'static', sign: false, suite })
    const reference = signEnvelope(dbc.envelope.v1.Envelope.decode(encodeEnvelope(e)), alice.secretKey, suite)
    let called = false
    const done = new Promise<Envelope>((resolve, reject) => {
      signEnvelopeAsync(e, alice.secretKey, (err, signed) => { called = true; if (err !== undefined) reject(err); else resolve(signed) }, suite)
    })
    assert.is(called, false, `${suite.name}: done must not run in the caller's turn`)
    assert.is(e.signature.length, 0)
    const signed = await done
    assert.is(signed, e, 'signed in place')
    assert.equal(Array.from(e.signature), Array.from(reference.signature), `${suite.name}: Ed25519 is deterministic`)
    assert.ok(checkEnvelope(e, { now: NOW }).ok, 'a relay that verifies accepts it')
    // tampering after signing is still caught
    const t = dbc.envelope.v1.Envelope.decode(encodeEnvelope(e)); t.ciphertext[0] ^= 1
    assert.is((checkEnvelope(t, { now: NOW }) as { reason: string }).reason, 'forged')
  }
  // an envelope already signed is handed back as it is
  const s = seal({ mode: 'static' })
  const before = Array.from(s.signature)
  const again = await new Promise<Envelope>(resolve => { signEnvelopeAsync(s, alice.secretKey, (_err, x) => { resolve(x) }) })
  assert.equal(Array.from(again.signature), before)
  // a bad key is an error to the callback, not a throw, and the envelope stays unsigned
  const u = seal({ mode: 'static', sign: false })
  const err = await new Promise<Error | undefined>(resolve => { signEnvelopeAsync(u, new Uint8Array(5), (e) => { resolve(e) }) })
  assert.ok(err instanceof Error)
  assert.is(u.signature.length, 0)
})


// Unsealed direct copies (the sender hands them to the recipient on its own connection: Noise
// encrypts them end to end and proves the sender; see src/crypto/envelope.ts).
const unsealed = (over: Partial<Parameters<typeof unsealedEnvelope>[0]> = {}): Envelope =>
  unsealedEnvelope({ sender: alice.peerId, recipient: bob.peerId, payload, expiresAt: NOW + 30_000, sequence: 5, contentType: 1, random: rng.bytes, ...over })

test('an unsealed copy opens only from its sender\'s own connection, addressed to us, unexpired', () => {
  const bytes = encodeEnvelope(unsealed())
  assert.ok(isUnsealed(unsealed()))
  const ok = openEnvelope(bytes, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender: true })
  assert.ok(ok.ok, ok.ok ? '' : ok.detail)
  if (ok.ok) { assert.equal(Array.from(ok.payload), Array.from(payload)); assert.is(ok.sequence, 5); assert.is(ok.contentType, 1) }
  // handed over by anyone else (a relay, a stranger): its fields prove nothing
  const relayed = openEnvelope(bytes, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey })
  assert.is(relayed.ok ? 'ok' : relayed.reason, 'forged')
  const trusting = openEnvelope(bytes, { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, verifySignature: false, deliveredBySender: false })
  assert.is(trusting.ok ? 'ok' : trusting.reason, 'forged', 'trusting AEAD tags does not make an unsealed copy from a stranger acceptable')
  // addressed to someone else, expired, or living too long
  const other = openEnvelope(encodeEnvelope(unsealed({ recipient: relay.peerId })), { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender: true })
  assert.is(other.ok ? 'ok' : other.reason, 'wrong-recipient')
  const old = openEnvelope(bytes, { now: NOW + 31_000, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender: true })
  assert.is(old.ok ? 'ok' : old.reason, 'expired')
  const far = openEnvelope(encodeEnvelope(unsealed({ expiresAt: NOW + 3_600_000 })), { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender: true })
  assert.is(far.ok ? 'ok' : far.reason, 'malformed')
})

test('relays refuse unsealed copies, even from their sender; a mix of sealed and unsealed fields is malformed', () => {
  const e = unsealed({ recipient: bob.peerId })
  for (const deliveredBySender of [true, false]) {
    const r = checkEnvelope(encodeEnvelope(e), { now: NOW, deliveredBySender })
    assert.is(r.ok ? 'ok' : r.reason, 'malformed', `deliveredBySender ${String(deliveredBySender)}`)
  }
  // a sealed envelope with a clear payload beside its ciphertext (it would reach the application unauthenticated)
  const sealedWithClear = seal({ mode: 'static', sign: false }); sealedWithClear.payload = new Uint8Array([1, 2, 3])
  const r1 = openEnvelope(encodeEnvelope(sealedWithClear), { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender: true })
  assert.is(r1.ok ? 'ok' : r1.reason, 'malformed')
  // no nonce (unsealed) but a ciphertext or a signature: neither kind
  const odd1 = unsealed(); odd1.ciphertext = new Uint8Array(32)
  const odd2 = unsealed(); odd2.signature = new Uint8Array(64)
  const odd3 = unsealed(); odd3.ephemeralKey = new Uint8Array(32)
  for (const [i, odd] of [odd1, odd2, odd3].entries()) {
    const r = openEnvelope(encodeEnvelope(odd), { now: NOW, recipient: bob.peerId, recipientSecretKey: bob.secretKey, deliveredBySender: true })
    assert.is(r.ok ? 'ok' : r.reason, 'malformed', `odd ${i}`)
  }
})

test.run()
