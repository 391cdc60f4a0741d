// node:crypto's SHA-256 for the sans-IO core's hashing on the dispatch path (the receipt id, built
// by the provider and checked twice by the submitter per copy): src/core may not import node:
// modules, so runtimes pass this in; the core's default is @noble's, which is slower, most of all
// while its code is not yet optimised (the first few thousand calls of a daemon).
// crypto.hash (Node 21.7+; the project needs Node 22) hashes in one call, without a Hash object per
// digest (~0.9 against ~1.3 us for 200 bytes).
import { hash } from 'node:crypto'
import type { Hasher } from '../core/settlement/receipt.js'

/** SHA-256 of `bytes`, a Uint8Array of its own (32 bytes). */
export const nodeSha256: Hasher = bytes => new Uint8Array(hash('sha256', bytes, 'buffer'))
