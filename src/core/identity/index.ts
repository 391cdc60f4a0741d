// Peer identities as the core sees them: Ed25519 keys inside libp2p peer ids, and signatures.
// Pure functions (no I/O, no randomness): Ed25519 signing is deterministic.
import { ed25519 } from '@noble/curves/ed25519.js'

/**
 * A libp2p Ed25519 peer id is an identity multihash of the protobuf PublicKey:
 * 0x00 0x24 | 0x08 0x01 0x12 0x20 | 32 key bytes. Returns the 32-byte key, or undefined
 * for any other shape (RSA/secp256k1 ids carry no inline key and are not accepted here).
 */
export function ed25519KeyFromPeerIdBytes (peerId: Uint8Array): Uint8Array | undefined {
  return isEd25519PeerIdBytes(peerId) ? peerId.subarray(6, 38) : undefined
}

/** Whether ed25519KeyFromPeerIdBytes finds a key in `peerId`, without making the key's view (a shape check on every envelope). */
export function isEd25519PeerIdBytes (peerId: Uint8Array): boolean {
  return peerId.length === 38 && peerId[0] === 0x00 && peerId[1] === 0x24 && peerId[2] === 0x08 && peerId[3] === 0x01 && peerId[4] === 0x12 && peerId[5] === 0x20
}

/** The peer id bytes (identity multihash) that belong to a 32-byte Ed25519 public key. */
export function peerIdBytesFromEd25519Key (publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key has 32 bytes')
  const out = new Uint8Array(38)
  out.set([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
  out.set(publicKey, 6)
  return out
}

export function ed25519PublicKey (secretKey: Uint8Array): Uint8Array {
  return ed25519.getPublicKey(secretKey)
}

export function signBytes (secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  return ed25519.sign(message, secretKey)
}

/** False for a wrong signature and for malformed keys or signatures; never throws. */
export function verifyBytes (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  try {
    return ed25519.verify(signature, message, publicKey)
  } catch {
    return false
  }
}

/** Verifies a signature made by the key inside `peerId` (identity multihash bytes). */
export function verifyByPeerId (peerId: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  const key = ed25519KeyFromPeerIdBytes(peerId)
  return key !== undefined && verifyBytes(key, message, signature)
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function toHex (b: Uint8Array): string {
  let s = ''
  for (let i = 0; i < b.length; i++) s += HEX[b[i]]
  return s
}
