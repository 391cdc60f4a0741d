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
  chachaIn = new Uint8Array(b, w.chacha20Input.value, SMALL_AEAD_MAX_BYTES)
  chachaOut = new Uint8Array(b, w.chacha20Output.value, SMALL_AEAD_MAX_BYTES)
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

/** ChaCha20 from block `counter` of (key, nonce), XORed over chachaIn[0, length) into chachaOut. */
function stream (key: Uint8Array, nonce: Uint8Array, counter: number, length: number): void {
  chachaKey.set(key)
  chachaCounter[0] = counter; chachaCounter[1] = 0; chachaCounter[2] = 0; chachaCounter[3] = 0
  chachaCounter.set(nonce, 4)
  w.chacha20StreamXORUpdate(length)
}

/** The Poly1305 tag over aad and the ciphertext in chachaOut (seal) or `ciphertext` (open), left in polyOut. */
function tag (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array | undefined, length: number): void {
  // one-time key: the first 32 bytes of block 0
  chachaIn.fill(0, 0, 32)
  stream(key, nonce, 0, 32)
  polyKey.set(chachaOut.subarray(0, 32))
  w.poly1305Init()
  const aadPadded = (aad.length + 15) & ~15
  const textPadded = (length + 15) & ~15
  polyIn.set(aad)
  polyIn.fill(0, aad.length, aadPadded)
  if (ciphertext !== undefined) polyIn.set(ciphertext, aadPadded)
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
  views()
  const n = plaintext.length
  const out = new Uint8Array(n + 16)
  chachaIn.set(plaintext)
  stream(key, nonce, 1, n)
  out.set(chachaOut.subarray(0, n))
  tag(key, nonce, aad, out.subarray(0, n), n)
  out.set(polyOut, n)
  return out
}

/** The plaintext; throws when the tag does not verify. Callers check smallAeadFits first. */
export function smallOpen (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array {
  if (sealed.length < 16) throw new Error('sealed text shorter than its tag')
  views()
  const n = sealed.length - 16
  const ciphertext = sealed.subarray(0, n)
  tag(key, nonce, aad, ciphertext, n)
  let diff = 0
  for (let i = 0; i < 16; i++) diff |= polyOut[i] ^ sealed[n + i]
  if (diff !== 0) throw new Error('unable to authenticate data')
  chachaIn.set(ciphertext)
  stream(key, nonce, 1, n)
  return chachaOut.slice(0, n)
}
