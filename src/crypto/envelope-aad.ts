// The sealed envelope's constants and result types, and the bytes its AEAD and its signature cover
// (the routing fields as associated data): shared by sealing (src/crypto/envelope.ts) and by
// checking and opening (src/crypto/envelope-open.ts). See src/crypto/envelope.ts for the design.
import { dbc } from '../wire/gen/wire.js'

export type Envelope = dbc.envelope.v1.Envelope

export const MESSAGE_ID_BYTES = 16
export const NONCE_BYTES = 12
export const TAG_BYTES = 16
/** Largest encoded envelope accepted by default (a peer can not make us hold more). */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1 << 20
/** Envelopes may not claim to live longer than this (bounds the replay window we must keep). */
export const DEFAULT_MAX_LIFETIME_MS = 10 * 60_000

const SIG_DOMAIN = new TextEncoder().encode('dbc/envelope/v1/sig\0')

export type EnvelopeRejection = 'expired' | 'forged' | 'undecryptable' | 'oversized' | 'wrong-recipient' | 'malformed'

/** An unsealed copy: the routing fields and the payload in the clear, no nonce (see the header). */
export function isUnsealed (e: Envelope): boolean {
  return e.nonce.length === 0
}

export type OpenResult =
  | { ok: true, payload: Uint8Array, sender: Uint8Array, messageId: Uint8Array, contentType: number, sequence: number, expiresAt: number, envelope: Envelope }
  | { ok: false, reason: EnvelopeRejection, detail: string, envelope?: Envelope }

export type CheckResult =
  | { ok: true, envelope: Envelope }
  | { ok: false, reason: Exclude<EnvelopeRejection, 'undecryptable' | 'wrong-recipient'>, detail: string, envelope?: Envelope }

export const EMPTY = new Uint8Array(0)
const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/**
 * Scratch space for an AAD that is consumed before the call that made it returns (the AEAD copies
 * it in; signedBytes copies it out): an envelope's AAD is ~150-180 bytes, and a fresh typed array
 * above 64 bytes takes an off-heap backing store (an allocation and GC bookkeeping), twice per
 * message.
 */
const AAD_SCRATCH = new Uint8Array(512)

/**
 * Routing fields + ephemeral key + nonce, length-prefixed: the AEAD's associated data. With
 * `scratch` the bytes are written into AAD_SCRATCH when they fit and a view of it is returned,
 * valid only until the next call (the seal and open paths, which use it at once).
 */
export function envelopeAad (e: dbc.envelope.v1.Envelope.$Properties, scratch = false): Uint8Array {
  // written field by field (no arrays, no DataView per call): it runs twice per message
  const sender = e.sender ?? EMPTY; const recipient = e.recipient ?? EMPTY; const messageId = e.messageId ?? EMPTY
  const ephemeralKey = e.ephemeralKey ?? EMPTY; const nonce = e.nonce ?? EMPTY
  const size = SIG_DOMAIN.length + 16 + 10 + sender.length + recipient.length + messageId.length + ephemeralKey.length + nonce.length
  const out = scratch && size <= AAD_SCRATCH.length ? AAD_SCRATCH.subarray(0, size) : new Uint8Array(size)
  out.set(SIG_DOMAIN)
  let o = putPart(out, SIG_DOMAIN.length, sender)
  o = putPart(out, o, recipient)
  o = putPart(out, o, messageId)
  o = putPart(out, o, ephemeralKey)
  o = putPart(out, o, nonce)
  // big-endian, as DataView writes them
  f64[0] = e.expiresAt ?? 0
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) out[o + i] = f64Bytes[7 - i]
  else out.set(f64Bytes, o)
  o += 8
  o = putUint32(out, o, e.sequence ?? 0)
  putUint32(out, o, e.contentType ?? 0)
  return out
}

function putPart (out: Uint8Array, o: number, p: Uint8Array): number {
  out[o] = (p.length >>> 8) & 0xff; out[o + 1] = p.length & 0xff
  out.set(p, o + 2)
  return o + 2 + p.length
}

function putUint32 (out: Uint8Array, o: number, n: number): number {
  out[o] = (n >>> 24) & 0xff; out[o + 1] = (n >>> 16) & 0xff; out[o + 2] = (n >>> 8) & 0xff; out[o + 3] = n & 0xff
  return o + 4
}

/** What the sender signs: the AAD followed by the ciphertext. */
export function signedBytes (aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const out = new Uint8Array(aad.length + ciphertext.length)
  out.set(aad); out.set(ciphertext, aad.length)
  return out
}
