// A native Ed25519 signer for the hot path (receipts, offers): node:crypto signs ~25x faster
// than the pure-JS implementation in core/identity, and Ed25519 is deterministic, so both give
// the same signature bytes and either verifies the other's.
import { createPrivateKey, sign } from 'node:crypto'
import { bytesEqual, ed25519PublicKey, signBytes, verifyBytes } from '../core/identity/index.js'
import type { Ed25519Signer } from '../core/settlement/receipt.js'

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

export function createEd25519Signer (secretKey: Uint8Array): Ed25519Signer {
  if (secretKey.length !== 32) throw new RangeError('an Ed25519 secret key has 32 bytes')
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, secretKey]), format: 'der', type: 'pkcs8' })
  const signer: Ed25519Signer = message => new Uint8Array(sign(null, message, key))
  // Self-check once: the native signature must equal the reference one and verify.
  const probe = new TextEncoder().encode('dbc signer self-check')
  const native = signer(probe)
  if (!bytesEqual(native, signBytes(secretKey, probe)) || !verifyBytes(ed25519PublicKey(secretKey), probe, native)) {
    return message => signBytes(secretKey, message)
  }
  return signer
}
