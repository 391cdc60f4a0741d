// Signatures on a training state handed from peer to peer: the sender signs the state's digest
// (src/core/training/state.ts) with its node key, the receiver checks it with the key inside the
// sender's peer id. The digest itself is checked against what the members agreed on; the
// signature makes a bad state the sender's provable word, not a relay's.
import { peerIdFromString } from '@libp2p/peer-id'
import { signBytes, verifyByPeerId } from '../core/identity/index.js'

/** A signer for TrainingService/TrainingSession from the node's 32-byte Ed25519 secret key. */
export function stateSigner (secretKey: Uint8Array): (digest: Uint8Array) => Uint8Array {
  return (digest) => signBytes(secretKey, digest)
}

/** Whether `signature` is `peer`'s over `digest`; false for anything malformed. */
export function verifyStateSignature (peer: string, digest: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verifyByPeerId(peerIdFromString(peer).toMultihash().bytes, digest, signature)
  } catch {
    return false
  }
}
