// The WebAssembly ChaCha20-Poly1305 for small messages (src/crypto/aead-small.ts) must be the
// RFC 8439 AEAD byte for byte (node:crypto's), refuse every tampered byte, and the node suite must
// open what either path sealed (small messages take it, large ones node:crypto).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createCipheriv } from 'node:crypto'
import { createRng } from '../../../src/core/rng.js'
import { smallSeal, smallSealInto, smallOpen, smallAeadFits, SMALL_AEAD_MAX_BYTES } from '../../../src/crypto/aead-small.js'
import { nodeSuite, nobleSuite } from '../../../src/crypto/suite.js'

const rng = createRng(7)
const bytes = (n: number): Uint8Array => rng.bytes(new Uint8Array(n))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

/** OpenSSL's ChaCha20-Poly1305 (ciphertext || tag), the reference. */
function openssl (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 })
  c.setAAD(aad, { plaintextLength: plaintext.length })
  return new Uint8Array(Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]))
}

test('RFC 8439 section 2.8.2 test vector', () => {
  const plaintext = new TextEncoder().encode('Ladies and Gentlemen of the class of \'99: If I could offer you only one tip for the future, sunscreen would be it.')
  const aad = unhex('50515253c0c1c2c3c4c5c6c7')
  const key = unhex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f')
  const nonce = unhex('070000004041424344454647')
  const sealed = smallSeal(key, nonce, aad, plaintext)
  assert.is(hex(sealed.subarray(sealed.length - 16)), '1ae10b594f09e26a7e902ecbd0600691')
  assert.is(hex(sealed), hex(openssl(key, nonce, aad, plaintext)))
  assert.is(hex(smallOpen(key, nonce, aad, sealed)), hex(plaintext))
})

test('the same bytes as OpenSSL for every length around the block and padding edges, AAD up to the limit', () => {
  const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 300, 405, 1000, 4095, 4096, SMALL_AEAD_MAX_BYTES]
  for (const n of lengths) {
    for (const a of [0, 1, 12, 16, 17, 150, SMALL_AEAD_MAX_BYTES]) {
      const key = bytes(32); const nonce = bytes(12); const aad = bytes(a); const pt = bytes(n)
      const ref = openssl(key, nonce, aad, pt)
      assert.is(hex(smallSeal(key, nonce, aad, pt)), hex(ref), `seal ${n} B, aad ${a} B`)
      assert.is(hex(smallOpen(key, nonce, aad, ref)), hex(pt), `open ${n} B, aad ${a} B`)
    }
  }
})

test('any flipped bit of ciphertext, tag or AAD, a wrong nonce or key, or a short input is refused', () => {
  const key = bytes(32); const nonce = bytes(12); const aad = bytes(150); const pt = bytes(256)
  const sealed = smallSeal(key, nonce, aad, pt)
  for (let i = 0; i < sealed.length; i++) {
    const bad = sealed.slice(); bad[i] ^= 1 << (i % 8)
    assert.throws(() => smallOpen(key, nonce, aad, bad), /authenticate/, `byte ${i}`)
  }
  for (let i = 0; i < aad.length; i += 7) {
    const bad = aad.slice(); bad[i] ^= 0x80
    assert.throws(() => smallOpen(key, nonce, bad, sealed), /authenticate/)
  }
  const otherNonce = nonce.slice(); otherNonce[11] ^= 1
  assert.throws(() => smallOpen(key, otherNonce, aad, sealed), /authenticate/)
  const otherKey = key.slice(); otherKey[0] ^= 1
  assert.throws(() => smallOpen(otherKey, nonce, aad, sealed), /authenticate/)
  assert.throws(() => smallOpen(key, nonce, aad, sealed.subarray(0, 15)), /shorter/)
  assert.throws(() => smallOpen(key, nonce, aad.subarray(1), sealed), /authenticate/)
})

test('the node suite takes the small path below the limit and OpenSSL above it; both open each other and noble\'s', () => {
  assert.ok(smallAeadFits(150, 256))
  assert.not.ok(smallAeadFits(150, SMALL_AEAD_MAX_BYTES + 1))
  assert.not.ok(smallAeadFits(SMALL_AEAD_MAX_BYTES + 1, 10))
  for (const n of [0, 256, SMALL_AEAD_MAX_BYTES, SMALL_AEAD_MAX_BYTES + 1, 100_000]) {
    const key = bytes(32); const nonce = bytes(12); const aad = bytes(140); const pt = bytes(n)
    const sealed = nodeSuite.seal(key, nonce, aad, pt)
    assert.is(hex(sealed), hex(openssl(key, nonce, aad, pt)), `${n} B`)
    assert.is(hex(nobleSuite.open(key, nonce, aad, sealed)), hex(pt))
    assert.is(hex(nodeSuite.open(key, nonce, aad, nobleSuite.seal(key, nonce, aad, pt))), hex(pt))
    const bad = sealed.slice(); bad[bad.length - 1] ^= 1
    assert.throws(() => nodeSuite.open(key, nonce, aad, bad))
  }
})

test('a plaintext handed out is not overwritten by the next message (no view into shared memory)', () => {
  const key = bytes(32); const nonce = bytes(12); const aad = bytes(20)
  const a = bytes(64); const b = bytes(64)
  const openedA = smallOpen(key, nonce, aad, smallSeal(key, nonce, aad, a))
  const sealedB = smallSeal(key, nonce, aad, b)
  smallOpen(key, nonce, aad, sealedB)
  assert.is(hex(openedA), hex(a))
  assert.is(hex(smallOpen(key, nonce, aad, sealedB)), hex(b))
})

test('smallSealInto writes the same bytes into the view it is given, and nothing around it', () => {
  for (const n of [0, 17, 256, SMALL_AEAD_MAX_BYTES]) {
    const key = bytes(32); const nonce = bytes(12); const aad = bytes(150); const pt = bytes(n)
    const buffer = new Uint8Array(n + 16 + 20).fill(0xee)
    smallSealInto(key, nonce, aad, pt, buffer.subarray(7, 7 + n + 16))
    assert.is(hex(buffer.subarray(7, 7 + n + 16)), hex(openssl(key, nonce, aad, pt)))
    assert.ok(buffer.subarray(0, 7).every(b => b === 0xee) && buffer.subarray(7 + n + 16).every(b => b === 0xee))
    assert.throws(() => { smallSealInto(key, nonce, aad, pt, new Uint8Array(n + 15)) }, /takes/)
  }
})

test.run()
