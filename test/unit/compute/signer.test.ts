import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createEd25519Signer } from '../../../src/compute/signer.js'
import { ed25519PublicKey, signBytes, verifyBytes } from '../../../src/core/identity/index.js'
import { createRng } from '../../../src/core/rng.js'

test('the native signer gives the reference Ed25519 signatures', () => {
  const rng = createRng(11)
  for (let i = 0; i < 20; i++) {
    const sk = rng.bytes(new Uint8Array(32))
    const msg = rng.bytes(new Uint8Array(i * 13))
    const sig = createEd25519Signer(sk)(msg)
    assert.equal([...sig], [...signBytes(sk, msg)])
    assert.ok(verifyBytes(ed25519PublicKey(sk), msg, sig))
  }
  assert.throws(() => createEd25519Signer(new Uint8Array(31)), /32 bytes/)
})
test.run()
