// The receive window finds its oldest entry through one kept iterator (src/core/routing/dedup.ts
// head): every verdict is the previous implementation's (a copy in receive-window-reference.ts),
// and a full window no longer walks its map from the start on every message (a JavaScript Map
// keeps deleted slots until it is rehashed, so each fresh walk stepped over all of them: ~100 us
// per message with 65,536 entries).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ReceiveWindow } from '../../../../src/core/routing/index.js'
import { createRng } from '../../../../src/core/rng.js'
import { ReferenceReceiveWindow } from './receive-window-reference.js'

test('verdicts, sizes and has() are the previous implementation\'s over random traffic (collisions, chains, expiry, eviction, prune)', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rng = createRng(seed)
    const capacity = [4, 16, 64][seed % 3]
    const w = new ReceiveWindow<string>(capacity)
    const ref = new ReferenceReceiveWindow<string>(capacity)
    // few ids (keys deleted and added again while they may be the oldest), many owners on one id
    // (chains past their cap of 8, keys of their own), a few neighbours (replays and duplicates)
    const ids = seed % 2 === 0 ? 12 : 200
    let now = 0
    for (let i = 0; i < 3000; i++) {
      now += rng.int(4)
      const op = rng.int(100)
      if (op < 2) {
        assert.is(w.prune(now), ref.prune(now), `seed ${seed} op ${i}: prune`)
      } else {
        const key = `m${rng.int(ids)}`
        const owner = rng.int(3) === 0 ? `o${rng.int(14)}` : 'o0'
        const expiresAt = now + 1 + (rng.int(10) === 0 ? rng.int(2000) : rng.int(60))
        const via = `v${rng.int(3)}`
        assert.is(w.check(now, key, expiresAt, via, owner), ref.check(now, key, expiresAt, via, owner), `seed ${seed} op ${i}: check ${key} ${owner} ${via}`)
      }
      assert.is(w.size, ref.size, `seed ${seed} op ${i}: size`)
      if (i % 50 === 0) {
        for (let k = 0; k < ids && k < 30; k++) for (const o of ['o0', 'o1', 'o9']) assert.is(w.has(`m${k}`, o), ref.has(`m${k}`, o), `seed ${seed} op ${i}: has m${k} ${o}`)
      }
    }
  }
})

/** A Map that counts the iterations started over it (entries(), for..of). */
class CountingMap<K, V> extends Map<K, V> {
  walks = 0
  override entries (): MapIterator<[K, V]> { this.walks++; return super.entries() }
  override [Symbol.iterator] (): MapIterator<[K, V]> { this.walks++; return super.entries() }
}

test('a full window evicts without walking its map from the start per message', () => {
  const w = new ReceiveWindow<string>(1000)
  const seen = new CountingMap<string, unknown>()
  ;(w as unknown as { seen: Map<string, unknown> }).seen = seen
  // 20,000 messages, 1 ms apart, each alive 60 s: the window is full after 1,000 and every
  // further message evicts the oldest (and a full scan, prune, runs at most once a second)
  for (let i = 0; i < 20_000; i++) assert.is(w.check(i, `m${i}`, i + 60_000, 'v', 's'), 'new')
  assert.is(w.size, 1000)
  assert.is(w.check(20_000, 'm19999', 79_999, 'v', 's'), 'replayed')
  assert.is(w.check(20_001, 'm5', 60_005, 'v2', 's'), 'replayed', 'evicted: below the low-water mark')
  // ~19 prunes (one a second of the 19 s full) and a few iterators for the head; before, one walk per message
  assert.ok(seen.walks <= 60, `${seen.walks} walks over the map for 20,000 messages`)
})

test.run()
