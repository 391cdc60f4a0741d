// The envelope's AEAD keys (src/crypto/envelope.ts): static mode's pair keys (one X25519 + HKDF per
// peer pair, cached), the ack MAC key derived from them, and ephemeral mode's per-envelope key.
import { ed25519KeyFromPeerIdBytes, bytesEqual } from '../core/identity/index.js'
import { nodeSuite, ed25519Seed, ed25519ToX25519Public, ed25519ToX25519Secret, type CryptoSuite } from './suite.js'

const KEY_INFO = new TextEncoder().encode('dbc/envelope/v1/chacha20poly1305')
const STATIC_SALT = new TextEncoder().encode('dbc/envelope/v1/static')
const ACK_KEY_SALT = new TextEncoder().encode('dbc/ack/v1/mac')
/** AEAD keys of peer pairs in static mode, by "ourSeed/peerKey/sender" (latin1): one X25519 + HKDF per pair. */
interface PairKeys { seed: Uint8Array, peer: Uint8Array, sender: Uint8Array, key: Uint8Array, ackKey?: Uint8Array }
const staticKeys = new Map<string, PairKeys>()
/**
 * The last few pairs used, compared byte by byte: a chatty pair hits these without building the
 * ~100-character map key (three latin1 conversions and a string hash per envelope).
 */
const recentPairs: PairKeys[] = []
const RECENT_PAIRS = 8

function bytesKey (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1')
}

function pairKeys (suite: CryptoSuite, ourSeed: Uint8Array, peerEdKey: Uint8Array, sender: Uint8Array, recipient: Uint8Array): PairKeys {
  for (let i = 0; i < recentPairs.length; i++) {
    const r = recentPairs[i]
    if (bytesEqual(r.peer, peerEdKey) && bytesEqual(r.seed, ourSeed) && bytesEqual(r.sender, sender)) return r
  }
  const id = `${bytesKey(ourSeed)}/${bytesKey(peerEdKey)}/${bytesKey(sender)}`
  let pk = staticKeys.get(id)
  if (pk === undefined) {
    const shared = suite.x25519(ed25519ToX25519Secret(ourSeed), ed25519ToX25519Public(peerEdKey))
    const info = new Uint8Array(sender.length + recipient.length)
    info.set(sender); info.set(recipient, sender.length)
    // copies: the caller's arrays may be subarrays of buffers it reuses
    pk = { seed: ourSeed.slice(), peer: peerEdKey.slice(), sender: sender.slice(), key: suite.hkdfSha256(shared, STATIC_SALT, info, 32) }
    if (staticKeys.size >= 4096) staticKeys.delete(staticKeys.keys().next().value as string)
    staticKeys.set(id, pk)
  }
  if (recentPairs.length >= RECENT_PAIRS) recentPairs.pop()
  recentPairs.unshift(pk)
  return pk
}

/** The static-mode AEAD key between `ourSeed` and `peer`; `sender`/`recipient` order the HKDF info. */
export function staticKey (suite: CryptoSuite, ourSeed: Uint8Array, peerEdKey: Uint8Array, sender: Uint8Array, recipient: Uint8Array): Uint8Array {
  return pairKeys(suite, ourSeed, peerEdKey, sender, recipient).key
}

/**
 * The key that authenticates acks of static-mode envelopes from `sender` to `recipient` (an HMAC
 * key derived from their pair key, never used for the AEAD). Only those two peers can compute
 * it, so a relay can not forge a delivery; it replaces the recipient's Ed25519 ack signature
 * (sign + verify, ~100-200 us) with two HMACs. `weAreSender`: which of the two we are.
 * Undefined when a peer id carries no Ed25519 key.
 */
export function staticAckKey (ourSecretKey: Uint8Array, sender: Uint8Array, recipient: Uint8Array, weAreSender: boolean, suite: CryptoSuite = nodeSuite): Uint8Array | undefined {
  const peerKey = ed25519KeyFromPeerIdBytes(weAreSender ? recipient : sender)
  if (peerKey === undefined || ed25519KeyFromPeerIdBytes(weAreSender ? sender : recipient) === undefined) return undefined
  const pk = pairKeys(suite, ed25519Seed(ourSecretKey), peerKey, sender, recipient)
  if (pk.ackKey === undefined) pk.ackKey = suite.hkdfSha256(pk.key, ACK_KEY_SALT, new Uint8Array(0), 32)
  return pk.ackKey
}

export function deriveKey (suite: CryptoSuite, shared: Uint8Array, ephemeralPublic: Uint8Array, recipientX: Uint8Array): Uint8Array {
  const salt = new Uint8Array(64)
  salt.set(ephemeralPublic); salt.set(recipientX, 32)
  return suite.hkdfSha256(shared, salt, KEY_INFO, 32)
}

/** Seals and signs `payload` for `recipient`. Throws RangeError on bad keys (a local bug, not peer input). */
