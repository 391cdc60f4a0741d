// MerkleRoots (a growing list's roots, complete blocks kept) gives buildMerkleTree's root for every
// prefix, whatever the order of pushes and roots asked (the payer's: a batch of receipts, a
// signature over the payout's total, a root over fewer leaves than were pushed when a batch came
// between a voucher's row and its signing).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { buildMerkleTree, MerkleRoots, receiptLeaf } from '../../../../src/core/settlement/index.js'

const leaf = (i: number): Uint8Array => receiptLeaf(new TextEncoder().encode(`receipt-${i}`))
const all = Array.from({ length: 140 }, (_, i) => leaf(i))

test('one leaf at a time up to 140: each root, and every earlier prefix\'s, is buildMerkleTree\'s', () => {
  const m = new MerkleRoots()
  for (let n = 1; n <= all.length; n++) {
    m.push(all[n - 1])
    assert.equal(m.root(), buildMerkleTree(all.slice(0, n)).root, `root of ${n}`)
    // a prefix after the blocks of the longer list were kept
    for (const c of [1, Math.ceil(n / 3), n - 1].filter(c => c >= 1)) assert.equal(m.root(c), buildMerkleTree(all.slice(0, c)).root, `root of ${c} of ${n}`)
  }
  assert.is(m.length, all.length)
})

test('batches of any size, roots asked at any point (property)', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1000 })), { minLength: 1, maxLength: 8 }), (steps) => {
    const m = new MerkleRoots()
    let n = 0
    for (const [size, pick] of steps) {
      for (let i = 0; i < size && n < all.length; i++) m.push(all[n++])
      const c = 1 + (pick % n)
      assert.equal(m.root(c), buildMerkleTree(all.slice(0, c)).root)
      assert.equal(m.root(), buildMerkleTree(all.slice(0, n)).root)
    }
  }), { numRuns: 200 })
})

test('made from stored leaves: the same roots; bad input refused', () => {
  const m = new MerkleRoots(all.slice(0, 37))
  assert.equal(m.root(), buildMerkleTree(all.slice(0, 37)).root)
  assert.throws(() => m.root(0), /no merkle root over 0 of 37/)
  assert.throws(() => m.root(38), /no merkle root over 38 of 37/)
  assert.throws(() => new MerkleRoots().root(), /no merkle root over 0 of 0/)
  assert.throws(() => m.push(new Uint8Array(31)), /32 bytes/)
})

test.run()
