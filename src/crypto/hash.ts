// node:crypto's SHA-256 for the sans-IO core's hashing on the dispatch path (the receipt id, built
// by the provider and checked twice by the submitter per copy): src/core may not import node:
// modules, so runtimes pass this in; the core's default is @noble's, which is slower, most of all
// while its code is not yet optimised (the first few thousand calls of a daemon).
import { createHash } from 'node:crypto'
import type { Hasher } from '../core/settlement/receipt.js'

export const nodeSha256: Hasher = bytes => new Uint8Array(createHash('sha256').update(bytes).digest())
