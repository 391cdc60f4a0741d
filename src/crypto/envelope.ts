// Sealed envelopes (dbc.envelope.v1.Envelope): signed by the sender with its Ed25519 peer key,
// sealed to the recipient's key from its peer id (Ed25519 → X25519, HKDF-SHA256,
// ChaCha20-Poly1305 with the routing fields as AAD). Relays can check the signature and expiry
// (`checkEnvelope`) but cannot read the payload. Two key modes:
//  - 'ephemeral' (default): a fresh X25519 key per envelope; forward secrecy against a later
//    leak of the sender's key; costs two scalar multiplications per envelope.
//  - 'static': X25519 between the two peers' identity keys, derived once per peer pair and
//    cached; `ephemeral_key` is empty. Only sender and recipient hold the AEAD key, so a tag that
//    verifies also proves the sender to the recipient, which then skips the signature check
//    (relays still check it). The hot path for chatty peer pairs.
// Unsigned copies: a static-mode envelope the sender hands to its recipient itself may go without
// a signature (`sign: false`): the pair-key AEAD tag proves sender and content (only the two ends
// can make it, and the HKDF info orders sender || recipient, so an envelope can not be turned
// round), and the Noise connection proves who handed it over. Given up: the recipient can not
// prove authorship to a third party (the overlay's `signDirect` signs every copy for that). A
// copy that goes through a relay is signed (once per message; `signEnvelopeAsync`, off the event
// loop, when a direct copy was just written): relays refuse an unsigned one even from its sender (`deliveredBySender`
// skips only the verify), and a recipient that verifies signatures (`verifySignature` not
// false) refuses an unsigned copy a relay hands over (a relay could strip a signature). A
// recipient that trusts the tag would open one (honest relays pass none on). So the direct path costs
// no asymmetric operation; a relayed message costs the sender one Ed25519 signature (~35-50 us),
// and the relay verifies it only when the copy came from someone other than its sender.
// Unsealed copies (`unsealedEnvelope`): a copy the sender hands to the recipient itself, on a
// connection whose remote peer IS the recipient, needs no seal of its own either: the connection's
// encryption (Noise over TCP or a circuit relay, DTLS bound by Noise-authenticated signalling over
// WebRTC) is end to end to the recipient and its handshake proves the sender's peer id, which the
// recipient compares with the envelope's sender. So such a copy carries its payload in the clear
// field `payload` (no nonce, ciphertext or signature) and costs no AEAD at either end. The
// recipient takes one only from its sender's own connection and only when addressed to itself;
// relays refuse it (checkEnvelope), so it never leaves that connection. The overlay sends them only
// to peers that speak /dbc/relay/1.1.0 (src/net/overlay/envelopes.ts); relayed copies stay sealed.
import { dbc } from '../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes, bytesEqual } from '../core/identity/index.js'
import { encodeEnvelopeFast } from './envelope-codec.js'
import { nodeSuite, ed25519Seed, ed25519ToX25519Public, ed25519ToX25519Secret, type CryptoSuite } from './suite.js'
import { staticKey, deriveKey } from './envelope-keys.js'
export { staticAckKey } from './envelope-keys.js'

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

export interface SealInput {
  /** Sender's Ed25519 secret key: 32-byte seed, or libp2p's 64-byte seed || public. */
  senderSecretKey: Uint8Array
  /** Sender's peer id bytes (identity multihash with the Ed25519 key inside). */
  sender: Uint8Array
  /** Recipient's peer id bytes; its key seals the payload. */
  recipient: Uint8Array
  payload: Uint8Array
  /** unix ms after which the envelope is dropped. */
  expiresAt: number
  sequence?: number
  contentType?: number
  /** Defaults to 16 bytes from `random`. */
  messageId?: Uint8Array
  /** Source of randomness for the ephemeral key, the nonce and the message id (crypto.getRandomValues at runtime). */
  random: (out: Uint8Array) => Uint8Array
  suite?: CryptoSuite
  mode?: 'ephemeral' | 'static'
  /** false: leave the signature empty (static mode only; see the header). Default true. */
  sign?: boolean
  /**
   * Unsigned envelopes only: where the sealed bytes go. Called with the envelope (every field set
   * but the ciphertext) and the sealed length; returns a view of exactly that length (which
   * becomes `ciphertext`), or undefined for a new array. The overlay seals a message straight
   * into its direct copy's frame this way (envelope-codec.ts directFrameAround).
   */
  place?: (e: Envelope, sealedLength: number) => Uint8Array | undefined
}

