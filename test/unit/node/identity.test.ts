import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { chmodSync, statSync, writeFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loadOrCreateIdentity, readIdentity, identityPath } from '../../../src/node/identity.js'
import { verifyByPeerId, signBytes } from '../../../src/core/identity/index.js'
import { DbcError } from '../../../src/errors.js'
import { tempDir } from '../../helpers/cli.js'

const dir = join(tempDir(), 'data')

test('an identity is created once, with mode 0600, and read back unchanged', async () => {
  assert.is(readIdentity(dir), undefined)
  const a = await loadOrCreateIdentity(dir)
  assert.is(a.created, true)
  assert.is(statSync(identityPath(dir)).mode & 0o777, 0o600)
  const b = await loadOrCreateIdentity(dir)
  assert.is(b.created, false)
  assert.is(b.identity.peerId.toString(), a.identity.peerId.toString())
})

test('the secret key signs for the peer id', async () => {
  const { identity } = await loadOrCreateIdentity(dir)
  const msg = new TextEncoder().encode('hello')
  const sig = signBytes(identity.secretKey, msg)
  assert.ok(verifyByPeerId(identity.peerId.toMultihash().bytes, msg, sig))
  assert.not.ok(verifyByPeerId(identity.peerId.toMultihash().bytes, new TextEncoder().encode('hellp'), sig))
})

test('a key readable by others, or a corrupt key, is refused with a fix', () => {
  chmodSync(identityPath(dir), 0o644)
  try { readIdentity(dir); assert.unreachable() } catch (err) {
    assert.instance(err, DbcError)
    assert.is((err as DbcError).code, 'IDENTITY_PERMISSIONS')
    assert.match((err as DbcError).hint ?? '', /chmod 600/)
  }
  writeFileSync(identityPath(dir), 'garbage', { mode: 0o600 })
  chmodSync(identityPath(dir), 0o600)
  try { readIdentity(dir); assert.unreachable() } catch (err) {
    assert.is((err as DbcError).code, 'IDENTITY_CORRUPT')
  }
})

test.after(() => { rmSync(join(dir, '..'), { recursive: true, force: true }) })
test.run()
