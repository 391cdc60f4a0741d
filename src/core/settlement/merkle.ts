// Merkle tree over receipt leaves, in the shape the Settlement contract verifies
// (OpenZeppelin-style): leaf = keccak256(keccak256(encoded UsageReceipt)) (the double hash keeps
// a leaf from ever equalling an inner node), inner node = keccak256 of the two children in
// ascending byte order (sorted pairs: a proof needs no left/right flags). An odd node at the
// end of a layer moves up unchanged.
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { compareBytes } from './hex.js'

export function receiptLeaf (receiptBytes: Uint8Array): Uint8Array {
  return keccak256(keccak256(receiptBytes))
}

export function hashPair (a: Uint8Array, b: Uint8Array): Uint8Array {
  const buf = new Uint8Array(64)
  if (compareBytes(a, b) <= 0) { buf.set(a, 0); buf.set(b, 32) } else { buf.set(b, 0); buf.set(a, 32) }
  return keccak256(buf)
}

export interface MerkleTree {
  /** layers[0] = leaves (in the given order), last layer = [root]. */
  layers: Uint8Array[][]
  root: Uint8Array
}

export function buildMerkleTree (leaves: Uint8Array[]): MerkleTree {
  if (leaves.length === 0) throw new RangeError('a merkle tree needs at least one leaf')
  for (const l of leaves) if (l.length !== 32) throw new RangeError('merkle leaves are 32 bytes')
  const layers: Uint8Array[][] = [leaves]
  let layer = leaves
  while (layer.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i < layer.length; i += 2) next.push(i + 1 < layer.length ? hashPair(layer[i], layer[i + 1]) : layer[i])
    layers.push(next)
    layer = next
  }
  return { layers, root: layer[0] }
}

/** Sibling hashes from leaf `index` up to the root. */
export function merkleProof (tree: MerkleTree, index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= tree.layers[0].length) throw new RangeError(`no leaf ${index}`)
  const proof: Uint8Array[] = []
  let i = index
  for (let d = 0; d < tree.layers.length - 1; d++) {
    const layer = tree.layers[d]
    const sibling = i ^ 1
    if (sibling < layer.length) proof.push(layer[sibling])
    i >>= 1
  }
  return proof
}

export function verifyMerkleProof (root: Uint8Array, leaf: Uint8Array, proof: Uint8Array[]): boolean {
  let node = leaf
  for (const sib of proof) node = hashPair(node, sib)
  return compareBytes(node, root) === 0
}
