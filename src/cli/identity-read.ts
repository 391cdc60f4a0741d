// `dbc id` without libp2p: the peer id and public key straight from <dataDir>/identity.key.
// Loading @libp2p/crypto and @libp2p/peer-id costs a few hundred ms at every start, and an
// Ed25519 identity needs neither: the file is the protobuf PrivateKey { Type = Ed25519 (1),
// Data = seed || public key }, and the peer id is the base58btc identity multihash of the
// protobuf PublicKey { Type = 1, Data = public key }. Anything else (another key type, a
// damaged file, wrong permissions) goes to node/identity.ts, which owns the errors.
import { readFileSync, statSync } from 'node:fs'
import { identityFileOf } from './context.js'

export interface PublicIdentity { peerId: string, publicKey: Uint8Array }

// PrivateKey { 1: varint 1 (Ed25519), 2: bytes[64] }
const PRIVATE_HEAD = Uint8Array.of(0x08, 0x01, 0x12, 0x40)
// identity multihash (code 0x00, length 36) of PublicKey { 1: varint 1, 2: bytes[32] }
const PEER_ID_HEAD = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20)

/** The identity's public half; undefined when the data dir has none yet. */
export async function readPublicIdentity (dataDir: string): Promise<PublicIdentity | undefined> {
  const file = identityFileOf(dataDir)
  let bytes: Uint8Array | undefined
  try {
    // the permission check of node/identity.ts must still refuse a key others can read
    if ((statSync(file).mode & 0o077) === 0) bytes = readFileSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
  }
  const fast = bytes === undefined ? undefined : publicIdentityOf(bytes)
  if (fast !== undefined) return fast
  const { readIdentity } = await import('../node/identity.js')
  const id = readIdentity(dataDir)
  return id === undefined ? undefined : { peerId: id.peerId.toString(), publicKey: id.privateKey.publicKey.raw }
}

/** Peer id and public key of a protobuf Ed25519 private key; undefined for any other layout. */
export function publicIdentityOf (file: Uint8Array): PublicIdentity | undefined {
  if (file.length !== PRIVATE_HEAD.length + 64) return undefined
  for (let i = 0; i < PRIVATE_HEAD.length; i++) if (file[i] !== PRIVATE_HEAD[i]) return undefined
  const publicKey = file.slice(PRIVATE_HEAD.length + 32)
  const multihash = new Uint8Array(PEER_ID_HEAD.length + 32)
  multihash.set(PEER_ID_HEAD)
  multihash.set(publicKey, PEER_ID_HEAD.length)
  return { peerId: base58btc(multihash), publicKey }
}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** Base58 (bitcoin alphabet), as peer ids are written. */
export function base58btc (bytes: Uint8Array): string {
  let zeros = 0
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++
  const digits: number[] = []
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i]
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] << 8
      digits[j] = carry % 58
      carry = (carry / 58) | 0
    }
    while (carry > 0) { digits.push(carry % 58); carry = (carry / 58) | 0 }
  }
  return '1'.repeat(zeros) + digits.reverse().map(d => ALPHABET[d]).join('')
}
