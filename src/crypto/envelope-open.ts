// Checking and opening sealed envelopes (the design: src/crypto/envelope.ts): what a relay can
// check without the recipient's key (checkEnvelope: size, shape, signature, expiry) and what the
// recipient does (openEnvelope: those checks, then the AEAD, or for an unsealed copy its sender's
// own connection). Never throws on bad input.
import { dbc } from '../wire/gen/wire.js'
import { ed25519KeyFromPeerIdBytes, isEd25519PeerIdBytes, bytesEqual } from '../core/identity/index.js'
import { nodeSuite, ed25519Seed, ed25519ToX25519Public, ed25519ToX25519Secret, type CryptoSuite } from './suite.js'
import { staticKey, deriveKey } from './envelope-keys.js'
import { type Envelope, type CheckResult, type OpenResult, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_MAX_LIFETIME_MS, MESSAGE_ID_BYTES, NONCE_BYTES, TAG_BYTES, isUnsealed, envelopeAad, signedBytes } from './envelope-aad.js'

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
  if (!isEd25519PeerIdBytes(e.sender)) return malformedOf(e, 'sender is not an Ed25519 peer id')
  if (!isEd25519PeerIdBytes(e.recipient)) return malformedOf(e, 'recipient is not an Ed25519 peer id')
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
