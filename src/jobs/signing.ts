// Ed25519 through node:crypto (about 20x faster than the pure-JS signer the sans-IO core
// uses; the signatures are the same bytes). Runtime code passes these into core checks.
import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'
import { ed25519KeyFromPeerIdBytes, ed25519PublicKey, toHex } from '../core/identity/index.js'

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

export function nodeSigner (secretKey: Uint8Array): (msg: Uint8Array) => Uint8Array {
  const key = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(secretKey), x: b64u(ed25519PublicKey(secretKey)) }, format: 'jwk' })
  return msg => new Uint8Array(sign(null, msg, key))
}

const publicKeys = new Map<string, KeyObject>()

/** Same contract as core's verifyByPeerId: false for anything malformed, never throws. */
export function nodeVerifyByPeerId (peerId: Uint8Array, msg: Uint8Array, signature: Uint8Array): boolean {
  const raw = ed25519KeyFromPeerIdBytes(peerId)
  if (raw === undefined || signature.length !== 64) return false
  const id = toHex(raw)
  let key = publicKeys.get(id)
  if (key === undefined) {
    try { key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(raw) }, format: 'jwk' }) } catch { return false }
    if (publicKeys.size > 10_000) publicKeys.clear()
    publicKeys.set(id, key)
  }
  try { return verify(null, msg, key, signature) } catch { return false }
}
