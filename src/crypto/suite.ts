// The primitives a sealed envelope needs, in two interchangeable suites that produce the same
// bytes: `nodeSuite` (OpenSSL through node:crypto, ~10x faster; the runtime default) and
// `nobleSuite` (@noble, pure JS, audited; used where node:crypto is missing and to cross-check).
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, createSecretKey, diffieHellman, hkdfSync, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { chacha20poly1305 } from '@noble/ciphers/chacha.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { smallAeadFits, smallSeal, smallSealInto, smallOpen } from './aead-small.js'

export interface CryptoSuite {
  name: string
  /** Ed25519 signature with a 32-byte seed. */
  sign: (seed: Uint8Array, message: Uint8Array) => Uint8Array
  /**
   * The same signature, off the caller's thread where the suite can (node:crypto: libuv's thread
   * pool), handed to `done` later, never in the caller's turn. Absent: callers use `sign`.
   */
  signAsync?: (seed: Uint8Array, message: Uint8Array, done: (err: Error | undefined, signature?: Uint8Array) => void) => void
  /** False for bad signatures and malformed keys; never throws. */
  verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean
  /**
   * The same check off the caller's thread where the suite can (node:crypto: libuv's thread
   * pool), its answer handed to `done` later, never in the caller's turn; false for bad
   * signatures and malformed keys, never throws. Absent: callers use `verify`.
   */
  verifyAsync?: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, done: (ok: boolean) => void) => void
  /** X25519 public key of a 32-byte secret. */
  x25519PublicKey: (secret: Uint8Array) => Uint8Array
  /** X25519 shared secret; throws on a low-order public key. */
  x25519: (secret: Uint8Array, publicKey: Uint8Array) => Uint8Array
  hkdfSha256: (ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number) => Uint8Array
  /** ChaCha20-Poly1305; output is ciphertext || 16-byte tag. */
  seal: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array) => Uint8Array
  /**
   * `seal` writing ciphertext || tag into `out` (exactly plaintext.length + 16 bytes) instead of
   * a new array. Absent: callers copy `seal`'s output.
   */
  sealInto?: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array) => void
  /** Throws when the tag does not verify. */
  open: (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array) => Uint8Array
}

export const nobleSuite: CryptoSuite = {
  name: 'noble',
  sign: (seed, message) => ed25519.sign(message, seed),
  verify: (publicKey, message, signature) => {
    if (publicKey.length !== 32 || signature.length !== 64) return false
    try { return ed25519.verify(signature, message, publicKey) } catch { return false }
  },
  x25519PublicKey: secret => x25519.getPublicKey(secret),
  x25519: (secret, publicKey) => x25519.getSharedSecret(secret, publicKey),
  hkdfSha256: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  seal: (key, nonce, aad, plaintext) => chacha20poly1305(key, nonce, aad).encrypt(plaintext),
  open: (key, nonce, aad, sealed) => chacha20poly1305(key, nonce, aad).decrypt(sealed)
}

// DER prefixes that wrap raw 32-byte keys for node:crypto (RFC 8410).
const ED_PKCS8 = hex('302e020100300506032b657004220420')
const ED_SPKI = hex('302a300506032b6570032100')
const X_PKCS8 = hex('302e020100300506032b656e04220420')
const X_SPKI = hex('302a300506032b656e032100')

function hex (s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g)!.map(b => parseInt(b, 16)))
}
function der (prefix: Uint8Array, key: Uint8Array): Uint8Array {
  const out = new Uint8Array(prefix.length + key.length)
  out.set(prefix); out.set(key, prefix.length)
  return out
}
function bytesKey (k: Uint8Array): string {
  return Buffer.from(k.buffer, k.byteOffset, k.length).toString('latin1')
}

/** A small cache of imported keys: peers repeat, and importing a key costs ~20 us. */
class KeyCache {
  private readonly map = new Map<string, KeyObject>()
  constructor (private readonly max: number) {}
  get (k: Uint8Array, make: () => KeyObject): KeyObject {
    const id = bytesKey(k)
    let v = this.map.get(id)
    if (v === undefined) {
      v = make()
      if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value as string)
      this.map.set(id, v)
    }
    return v
  }
}
const edPrivate = new KeyCache(16)

/**
 * AEAD keys as imported KeyObjects, by the key array itself: a cipher made from a KeyObject
 * skips importing raw key bytes (~3 us of each createCipheriv). Imported on a key's second use
 * (a per-message ephemeral key is used once); key arrays are never changed after use (the
 * envelope code caches pair keys and makes fresh ones for ephemeral envelopes).
 */
const aeadKeys = new WeakMap<Uint8Array, KeyObject | true>()
function aeadKey (key: Uint8Array): KeyObject | Uint8Array {
  const k = aeadKeys.get(key)
  if (k === undefined) { aeadKeys.set(key, true); return key }
  if (k !== true) return k
  const imported = createSecretKey(key)
  aeadKeys.set(key, imported)
  return imported
}
const edPublic = new KeyCache(1024)
const xPublic = new KeyCache(1024)

/** node:crypto key objects of raw Ed25519 keys, cached (sign/signAsync and verify/verifyAsync share them). */
const edPrivateKey = (seed: Uint8Array): KeyObject => edPrivate.get(seed, () => createPrivateKey({ key: Buffer.from(der(ED_PKCS8, seed)), format: 'der', type: 'pkcs8' }))
const edPublicKey = (publicKey: Uint8Array): KeyObject => edPublic.get(publicKey, () => createPublicKey({ key: Buffer.from(der(ED_SPKI, publicKey)), format: 'der', type: 'spki' }))

