// The node's persistent Ed25519 identity: a protobuf-encoded libp2p private key in
// <dataDir>/identity.key, mode 0600. The same data dir always yields the same peer id.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey, PeerId } from '@libp2p/interface'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync, renameSync, openSync, fsyncSync, closeSync } from 'node:fs'
import { join } from 'node:path'
import { DbcError } from '../errors.js'

export const IDENTITY_FILE = 'identity.key'

export interface NodeIdentity {
  privateKey: PrivateKey
  peerId: PeerId
  /** Raw 32-byte Ed25519 seed, for signing records in the core. */
  secretKey: Uint8Array
}

export function identityPath (dataDir: string): string {
  return join(dataDir, IDENTITY_FILE)
}

function toIdentity (privateKey: PrivateKey): NodeIdentity {
  if (privateKey.type !== 'Ed25519') {
    throw new DbcError('IDENTITY_TYPE', `identity key is ${privateKey.type}, but dbc needs an Ed25519 key`, { hint: 'move the identity.key file away to create a new Ed25519 identity' })
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), secretKey: privateKey.raw.subarray(0, 32) }
}

/** Reads the identity; undefined when the data dir has none yet. */
export function readIdentity (dataDir: string): NodeIdentity | undefined {
  const file = identityPath(dataDir)
  if (!existsSync(file)) return undefined
  const mode = statSync(file).mode & 0o777
  if ((mode & 0o077) !== 0) {
    throw new DbcError('IDENTITY_PERMISSIONS', `identity key ${file} is readable by other users (mode ${mode.toString(8)})`, { hint: `run: chmod 600 ${file}` })
  }
  let key: PrivateKey
  try {
    key = privateKeyFromProtobuf(readFileSync(file))
  } catch (err) {
    throw new DbcError('IDENTITY_CORRUPT', `identity key ${file} cannot be read: ${(err as Error).message}`, { hint: 'restore it from a backup, or move it away to create a new identity (a new peer id)', cause: err })
  }
  return toIdentity(key)
}

/** Reads the identity, creating (and durably writing) a new one on first use. */
export async function loadOrCreateIdentity (dataDir: string): Promise<{ identity: NodeIdentity, created: boolean }> {
  const existing = readIdentity(dataDir)
  if (existing !== undefined) return { identity: existing, created: false }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const key = await generateKeyPair('Ed25519')
  const file = identityPath(dataDir)
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, privateKeyToProtobuf(key), { mode: 0o600 })
  const fd = openSync(tmp, 'r')
  fsyncSync(fd)
  closeSync(fd)
  renameSync(tmp, file)
  return { identity: toIdentity(key), created: true }
}
