// `dbc id` reads the peer id without libp2p: it must agree with node/identity.ts exactly.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { loadOrCreateIdentity, identityPath } from '../../../src/node/identity.js'
import { DEFAULT_DATA_DIR } from '../../../src/node/config.js'
import { readPublicIdentity, publicIdentityOf, base58btc } from '../../../src/cli/identity-read.js'
import { dataDirOf, identityFileOf } from '../../../src/cli/context.js'
import { DbcError } from '../../../src/errors.js'

const root = mkdtempSync(join(tmpdir(), 'dbc-idread-'))

test('peer id and public key equal what libp2p derives, for many keys', async () => {
  for (let i = 0; i < 20; i++) {
    const dir = join(root, `n${i}`)
    const { identity } = await loadOrCreateIdentity(dir)
    const fast = await readPublicIdentity(dir)
    assert.ok(fast !== undefined)
    assert.is(fast.peerId, identity.peerId.toString())
    assert.equal(Buffer.from(fast.publicKey), Buffer.from(identity.privateKey.publicKey.raw))
  }
})

test('no identity yet: undefined', async () => {
  assert.is(await readPublicIdentity(join(root, 'none')), undefined)
})

test('a key others can read is still refused (by node/identity.ts, as before)', async () => {
  const dir = join(root, 'open')
  await loadOrCreateIdentity(dir)
  chmodSync(identityPath(dir), 0o644)
  try { await readPublicIdentity(dir); assert.unreachable() } catch (err) {
    assert.instance(err, DbcError)
    assert.is((err as DbcError).code, 'IDENTITY_PERMISSIONS')
  }
})

test('a damaged key goes to the full reader and its error', async () => {
  const dir = join(root, 'bad')
  await loadOrCreateIdentity(dir)
  writeFileSync(identityPath(dir), Uint8Array.of(8, 1, 18, 3, 1, 2, 3), { mode: 0o600 })
  assert.is(publicIdentityOf(Uint8Array.of(8, 1, 18, 3, 1, 2, 3)), undefined)
  try { await readPublicIdentity(dir); assert.unreachable() } catch (err) {
    assert.is((err as DbcError).code, 'IDENTITY_CORRUPT')
  }
})

test('base58btc: leading zeros and known vectors', () => {
  assert.is(base58btc(Uint8Array.of()), '')
  assert.is(base58btc(Uint8Array.of(0, 0, 1)), '112')
  assert.is(base58btc(new TextEncoder().encode('hello world')), 'StV1DL6CwTryKyV')
})

test('the CLI\'s default data dir and identity file are the node\'s', () => {
  const saved = process.env.DBC_DATA_DIR
  delete process.env.DBC_DATA_DIR
  try {
    assert.is(dataDirOf(new Command('x')), DEFAULT_DATA_DIR)
  } finally {
    if (saved !== undefined) process.env.DBC_DATA_DIR = saved
  }
  assert.is(identityFileOf('/d'), identityPath('/d'))
})

test.after(() => { rmSync(root, { recursive: true, force: true }) })
test.run()