export const nodeSuite: CryptoSuite = {
  name: 'node',
  sign: (seed, message) => {
    const key = edPrivateKey(seed)
    return new Uint8Array(nodeSign(null, message, key))
  },
  signAsync: (seed, message, done) => {
    let key: KeyObject
    try {
      key = edPrivateKey(seed)
    } catch (err) { queueMicrotask(() => { done(err as Error) }); return }
    nodeSign(null, message, key, (err, sig) => {
      if (err !== null) done(err)
      else done(undefined, new Uint8Array(sig.buffer, sig.byteOffset, sig.length))
    })
  },
  verify: (publicKey, message, signature) => {
    if (publicKey.length !== 32 || signature.length !== 64) return false
    try {
      const key = edPublicKey(publicKey)
      return nodeVerify(null, message, key, signature)
    } catch { return false }
  },
  verifyAsync: (publicKey, message, signature, done) => {
    const no = (): void => { queueMicrotask(() => { done(false) }) }
    if (publicKey.length !== 32 || signature.length !== 64) { no(); return }
    try {
      const key = edPublicKey(publicKey)
      // (an async job copies message and signature before it leaves this thread)
      nodeVerify(null, message, key, signature, (err, ok) => { done(err === null && ok) })
    } catch { no() }
  },
  x25519PublicKey: secret => {
    const priv = createPrivateKey({ key: Buffer.from(der(X_PKCS8, secret)), format: 'der', type: 'pkcs8' })
    const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' })
    return new Uint8Array(spki.subarray(spki.length - 32))
  },
  x25519: (secret, publicKey) => {
    const privateKey = createPrivateKey({ key: Buffer.from(der(X_PKCS8, secret)), format: 'der', type: 'pkcs8' })
    const pub = xPublic.get(publicKey, () => createPublicKey({ key: Buffer.from(der(X_SPKI, publicKey)), format: 'der', type: 'spki' }))
    const shared = new Uint8Array(diffieHellman({ privateKey, publicKey: pub }))
    let acc = 0
    for (let i = 0; i < shared.length; i++) acc |= shared[i]
    if (acc === 0) throw new Error('x25519: low-order public key')
    return shared
  },
  hkdfSha256: (ikm, salt, info, length) => new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),
  // small messages (a task message, an ack-sized envelope) skip createCipheriv's per-call setup: the
  // same bytes from WebAssembly (aead-small.ts); large ones stay with OpenSSL, faster per byte
  seal: (key, nonce, aad, plaintext) => {
    if (smallAeadFits(aad.length, plaintext.length) && key.length === 32 && nonce.length === 12) return smallSeal(key, nonce, aad, plaintext)
    const c = createCipheriv('chacha20-poly1305', aeadKey(key), nonce, { authTagLength: 16 })
    c.setAAD(aad, { plaintextLength: plaintext.length })
    const a = c.update(plaintext); const b = c.final(); const tag = c.getAuthTag()
    const out = new Uint8Array(a.length + b.length + 16)
    out.set(a); out.set(b, a.length); out.set(tag, a.length + b.length)
    return out
  },
  sealInto: (key, nonce, aad, plaintext, out) => {
    if (smallAeadFits(aad.length, plaintext.length) && key.length === 32 && nonce.length === 12) { smallSealInto(key, nonce, aad, plaintext, out); return }
    if (out.length !== plaintext.length + 16) throw new RangeError(`sealed text of ${plaintext.length} bytes takes ${plaintext.length + 16} bytes, not ${out.length}`)
    out.set(nodeSuite.seal(key, nonce, aad, plaintext))
  },
  open: (key, nonce, aad, sealed) => {
    if (sealed.length < 16) throw new Error('sealed text shorter than its tag')
    if (smallAeadFits(aad.length, sealed.length - 16) && key.length === 32 && nonce.length === 12) return smallOpen(key, nonce, aad, sealed)
    const d = createDecipheriv('chacha20-poly1305', aeadKey(key), nonce, { authTagLength: 16 })
    d.setAuthTag(sealed.subarray(sealed.length - 16))
    d.setAAD(aad, { plaintextLength: sealed.length - 16 })
    const a = d.update(sealed.subarray(0, sealed.length - 16)); const b = d.final()
    // a stream cipher's final() adds nothing: hand out update()'s bytes as a plain Uint8Array view, no copy
    if (b.length === 0) return new Uint8Array(a.buffer, a.byteOffset, a.length)
    const out = new Uint8Array(a.length + b.length)
    out.set(a); out.set(b, a.length)
    return out
  }
}

/** Ed25519 public key → X25519 public key (birational map), cached: it costs ~90 us. */
const montgomeryCache = new Map<string, Uint8Array>()
export function ed25519ToX25519Public (edPublicKey: Uint8Array): Uint8Array {
  const id = bytesKey(edPublicKey)
  let x = montgomeryCache.get(id)
  if (x === undefined) {
    x = ed25519.utils.toMontgomery(edPublicKey)
    if (montgomeryCache.size >= 4096) montgomeryCache.delete(montgomeryCache.keys().next().value as string)
    montgomeryCache.set(id, x)
  }
  return x
}

/** Ed25519 seed → the X25519 secret of the same key pair (sha512 + clamp). */
export function ed25519ToX25519Secret (seed: Uint8Array): Uint8Array {
  return ed25519.utils.toMontgomerySecret(seed)
}

/** libp2p keeps Ed25519 private keys as seed || public (64 bytes); noble and we use the seed. */
export function ed25519Seed (secretKey: Uint8Array): Uint8Array {
  if (secretKey.length === 32) return secretKey
  if (secretKey.length === 64) return secretKey.subarray(0, 32)
  throw new RangeError(`an Ed25519 secret key has 32 (seed) or 64 (seed || public) bytes, not ${secretKey.length}`)
}