const EMPTY = new Uint8Array(0)
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
function signedBytes (aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const out = new Uint8Array(aad.length + ciphertext.length)
  out.set(aad); out.set(ciphertext, aad.length)
  return out
}

export function sealEnvelope (input: SealInput): Envelope {
  const suite = input.suite ?? nodeSuite
  if (input.sign === false && input.mode !== 'static') throw new RangeError('only static-mode envelopes may go unsigned (an ephemeral key proves nothing about the sender)')
  const recipientKey = ed25519KeyFromPeerIdBytes(input.recipient)
  if (recipientKey === undefined) throw new RangeError('the recipient peer id carries no Ed25519 key; only Ed25519 peer ids can receive sealed envelopes')
  if (ed25519KeyFromPeerIdBytes(input.sender) === undefined) throw new RangeError('the sender peer id carries no Ed25519 key')
  const seed = ed25519Seed(input.senderSecretKey)
  const messageId = input.messageId ?? input.random(new Uint8Array(MESSAGE_ID_BYTES))
  let ephemeralKey: Uint8Array
  let key: Uint8Array
  if (input.mode === 'static') {
    ephemeralKey = new Uint8Array(0)
    key = staticKey(suite, seed, recipientKey, input.sender, input.recipient)
  } else {
    const ephemeralSecret = input.random(new Uint8Array(32))
    ephemeralKey = suite.x25519PublicKey(ephemeralSecret)
    const recipientX = ed25519ToX25519Public(recipientKey)
    key = deriveKey(suite, suite.x25519(ephemeralSecret, recipientX), ephemeralKey, recipientX)
    ephemeralSecret.fill(0)
  }
  const nonce = input.random(new Uint8Array(NONCE_BYTES))
  // fields set one by one (the generated constructor walks Object.keys of a properties object)
  const env = new dbc.envelope.v1.Envelope()
  env.sender = input.sender
  env.recipient = input.recipient
  env.messageId = messageId
  env.expiresAt = input.expiresAt
  env.sequence = input.sequence ?? 0
  env.contentType = input.contentType ?? 0
  env.ephemeralKey = ephemeralKey
  env.nonce = nonce
  const into = input.sign === false && input.place !== undefined ? input.place(env, input.payload.length + TAG_BYTES) : undefined
  // (after place: the AAD is a view of scratch space, valid until the next envelopeAad call)
  const aad = envelopeAad(env, true)
  if (into !== undefined) {
    if (into.length !== input.payload.length + TAG_BYTES) throw new RangeError('place returned a view of the wrong length')
    if (suite.sealInto !== undefined) suite.sealInto(key, nonce, aad, input.payload, into)
    else into.set(suite.seal(key, nonce, aad, input.payload))
    env.ciphertext = into
    env.signature = EMPTY
    env.payload = EMPTY
    return env
  }
  const ciphertext = suite.seal(key, nonce, aad, input.payload)
  env.ciphertext = ciphertext
  env.signature = input.sign === false ? EMPTY : suite.sign(seed, signedBytes(aad, ciphertext))
  env.payload = EMPTY
  return env
}

export type UnsealedInput = Pick<SealInput, 'sender' | 'recipient' | 'payload' | 'expiresAt' | 'sequence' | 'contentType' | 'messageId' | 'random'>

/**
 * A copy for its sender to hand to the recipient itself, on a connection to the recipient's peer
 * id: no seal, no signature, the payload in the clear `payload` field (see the header). Never for
 * a copy that goes through a relay.
 */
export function unsealedEnvelope (input: UnsealedInput): Envelope {
  if (ed25519KeyFromPeerIdBytes(input.recipient) === undefined) throw new RangeError('the recipient peer id carries no Ed25519 key; only Ed25519 peer ids can receive envelopes')
  if (ed25519KeyFromPeerIdBytes(input.sender) === undefined) throw new RangeError('the sender peer id carries no Ed25519 key')
  // (the fields in sealEnvelope's order: one object shape for every envelope)
  const env = new dbc.envelope.v1.Envelope()
  env.sender = input.sender
  env.recipient = input.recipient
  env.messageId = input.messageId ?? input.random(new Uint8Array(MESSAGE_ID_BYTES))
  env.expiresAt = input.expiresAt
  env.sequence = input.sequence ?? 0
  env.contentType = input.contentType ?? 0
  env.ephemeralKey = EMPTY
  env.nonce = EMPTY
  env.ciphertext = EMPTY
  env.signature = EMPTY
  env.payload = input.payload
  return env
}

