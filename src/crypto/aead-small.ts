// ChaCha20-Poly1305 (RFC 8439) for small messages without node:crypto's per-call setup.
// `createCipheriv` costs a few microseconds per call before a byte is encrypted (a cipher context,
// three Buffers out); a sealed envelope of a few hundred bytes spends most of its AEAD time
// there, twice per round trip. This composes the same construction from the WebAssembly ChaCha20
// and Poly1305 of @chainsafe/as-chacha20poly1305 (the cipher libp2p-noise runs on every
// connection of this node): one-time key from block 0, ciphertext from block 1 on, Poly1305 over
// aad || pad16 || ciphertext || pad16 || le64(aad) || le64(ciphertext), the tag compared in
// constant time. Its own AEAD class is not used: it takes at most 32 bytes of AAD and compares
// tags with an early exit. The bytes are node:crypto's (test/unit/crypto/aead-small.test.ts
// checks them against it); messages above SMALL_AEAD_MAX_BYTES go to node:crypto, faster per byte.
import { createRequire } from 'node:module'

/** Largest plaintext (and AAD) sealed here; larger ones take node:crypto. */
export const SMALL_AEAD_MAX_BYTES = 8192

interface Wasm {
  memory: { buffer: ArrayBuffer }
  chacha20Input: { value: number }
  chacha20Output: { value: number }
  chacha20Key: { value: number }
  chacha20Counter: { value: number }
  chacha20StreamXORUpdate: (length: number) => number
  poly1305Key: { value: number }
  poly1305Input: { value: number }
  poly1305Output: { value: number }
  poly1305Init: () => void
  poly1305Update: (length: number) => void
  poly1305Digest: () => void
}

/**
 * The instance, made on first use: loading the package compiles its WebAssembly (~6 ms), which a
 * CLI command that seals nothing should not pay (the daemon has it loaded for Noise anyway).
 */
let w: Wasm
/** Views into the instance's memory, made again if the memory ever grows (its buffer changes). */
let buffer: ArrayBuffer | undefined
let chachaIn: Uint8Array; let chachaOut: Uint8Array; let chachaKey: Uint8Array; let chachaCounter: Uint8Array
let polyKey: Uint8Array; let polyIn: Uint8Array; let polyOut: Uint8Array

function views (): void {
  if (w === undefined) {
    const { newInstance } = createRequire(import.meta.url)('@chainsafe/as-chacha20poly1305') as { newInstance: () => unknown }
    w = newInstance() as Wasm
  }
  const b = w.memory.buffer
  if (buffer === b) return
  buffer = b
  // (64 more: the text follows block 0, see stream)
  chachaIn = new Uint8Array(b, w.chacha20Input.value, SMALL_AEAD_MAX_BYTES + 64)
  chachaOut = new Uint8Array(b, w.chacha20Output.value, SMALL_AEAD_MAX_BYTES + 64)
  chachaKey = new Uint8Array(b, w.chacha20Key.value, 32)
  chachaCounter = new Uint8Array(b, w.chacha20Counter.value, 16)
  polyKey = new Uint8Array(b, w.poly1305Key.value, 32)
  // aad + ciphertext, each padded to 16, and the two lengths
  polyIn = new Uint8Array(b, w.poly1305Input.value, 2 * SMALL_AEAD_MAX_BYTES + 48)
  polyOut = new Uint8Array(b, w.poly1305Output.value, 16)
}

/** Whether `seal`/`open` here take a message of this size (plaintext and AAD lengths). */
export function smallAeadFits (aadLength: number, textLength: number): boolean {
  return aadLength <= SMALL_AEAD_MAX_BYTES && textLength <= SMALL_AEAD_MAX_BYTES
}

/**
 * ChaCha20 of (key, nonce) from block 0 over 64 zero bytes followed by chachaIn[64, 64 + length),
 * into chachaOut: one call gives both the Poly1305 one-time key (the first 32 bytes of block 0)
 * and the text from block 1 on (chachaOut[64, 64 + length)), instead of one call for each.
 */
function stream (key: Uint8Array, nonce: Uint8Array, length: number): void {
  chachaKey.set(key)
  chachaCounter[0] = 0; chachaCounter[1] = 0; chachaCounter[2] = 0; chachaCounter[3] = 0
  chachaCounter.set(nonce, 4)
  chachaIn.fill(0, 0, 64)
  w.chacha20StreamXORUpdate(64 + length)
}

/** The Poly1305 tag over aad and `ciphertext` (length bytes), with the one-time key in chachaOut[0, 32), left in polyOut. */
function tag (aad: Uint8Array, ciphertext: Uint8Array, length: number): void {
  polyKey.set(chachaOut.subarray(0, 32))
  w.poly1305Init()
  const aadPadded = (aad.length + 15) & ~15
  const textPadded = (length + 15) & ~15
  polyIn.set(aad)
  polyIn.fill(0, aad.length, aadPadded)
  polyIn.set(ciphertext, aadPadded)
  polyIn.fill(0, aadPadded + length, aadPadded + textPadded)
  let o = aadPadded + textPadded
  putLength(o, aad.length); o += 8
  putLength(o, length); o += 8
  w.poly1305Update(o)
  w.poly1305Digest()
}

function putLength (o: number, n: number): void {
  polyIn[o] = n & 0xff; polyIn[o + 1] = (n >>> 8) & 0xff; polyIn[o + 2] = (n >>> 16) & 0xff; polyIn[o + 3] = (n >>> 24) & 0xff
  polyIn[o + 4] = 0; polyIn[o + 5] = 0; polyIn[o + 6] = 0; polyIn[o + 7] = 0
}

/** ciphertext || 16-byte tag. Callers check smallAeadFits first. */
export function smallSeal (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + 16)
  smallSealInto(key, nonce, aad, plaintext, out)
  return out
}

/**
 * smallSeal writing ciphertext || tag into `out` (exactly plaintext.length + 16 bytes; a view
 * into a buffer the caller frames it in, so the sealed bytes are not copied again).
 */
export function smallSealInto (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out: Uint8Array): void {
  views()
  const n = plaintext.length
  if (out.length !== n + 16) throw new RangeError(`sealed text of ${n} bytes takes ${n + 16} bytes, not ${out.length}`)
  chachaIn.set(plaintext, 64)
  stream(key, nonce, n)
  const ciphertext = chachaOut.subarray(64, 64 + n)
  tag(aad, ciphertext, n)
  out.set(ciphertext)
  out.set(polyOut, n)
}

/**
 * The plaintext; throws when the tag does not verify. Callers check smallAeadFits first. (The
 * text is deciphered in the same ChaCha20 call that makes the one-time key, before the tag is
 * checked; it stays in the instance's scratch memory and is returned only once the tag verifies.)
 */
export function smallOpen (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < 16) throw new Error('sealed text shorter than its tag')
  views()
  const n = sealed.length - 16
  const ciphertext = sealed.subarray(0, n)
  chachaIn.set(ciphertext, 64)
  stream(key, nonce, n)
  tag(aad, ciphertext, n)
  let diff = 0
  for (let i = 0; i < 16; i++) diff |= polyOut[i] ^ sealed[n + i]
  if (diff !== 0) throw new Error('unable to authenticate data')
  return chachaOut.slice(64, 64 + n)
}
