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
import { ed25519KeyFromPeerIdBytes, isEd25519PeerIdBytes } from '../core/identity/index.js'
import { encodeEnvelopeFast } from './envelope-codec.js'
import { nodeSuite, ed25519Seed, ed25519ToX25519Public, type CryptoSuite } from './suite.js'
import { staticKey, deriveKey } from './envelope-keys.js'
import { type Envelope, MESSAGE_ID_BYTES, NONCE_BYTES, TAG_BYTES, EMPTY, envelopeAad, signedBytes } from './envelope-aad.js'
export { staticAckKey } from './envelope-keys.js'
export { type Envelope, type EnvelopeRejection, type OpenResult, type CheckResult, MESSAGE_ID_BYTES, NONCE_BYTES, TAG_BYTES, DEFAULT_MAX_ENVELOPE_BYTES, DEFAULT_MAX_LIFETIME_MS, isUnsealed, envelopeAad } from './envelope-aad.js'
export { checkEnvelope, openEnvelope, type CheckOptions, type OpenOptions } from './envelope-open.js'

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

export function sealEnvelope (input: SealInput): Envelope {
  const suite = input.suite ?? nodeSuite
  if (input.sign === false && input.mode !== 'static') throw new RangeError('only static-mode envelopes may go unsigned (an ephemeral key proves nothing about the sender)')
  const recipientKey = ed25519KeyFromPeerIdBytes(input.recipient)
  if (recipientKey === undefined) throw new RangeError('the recipient peer id carries no Ed25519 key; only Ed25519 peer ids can receive sealed envelopes')
  if (!isEd25519PeerIdBytes(input.sender)) throw new RangeError('the sender peer id carries no Ed25519 key')
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
  if (!isEd25519PeerIdBytes(input.recipient)) throw new RangeError('the recipient peer id carries no Ed25519 key; only Ed25519 peer ids can receive envelopes')
  if (!isEd25519PeerIdBytes(input.sender)) throw new RangeError('the sender peer id carries no Ed25519 key')
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