/** Adds the sender's signature to an envelope sealed with `sign: false` (before it goes to a relay). */
export function signEnvelope (e: Envelope, senderSecretKey: Uint8Array, suite: CryptoSuite = nodeSuite): Envelope {
  if (e.signature.length === 0) e.signature = suite.sign(ed25519Seed(senderSecretKey), signedBytes(envelopeAad(e, true), e.ciphertext))
  return e
}

/**
 * signEnvelope off this thread where the suite can (node:crypto signs in libuv's thread pool):
 * `done` comes later with the envelope signed in place, or an error (it stays unsigned then). The
 * overlay signs a message's relayed copy this way, so that a direct copy's ack arriving meanwhile
 * is not held up behind ~40 us of Ed25519 on the event loop.
 */
export function signEnvelopeAsync (e: Envelope, senderSecretKey: Uint8Array, done: (err: Error | undefined, e: Envelope) => void, suite: CryptoSuite = nodeSuite): void {
  if (e.signature.length !== 0) { queueMicrotask(() => { done(undefined, e) }); return }
  let signed: Uint8Array; let seed: Uint8Array
  try {
    signed = signedBytes(envelopeAad(e, true), e.ciphertext)
    seed = ed25519Seed(senderSecretKey)
  } catch (err) { queueMicrotask(() => { done(err as Error, e) }); return }
  const finish = (err: Error | undefined, signature?: Uint8Array): void => {
    // (the synchronous path may have signed it meanwhile: the signature is deterministic either way)
    if (err === undefined && signature !== undefined && e.signature.length === 0) e.signature = signature
    done(err, e)
  }
  if (suite.signAsync !== undefined) { suite.signAsync(seed, signed, finish); return }
  let signature: Uint8Array
  try { signature = suite.sign(seed, signed) } catch (err) { queueMicrotask(() => { finish(err as Error) }); return }
  queueMicrotask(() => { finish(undefined, signature) })
}

/** Protobuf bytes of an envelope (src/crypto/envelope-codec.ts: one buffer, the generated encoder's bytes). */
export function encodeEnvelope (e: Envelope): Uint8Array {
  return encodeEnvelopeFast(e)
}

export interface CheckOptions {
  now: number
  /** Encoded size when the caller already knows it (saves re-encoding a decoded envelope). */
  knownSize?: number
  maxBytes?: number
  maxLifetimeMs?: number
  suite?: CryptoSuite
  /**
   * checkEnvelope only (a relay): the neighbour that handed the envelope over is its sender, on a
   * connection authenticated to the sender's peer id. The connection then proves what the
   * signature would (who sent it), so the Ed25519 verify (~100 us, a relay's largest cost) is
   * skipped; the signature must still be there (a recipient may verify it: see the header).
   */
  deliveredBySender?: boolean
}

function decodeBounded (input: Uint8Array | Envelope, maxBytes: number, knownSize?: number): CheckResult {
  if (!(input instanceof Uint8Array)) {
    const size = knownSize ?? dbc.envelope.v1.Envelope.encode(input).len
    if (size > maxBytes) return { ok: false, reason: 'oversized', detail: `envelope of ${size} bytes exceeds ${maxBytes}` }
    return { ok: true, envelope: input }
  }
  if (input.length > maxBytes) return { ok: false, reason: 'oversized', detail: `envelope of ${input.length} bytes exceeds ${maxBytes}` }
  try {
    return { ok: true, envelope: dbc.envelope.v1.Envelope.decode(input) }
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: `does not decode: ${(err as Error).message}` }
  }
}

/**
 * Everything a relay or recipient can check without the recipient's key: size, shape,
 * the sender's signature, and expiry. Never throws.
 */
