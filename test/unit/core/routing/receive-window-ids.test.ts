// The receive window keyed by a message id's bytes (checkId: 30 bits of the id as the map key, the
// other 98 in the entry; src/core/routing/dedup.ts) gives the verdicts the window gave keyed by
// the id's hex text (check; the previous implementation, receive-window-reference.ts), and ids that
// share the key's 30 bits stay messages of their own.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ReceiveWindow } from '../../../../src/core/routing/index.js'
import { createRng } from '../../../../src/core/rng.js'
import { ReferenceReceiveWindow } from './receive-window-reference.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

function randomId (rng: ReturnType<typeof createRng>): Uint8Array {
  const id = new Uint8Array(16)
  for (let i = 0; i < 16; i++) id[i] = rng.int(256)
  return id
}

test('checkId: the verdicts and sizes of the hex-keyed window over random traffic (chains of owners, expiry, eviction, prune)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rng = createRng(seed)
    const capacity = [4, 16, 64][seed % 3]
    const w = new ReceiveWindow<string>(capacity)
    const ref = new ReferenceReceiveWindow<string>(capacity)
    const ids = Array.from({ length: seed % 2 === 0 ? 12 : 200 }, () => randomId(rng))
    let now = 0
    for (let i = 0; i < 3000; i++) {
      now += rng.int(4)
      if (rng.int(100) < 2) {
        assert.is(w.prune(now), ref.prune(now), `seed ${seed} op ${i}: prune`)
      } else {
        const id = ids[rng.int(ids.length)]
        const owner = rng.int(3) === 0 ? `o${rng.int(14)}` : 'o0'
        const expiresAt = now + 1 + (rng.int(10) === 0 ? rng.int(2000) : rng.int(60))
        const via = `v${rng.int(3)}`
        assert.is(w.checkId(now, id, expiresAt, via, owner), ref.check(now, hex(id), expiresAt, via, owner), `seed ${seed} op ${i}: check ${hex(id)} ${owner} ${via}`)
      }
      assert.is(w.size, ref.size, `seed ${seed} op ${i}: size`)
    }
  }
})

test('checkId: ids that share the key\'s 30 bits (a peer can pick them) are messages of their own, past the chain cap too', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rng = createRng(100 + seed)
    const w = new ReceiveWindow<string>(100_000)
    const ref = new ReferenceReceiveWindow<string>(100_000)
    // 40 ids alike in their first 4 bytes but for the top 2 bits of byte 3, and differing in any one later byte
    const base = randomId(rng)
    const ids = Array.from({ length: 40 }, (_, k) => {
      const id = base.slice()
      if (k > 0) { const at = k % 2 === 0 ? 3 : 4 + rng.int(12); id[at] ^= at === 3 ? (1 + rng.int(3)) << 6 : 1 + rng.int(255) }
      return id
    })
    // each message with its own expiry, checked only while alive (expired ones are refused before the window)
    const expiry = new Map<string, number>()
    let now = 0
    for (let i = 0; i < 2000; i++) {
      now += rng.int(3)
      const id = ids[rng.int(ids.length)]
      const owner = `o${rng.int(4)}`
      const k = `${hex(id)}/${owner}`
      const expiresAt = expiry.get(k) ?? now + 50 + rng.int(400)
      if (expiresAt <= now) continue
      expiry.set(k, expiresAt)
      const via = `v${rng.int(3)}`
      assert.is(w.checkId(now, id, expiresAt, via, owner), ref.check(now, hex(id), expiresAt, via, owner), `seed ${seed} op ${i}: ${hex(id)} ${owner} ${via}`)
    }
  }
  // the plain case by hand: one key, two ids, one owner
  const w = new ReceiveWindow<string>()
  const a = new Uint8Array(16).fill(1); const b = a.slice(); b[15] = 2
  assert.is(w.checkId(0, a, 100, 'v', 's'), 'new')
  assert.is(w.checkId(0, b, 100, 'v', 's'), 'new', 'another id under the same key')
  assert.is(w.checkId(1, b, 100, 'v', 's'), 'replayed')
  assert.is(w.checkId(1, a, 100, 'v2', 's'), 'duplicate')
  assert.is(w.size, 2)
})

test('checkId: ids of another length still get verdicts (their hex as the key)', () => {
  const w = new ReceiveWindow<string>()
  const id = new Uint8Array([1, 2, 3])
  assert.is(w.checkId(0, id, 100, 'v', 's'), 'new')
  assert.is(w.checkId(0, id, 100, 'v', 's'), 'replayed')
  assert.is(w.checkId(0, id, 100, 'v2', 's'), 'duplicate')
  assert.is(w.checkId(0, new Uint8Array([1, 2, 4]), 100, 'v', 's'), 'new')
})

test.run()
