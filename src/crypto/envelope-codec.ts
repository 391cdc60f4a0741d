// Hand-written encoders for the overlay's hot path: an Envelope, a RelayRequest frame around an
// already encoded envelope, and an Ack frame, each written into one exactly sized buffer. The
// bytes are the same as protobufjs writes (same field order, proto3 defaults left out; checked in
// test/unit/crypto/envelope-codec.test.ts); protobufjs's writer would take two or three pooled
// buffers and copies per message. Anything unusual (unknown fields kept from a decode, a field
// of the wrong type) goes through the generated encoder.
import $protobuf from 'protobufjs/minimal.js'
import { dbc } from '../wire/gen/wire.js'

type Envelope = dbc.envelope.v1.Envelope
const Reader = $protobuf.Reader

function varintLength (n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

function writeVarint (out: Uint8Array, o: number, n: number): number {
  while (n >= 0x80) { out[o++] = (n & 0x7f) | 0x80; n >>>= 7 }
  out[o++] = n
  return o
}

function bytesField (b: unknown): number {
  // -1: not a plain byte array (fall back to the generated encoder)
  if (b === undefined || b === null) return 0
  return b instanceof Uint8Array ? b.length : -1
}

function uintField (n: unknown): boolean {
  return n === undefined || n === null || (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff)
}

const f64 = new Float64Array(1)
const f64Bytes = new Uint8Array(f64.buffer)
/** protobufjs writes doubles little-endian; so do we, whatever the host's byte order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function writeDouble (out: Uint8Array, o: number, v: number): number {
  f64[0] = v
  // (byte by byte: a set() of 8 bytes costs more than the copy)
  if (LITTLE_ENDIAN) for (let i = 0; i < 8; i++) out[o + i] = f64Bytes[i]
  else for (let i = 0; i < 8; i++) out[o + i] = f64Bytes[7 - i]
  return o + 8
}

function putBytes (out: Uint8Array, o: number, tag: number, b: Uint8Array | null | undefined): number {
  if (b === undefined || b === null || b.length === 0) return o
  out[o++] = tag
  o = writeVarint(out, o, b.length)
  out.set(b, o)
  return o + b.length
}

/** Tag, length and bytes of a bytes field (0 when empty, -1 when not a plain byte array). */
function bytesSize (b: unknown): number {
  const n = bytesField(b)
  return n <= 0 ? n : 1 + varintLength(n) + n
}

/** The encoded size of `e`, or -1 when it must go through the generated encoder. */
function envelopeSize (e: Envelope): number {
  if ((e as { $unknowns?: unknown }).$unknowns != null) return -1
  // (field by field, no array per call: it runs for every copy sent)
  const a = bytesSize(e.sender); const b = bytesSize(e.recipient); const c = bytesSize(e.messageId); const d = bytesSize(e.ephemeralKey)
  const f = bytesSize(e.nonce); const g = bytesSize(e.ciphertext); const h = bytesSize(e.signature); const p = bytesSize(e.payload)
  if (a < 0 || b < 0 || c < 0 || d < 0 || f < 0 || g < 0 || h < 0 || p < 0) return -1
  let size = a + b + c + d + f + g + h + p
  if (typeof e.expiresAt !== 'number' && e.expiresAt != null) return -1
  if (e.expiresAt != null && !Object.is(e.expiresAt, 0)) size += 9
  if (!uintField(e.sequence) || !uintField(e.contentType)) return -1
  if (e.sequence != null && e.sequence !== 0) size += 1 + varintLength(e.sequence)
  if (e.contentType != null && e.contentType !== 0) size += 1 + varintLength(e.contentType)
  return size
}

/** Encodes an envelope; the same bytes as dbc.envelope.v1.Envelope.encode(e).finish(). */
export function encodeEnvelopeFast (e: Envelope): Uint8Array {
  const size = envelopeSize(e)
  if (size < 0) return dbc.envelope.v1.Envelope.encode(e).finish()
  const out = new Uint8Array(size)
  writeEnvelope(out, 0, e)
  return out
}

/** The encoded size of an envelope (what encodeEnvelopeFast would return the length of). */
export function encodedEnvelopeSize (e: Envelope): number {
  const size = envelopeSize(e)
  return size >= 0 ? size : dbc.envelope.v1.Envelope.encode(e).len
}

/** Where writeEnvelope left room for the ciphertext (its last call with `reserve`). */
let reservedAt = 0

/**
 * Writes `e` (envelopeSize(e) >= 0) at `o`; returns the offset after it. `reserve` > 0: the
 * ciphertext field gets that many bytes of room (left unwritten, at `reservedAt`) instead of
 * e.ciphertext, which must be empty.
 */
function writeEnvelope (out: Uint8Array, o: number, e: Envelope, reserve = 0): number {
  o = putBytes(out, o, 10, e.sender)
  o = putBytes(out, o, 18, e.recipient)
  o = putBytes(out, o, 26, e.messageId)
  if (e.expiresAt != null && !Object.is(e.expiresAt, 0)) { out[o++] = 33; o = writeDouble(out, o, e.expiresAt) }
  if (e.sequence != null && e.sequence !== 0) { out[o++] = 40; o = writeVarint(out, o, e.sequence) }
  o = putBytes(out, o, 50, e.ephemeralKey)
  o = putBytes(out, o, 58, e.nonce)
  if (reserve > 0) { out[o++] = 66; o = writeVarint(out, o, reserve); reservedAt = o; o += reserve } else o = putBytes(out, o, 66, e.ciphertext)
  o = putBytes(out, o, 74, e.signature)
  if (e.contentType != null && e.contentType !== 0) { out[o++] = 80; o = writeVarint(out, o, e.contentType) }
  // (an unsealed direct copy's plaintext; empty on a sealed envelope)
  return putBytes(out, o, 90, e.payload)
}

/**
 * RelayRequest frames are cut from a shared slab: a fresh typed array above 64 bytes takes an
 * off-heap backing store of its own (an allocation and GC bookkeeping), one per copy sent; a view
 * of a slab costs only the view. Each frame is its own bytes (the slab is never reused, only
 * dropped whole by the GC once no frame of it is alive), so a frame queued on a stream stays intact.
 */
const SLAB_BYTES = 64 * 1024
let slab = new ArrayBuffer(SLAB_BYTES)
let slabAt = 0

function frameBuffer (n: number): Uint8Array {
  if (n > 4096) return new Uint8Array(n)
  if (slabAt + n > SLAB_BYTES) { slab = new ArrayBuffer(SLAB_BYTES); slabAt = 0 }
  const out = new Uint8Array(slab, slabAt, n)
  slabAt += (n + 7) & ~7
  return out
}

/**
 * A length-prefixed frame (the project framing: varint length, then the bytes) holding a
 * RelayRequest { envelope, hops_left, path_id } around already encoded envelope bytes.
 * hops_left and path_id are always written (a decoder takes 0 either way).
 */
export function relayRequestFrameBytes (envelope: Uint8Array, hopsLeft: number, pathId: number): Uint8Array {
  const body = 1 + varintLength(envelope.length) + envelope.length + 1 + varintLength(hopsLeft >>> 0) + 1 + varintLength(pathId >>> 0)
  const out = frameBuffer(varintLength(body) + body)
  let o = writeVarint(out, 0, body)
  out[o++] = 10
  o = writeVarint(out, o, envelope.length)
  out.set(envelope, o); o += envelope.length
  out[o++] = 16; o = writeVarint(out, o, hopsLeft >>> 0)
  out[o++] = 24; writeVarint(out, o, pathId >>> 0)
  return out
}

/**
 * relayRequestFrameBytes(encodeEnvelopeFast(e), hopsLeft, pathId), the envelope written straight
 * into the frame (one buffer for a message's direct copy instead of two and a copy).
 */
export function relayRequestFrameOf (e: Envelope, hopsLeft: number, pathId: number): Uint8Array {
  const size = envelopeSize(e)
  if (size < 0) return relayRequestFrameBytes(dbc.envelope.v1.Envelope.encode(e).finish(), hopsLeft, pathId)
  const body = 1 + varintLength(size) + size + 1 + varintLength(hopsLeft >>> 0) + 1 + varintLength(pathId >>> 0)
  const out = frameBuffer(varintLength(body) + body)
  let o = writeVarint(out, 0, body)
  out[o++] = 10
  o = writeVarint(out, o, size)
  o = writeEnvelope(out, o, e)
  out[o++] = 16; o = writeVarint(out, o, hopsLeft >>> 0)
  out[o++] = 24; writeVarint(out, o, pathId >>> 0)
  return out
}

/**
 * A message's direct copy laid out before it is sealed: relayRequestFrameOf's bytes for `e` with
 * a ciphertext of `ciphertextLength` bytes, hops_left 0 and path_id 0 (one byte each; set by
 * setFrameIds), and the view of the frame the ciphertext goes into. The sender seals straight
 * into that view (src/crypto/envelope.ts `place`), so the sealed bytes are neither allocated on
 * their own nor copied into the frame. Undefined when `e` already has a ciphertext or a
 * signature, or must go through the generated encoder.
 */
export function directFrameAround (e: Envelope, ciphertextLength: number): { frame: Uint8Array, ciphertext: Uint8Array } | undefined {
  if (ciphertextLength <= 0 || bytesField(e.ciphertext) !== 0 || bytesField(e.signature) !== 0 || bytesField(e.payload) !== 0) return undefined
  const rest = envelopeSize(e)
  if (rest < 0) return undefined
  const size = rest + 1 + varintLength(ciphertextLength) + ciphertextLength
  const body = 1 + varintLength(size) + size + 4
  const frame = new Uint8Array(varintLength(body) + body)
  let o = writeVarint(frame, 0, body)
  frame[o++] = 10
  o = writeVarint(frame, o, size)
  o = writeEnvelope(frame, o, e, ciphertextLength)
  frame[o] = 16; frame[o + 2] = 24
  return { frame, ciphertext: frame.subarray(reservedAt, reservedAt + ciphertextLength) }
}

/**
 * Sets hops_left and path_id in a frame from directFrameAround (in place, before it is written);
 * false when either does not fit in one byte (then use relayRequestFrameOf).
 */
export function setFrameIds (frame: Uint8Array, hopsLeft: number, pathId: number): boolean {
  if (!Number.isInteger(hopsLeft) || !Number.isInteger(pathId) || hopsLeft < 0 || hopsLeft > 0x7f || pathId < 0 || pathId > 0x7f) return false
  frame[frame.length - 3] = hopsLeft
  frame[frame.length - 1] = pathId
  return true
}

/** The RelayRequest inside a frame from relayRequestFrameBytes (the frame without its prefix). */
export function frameBody (frame: Uint8Array): Uint8Array {
  let o = 0
  while (frame[o] >= 0x80) o++
  return frame.subarray(o + 1)
}

/**
 * A length-prefixed frame holding an Ack, the same bytes as encodeFrame(Ack.encode(ack).finish());
 * acks with a reason (refusals, rare) take the generated encoder.
 */
export function ackFrameBytes (ack: dbc.envelope.v1.Ack.$Properties): Uint8Array | undefined {
  if (ack.reason != null && ack.reason !== '') return undefined
  if ((ack as { $unknowns?: unknown }).$unknowns != null) return undefined
  const id = bytesField(ack.messageId); const sig = bytesField(ack.signature)
  if (id < 0 || sig < 0 || !uintField(ack.pathId) || !(ack.status == null || (Number.isInteger(ack.status) && (ack.status as number) >= 0 && (ack.status as number) < 0x80))) return undefined
  const pathId = ack.pathId ?? 0; const status = (ack.status ?? 0) as number
  const body = (id > 0 ? 1 + varintLength(id) + id : 0) + (pathId !== 0 ? 1 + varintLength(pathId) : 0) + (status !== 0 ? 2 : 0) + (sig > 0 ? 1 + varintLength(sig) + sig : 0)
  const out = new Uint8Array(varintLength(body) + body)
  let o = writeVarint(out, 0, body)
  o = putBytes(out, o, 10, ack.messageId)
  if (pathId !== 0) { out[o++] = 16; o = writeVarint(out, o, pathId) }
  if (status !== 0) { out[o++] = 24; out[o++] = status }
  putBytes(out, o, 42, ack.signature)
  return out
}

/** What the generated decoder leaves an absent bytes field reading: the prototype's (shared, empty) default. */
const NO_BYTES: Uint8Array = dbc.envelope.v1.Envelope.prototype.signature

/**
 * An Envelope from its bytes: the generated decoder's fields, values and errors, but every field
 * is set on the object, in the order sealEnvelope sets them (absent ones to the defaults
 * the generated object reads from its prototype). The generated decoder sets only the fields on the wire, in wire order, so an
 * unsigned direct copy, a signed relayed one, an ephemeral one and a sealed one were four object
 * shapes, and every function reading envelopes (AAD, checks, open, encode) ran polymorphic; here
 * they are one. Anything unusual (a field with the wrong wire type, an unknown field, a tag of
 * more than one byte) goes to the generated decoder, as do errors.
 */
export function decodeEnvelope (bytes: Uint8Array): Envelope {
  const r = Reader.create(bytes)
  let sender = NO_BYTES; let recipient = NO_BYTES; let messageId = NO_BYTES; let expiresAt = 0; let sequence = 0
  let contentType = 0; let ephemeralKey = NO_BYTES; let nonce = NO_BYTES; let ciphertext = NO_BYTES; let signature = NO_BYTES
  let payload = NO_BYTES
  try {
    while (r.pos < r.len) {
      const t = r.uint32()
      // (fields 1-11 with their own wire type, tags of one byte; anything else: the generated decoder)
      switch (t) {
        case 10: sender = r.bytes(); break
        case 18: recipient = r.bytes(); break
        case 26: messageId = r.bytes(); break
        case 33: expiresAt = r.double(); break
        case 40: sequence = r.uint32(); break
        case 50: ephemeralKey = r.bytes(); break
        case 58: nonce = r.bytes(); break
        case 66: ciphertext = r.bytes(); break
        case 74: signature = r.bytes(); break
        case 80: contentType = r.uint32(); break
        case 90: payload = r.bytes(); break
        default: return dbc.envelope.v1.Envelope.decode(bytes)
      }
    }
  } catch { return dbc.envelope.v1.Envelope.decode(bytes) }
  const e = new dbc.envelope.v1.Envelope()
  e.sender = sender; e.recipient = recipient; e.messageId = messageId; e.expiresAt = expiresAt; e.sequence = sequence
  e.contentType = contentType; e.ephemeralKey = ephemeralKey; e.nonce = nonce; e.ciphertext = ciphertext; e.signature = signature
  e.payload = payload
  return e
}

type Ack = dbc.envelope.v1.Ack
const NO_ACK_BYTES: Uint8Array = dbc.envelope.v1.Ack.prototype.signature

/**
 * An Ack from its bytes, as decodeEnvelope for envelopes: the generated decoder's values and
 * errors, every field set, in one order (a direct ack, a relayed MACed or signed one and a
 * refusal were each a shape of their own); anything unusual goes to the generated decoder.
 */
export function decodeAck (bytes: Uint8Array): Ack {
  const r = Reader.create(bytes)
  let messageId = NO_ACK_BYTES; let pathId = 0; let status = 0; let reason = ''; let signature = NO_ACK_BYTES
  try {
    while (r.pos < r.len) {
      switch (r.uint32()) {
        case 10: messageId = r.bytes(); break
        case 16: pathId = r.uint32(); break
        case 24: status = r.int32(); break
        case 34: reason = r.stringVerify(); break // (UTF-8 checked, as the generated decoder does)
        case 42: signature = r.bytes(); break
        default: return dbc.envelope.v1.Ack.decode(bytes)
      }
    }
  } catch { return dbc.envelope.v1.Ack.decode(bytes) }
  const a = new dbc.envelope.v1.Ack()
  a.messageId = messageId; a.pathId = pathId; a.status = status; a.reason = reason; a.signature = signature
  return a
}