export function checkEnvelope (input: Uint8Array | Envelope, opts: CheckOptions): CheckResult {
  const shaped = checkShape(input, opts)
  if (!shaped.ok) return shaped
  const e = shaped.envelope
  const suite = opts.suite ?? nodeSuite
  // (checkShape lets only static-mode envelopes be unsigned; what goes through a relay is signed)
  if (isUnsealed(e)) return { ok: false, reason: 'malformed', detail: 'an unsealed copy is never relayed: its sender hands it to the recipient itself', envelope: e }
  if (e.signature.length === 0) return { ok: false, reason: 'forged', detail: 'unsigned: a copy that goes through a relay must carry its sender\'s signature', envelope: e }
  if (opts.deliveredBySender === true) return checkExpiry(e, opts)
  if (!signatureValid(suite, e)) return { ok: false, reason: 'forged', detail: 'signature does not verify against the sender peer id', envelope: e }
  return checkExpiry(e, opts)
}

// (module-level, not closures: tsx names every named closure it creates, a defineProperty each)
function malformedOf (e: Envelope, detail: string): CheckResult {
  return { ok: false, reason: 'malformed', detail, envelope: e }
}

function checkShape (input: Uint8Array | Envelope, opts: CheckOptions): CheckResult {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES
  const decoded = decodeBounded(input, maxBytes, opts.knownSize)
  if (!decoded.ok) return decoded
  const e = decoded.envelope
  if (ed25519KeyFromPeerIdBytes(e.sender) === undefined) return malformedOf(e, 'sender is not an Ed25519 peer id')
  if (ed25519KeyFromPeerIdBytes(e.recipient) === undefined) return malformedOf(e, 'recipient is not an Ed25519 peer id')
  if (e.messageId.length !== MESSAGE_ID_BYTES) return malformedOf(e, `message id has ${e.messageId.length} bytes, expected ${MESSAGE_ID_BYTES}`)
  if (!Number.isFinite(e.expiresAt)) return malformedOf(e, 'expiry is not a number')
  if (e.nonce.length === 0) {
    // an unsealed copy: the payload in the clear, nothing of a seal or a signature beside it
    if (e.ephemeralKey.length !== 0 || e.ciphertext.length !== 0 || e.signature.length !== 0) return malformedOf(e, 'an unsealed copy (no nonce) carries no ephemeral key, ciphertext or signature')
    return { ok: true, envelope: e }
  }
  if (e.payload.length !== 0) return malformedOf(e, 'a sealed envelope carries no clear payload')
  if (e.ephemeralKey.length !== 32 && e.ephemeralKey.length !== 0) return malformedOf(e, 'ephemeral key is neither 32 bytes nor empty (static mode)')
  if (e.nonce.length !== NONCE_BYTES) return malformedOf(e, `nonce is not ${NONCE_BYTES} bytes`)
  if (e.ciphertext.length < TAG_BYTES) return malformedOf(e, 'ciphertext shorter than its tag')
  if (e.signature.length !== 64 && !(e.signature.length === 0 && e.ephemeralKey.length === 0)) return malformedOf(e, 'signature is not 64 bytes (only a static-mode envelope may be unsigned)')
  return { ok: true, envelope: e }
}

function signatureValid (suite: CryptoSuite, e: Envelope): boolean {
  if (e.signature.length === 0) return false
  const senderKey = ed25519KeyFromPeerIdBytes(e.sender)
  return senderKey !== undefined && suite.verify(senderKey, signedBytes(envelopeAad(e, true), e.ciphertext), e.signature)
}

function checkExpiry (e: Envelope, opts: CheckOptions): CheckResult {
  if (e.expiresAt <= opts.now) return { ok: false, reason: 'expired', detail: `expired ${opts.now - e.expiresAt} ms ago`, envelope: e }
  const maxLifetime = opts.maxLifetimeMs ?? DEFAULT_MAX_LIFETIME_MS
  if (e.expiresAt - opts.now > maxLifetime) return { ok: false, reason: 'malformed', detail: `expiry is ${e.expiresAt - opts.now} ms ahead, more than the ${maxLifetime} ms allowed`, envelope: e }
  return { ok: true, envelope: e }
}

export interface OpenOptions extends CheckOptions {
  /** Our own Ed25519 secret key (32-byte seed or 64-byte libp2p form). */
  recipientSecretKey: Uint8Array
  /** Our own peer id bytes. */
  recipient: Uint8Array
  /**
   * false: in static mode, let a verifying AEAD tag stand for the sender's signature (saves an
   * Ed25519 verify; the signature itself is then unchecked). Default true: always verify.
   */
  verifySignature?: boolean
  /**
   * The neighbour that handed us this envelope is its sender (an authenticated connection to the
   * sender peer id). With `verifySignature: false` an unsigned static-mode envelope is accepted
   * from anyone (its AEAD tag proves it); otherwise only when this is true.
   */
  deliveredBySender?: boolean
}

