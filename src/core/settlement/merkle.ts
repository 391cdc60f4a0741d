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

/**
 * The roots of a list of leaves that only grows, equal to buildMerkleTree's: the node over a
 * complete aligned block (2^k leaves from a multiple of 2^k) is the same in every longer list, so
 * it is hashed once and kept; a root hashes the blocks completed since the last one and at most one
 * partial node per layer. (A payer signs a payout's total again and again while its receipts grow:
 * a tree built anew each time cost each signing all the payout's leaves.)
 */
export class MerkleRoots {
  /** blocks[k][j]: the node over leaves [j * 2^k, (j + 1) * 2^k), kept once hashed; blocks[0]: the leaves. */
  private readonly blocks: Uint8Array[][] = [[]]

  constructor (leaves: Iterable<Uint8Array> = []) { for (const l of leaves) this.push(l) }

  get length (): number { return this.blocks[0].length }

  push (leaf: Uint8Array): void {
    if (leaf.length !== 32) throw new RangeError('merkle leaves are 32 bytes')
    this.blocks[0].push(leaf)
  }

  /** The root over the first `count` leaves (default: all), as buildMerkleTree(leaves.slice(0, count)).root. */
  root (count = this.length): Uint8Array {
    if (!Number.isInteger(count) || count < 1 || count > this.length) throw new RangeError(`no merkle root over ${count} of ${this.length} leaves`)
    let k = 0
    while (2 ** k < count) k++
    return this.node(k, 0, count)
  }

  /** The node over block j of layer k in the tree of the first n leaves (the block starts before n). */
  private node (k: number, j: number, n: number): Uint8Array {
    if (k === 0) return this.blocks[0][j]
    const half = 2 ** (k - 1)
    const complete = (2 * j + 2) * half <= n
    if (complete) {
      const kept = this.blocks[k]?.[j]
      if (kept !== undefined) return kept
    }
    const left = this.node(k - 1, 2 * j, n)
    // an odd node at the end of a layer moves up unchanged
    const v = (2 * j + 1) * half < n ? hashPair(left, this.node(k - 1, 2 * j + 1, n)) : left
    if (complete) (this.blocks[k] ??= [])[j] = v
    return v
  }
}
