// The node's EVM key: a hex private key in a file (mode 0600), created on first use.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { ChainError } from '../errors.js'
import type { Hex } from './config.js'

export function readKeyFile (path: string): Hex {
  let text: string
  try {
    text = readFileSync(path, 'utf8').trim()
  } catch (err) {
    throw new ChainError('KEY_FILE', `cannot read the chain key file ${path}`, { cause: err, hint: 'point chain.keyFile at a file holding a 0x-prefixed 32-byte hex private key' })
  }
  const key = text.startsWith('0x') ? text : `0x${text}`
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw new ChainError('KEY_FILE', `the chain key file ${path} does not hold a 32-byte hex private key`, { hint: 'write the key as 64 hex digits, optionally 0x-prefixed' })
  return key as Hex
}

/** Reads the key at `path`, or creates a fresh random one there (atomically). */
export function loadOrCreateKey (path: string): Hex {
  if (existsSync(path)) return readKeyFile(path)
  mkdirSync(dirname(path), { recursive: true })
  const key = `0x${randomBytes(32).toString('hex')}` as Hex
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, key + '\n', { mode: 0o600 })
  renameSync(tmp, path)
  return key
}