function forgedOf (e: Envelope): OpenResult {
  return { ok: false, reason: 'forged', detail: 'signature does not verify against the sender peer id', envelope: e }
}

/**
 * Checks, then decrypts an envelope sent to us. Never throws on bad input. In static mode with
 * `verifySignature: false` a verifying AEAD tag authenticates the sender and the signature is
 * only checked when the tag fails (to tell 'forged' from 'undecryptable').
 */
export function openEnvelope (input: Uint8Array | Envelope, opts: OpenOptions): OpenResult {
  const shaped = checkShape(input, opts)
  if (!shaped.ok) return shaped
  const e = shaped.envelope
  if (isUnsealed(e)) return openUnsealed(e, opts)
  const suite = opts.suite ?? nodeSuite
  const staticMode = e.ephemeralKey.length === 0
  const unsigned = e.signature.length === 0
  if (!unsigned && (!staticMode || opts.verifySignature !== false || !bytesEqual(e.recipient, opts.recipient))) {
    if (!signatureValid(suite, e)) return forgedOf(e)
  }
  if (!bytesEqual(e.recipient, opts.recipient)) return { ok: false, reason: 'wrong-recipient', detail: 'the envelope is addressed to another peer', envelope: e }
  const ownKey = ed25519KeyFromPeerIdBytes(opts.recipient)
  if (ownKey === undefined) return { ok: false, reason: 'wrong-recipient', detail: 'our own peer id is not Ed25519', envelope: e }
  let payload: Uint8Array
  try {
    const seed = ed25519Seed(opts.recipientSecretKey)
    const key = staticMode
      ? staticKey(suite, seed, ed25519KeyFromPeerIdBytes(e.sender) as Uint8Array, e.sender, e.recipient)
      : deriveKey(suite, suite.x25519(ed25519ToX25519Secret(seed), e.ephemeralKey), e.ephemeralKey, ed25519ToX25519Public(ownKey))
    payload = suite.open(key, e.nonce, envelopeAad(e, true), e.ciphertext)
  } catch (err) {
    if (staticMode && !unsigned && !signatureValid(suite, e)) return forgedOf(e)
    return { ok: false, reason: 'undecryptable', detail: `payload does not decrypt: ${(err as Error).message}`, envelope: e }
  }
  // a recipient that verifies signatures wants one on what a relay hands over (a relay could
  // strip it); the sender's own connection vouches for an unsigned copy in any case
  if (unsigned && opts.verifySignature !== false && opts.deliveredBySender !== true) return { ok: false, reason: 'forged', detail: 'unsigned envelope handed over by a peer that is not its sender, and we verify signatures', envelope: e }
  const fresh = checkExpiry(e, opts)
  if (!fresh.ok) return fresh
  return { ok: true, payload, sender: e.sender, messageId: e.messageId, contentType: e.contentType, sequence: e.sequence, expiresAt: e.expiresAt, envelope: e }
}

/**
 * An unsealed copy sent to us: taken only from its sender's own connection (`deliveredBySender`:
 * the connection's handshake proved that peer id; anyone else could have written the clear fields)
 * and only when addressed to us.
 */
function openUnsealed (e: Envelope, opts: OpenOptions): OpenResult {
  if (opts.deliveredBySender !== true) return { ok: false, reason: 'forged', detail: 'an unsealed copy handed over by a peer that is not its sender (only the sender\'s own connection proves one)', envelope: e }
  if (!bytesEqual(e.recipient, opts.recipient)) return { ok: false, reason: 'wrong-recipient', detail: 'the envelope is addressed to another peer', envelope: e }
  const fresh = checkExpiry(e, opts)
  if (!fresh.ok) return fresh
  // (a copy: the field is a view into the frame's buffer, which the application may outlive)
  return { ok: true, payload: e.payload.slice(), sender: e.sender, messageId: e.messageId, contentType: e.contentType, sequence: e.sequence, expiresAt: e.expiresAt, envelope: e }
}
