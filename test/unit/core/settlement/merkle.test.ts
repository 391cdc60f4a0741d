import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { buildMerkleTree, hashPair, merkleProof, receiptLeaf, verifyMerkleProof } from '../../../../src/core/settlement/index.js'

const leaf = (i: number): Uint8Array => receiptLeaf(new TextEncoder().encode(`receipt-${i}`))

test('a single leaf is its own root', () => {
  const t = buildMerkleTree([leaf(1)])
  assert.equal(t.root, leaf(1))
  assert.equal(merkleProof(t, 0), [])
})

test('two leaves: root is keccak of the sorted pair, either order', () => {
  const a = leaf(1); const b = leaf(2)
  const [lo, hi] = Buffer.compare(Buffer.from(a), Buffer.from(b)) < 0 ? [a, b] : [b, a]
  const expected = keccak256(new Uint8Array([...lo, ...hi]))
  assert.equal(buildMerkleTree([a, b]).root, expected)
  assert.equal(buildMerkleTree([b, a]).root, expected)
  assert.equal(hashPair(a, b), hashPair(b, a))
})

test('leaf is the double keccak of the receipt bytes', () => {
  const bytes = new TextEncoder().encode('x')
  assert.equal(receiptLeaf(bytes), keccak256(keccak256(bytes)))
})

test('every leaf of trees of 1..70 leaves has a proof that verifies; wrong leaves do not', () => {
  for (let n = 1; n <= 70; n++) {
    const leaves = Array.from({ length: n }, (_, i) => leaf(i))
    const t = buildMerkleTree(leaves)
    for (let i = 0; i < n; i++) {
      const proof = merkleProof(t, i)
      assert.ok(proof.length <= Math.ceil(Math.log2(n)) + 1)
      assert.ok(verifyMerkleProof(t.root, leaves[i], proof), `n=${n} i=${i}`)
      assert.not.ok(verifyMerkleProof(t.root, leaf(1000 + i), proof), `forged leaf n=${n} i=${i}`)
    }
  }
})

test('property: a proof for one leaf never verifies another leaf of the tree', () => {
  fc.assert(fc.property(fc.integer({ min: 2, max: 40 }), fc.nat(), fc.nat(), (n, a, b) => {
    const i = a % n; const j = b % n
    fc.pre(i !== j)
    const leaves = Array.from({ length: n }, (_, k) => leaf(k))
    const t = buildMerkleTree(leaves)
    return !verifyMerkleProof(t.root, leaves[j], merkleProof(t, i)) || n === 2 // with 2 leaves the sibling proof is symmetric
  }), { numRuns: 200 })
})

test('an empty tree and bad leaves are refused', () => {
  assert.throws(() => buildMerkleTree([]), /at least one leaf/)
  assert.throws(() => buildMerkleTree([new Uint8Array(31)]), /32 bytes/)
  assert.throws(() => merkleProof(buildMerkleTree([leaf(1)]), 1), /no leaf/)
})

test.run()
