// A settlement batch: receipts of one job rolled up into a merkle root and one payout per
// provider payout address. Everything here is deterministic in its inputs: the same receipts
// give the same batch id, root and payout list whatever order they arrive in.
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { dbc } from '../../wire/gen/wire.js'
import { buildMerkleTree, merkleProof, receiptLeaf } from './merkle.js'
import { compareBytes, hex0x, type Hex32 } from './hex.js'

export type Address = `0x${string}`

/** What settlement needs from one verified receipt. */
export interface BatchReceipt {
  receiptId: Uint8Array
  /** The encoded UsageReceipt (the bytes the provider signed): the merkle leaf commits to it. */
  receiptBytes: Uint8Array
  payoutAddress: Address
  amount: bigint
}

export interface Payout {
  provider: Address
  amount: bigint
}

export interface SettlementBatch {
  /** keccak256 over the job id and the sorted receipt ids (see batchIdFor). */
  batchId: Hex32
  jobId: Uint8Array
  /** The job's key in the contract: keccak256(job id bytes). */
  chainJobId: Hex32
  root: Hex32
  receiptCount: number
  /** One entry per payout address, ascending by address. */
  payouts: Payout[]
  total: bigint
  /** Sorted ascending; leaves[i] belongs to receiptIds[i]. */
  receiptIds: Uint8Array[]
  leaves: Uint8Array[]
  createdAt: number
}

const BATCH_DOMAIN = new TextEncoder().encode('dbc.settlement.v1.batch')

export function isEvmAddress (s: string): s is Address {
  return /^0x[0-9a-fA-F]{40}$/.test(s)
}

/** The contract's job key: keccak256 of the job id bytes (job ids have any length). */
export function chainJobId (jobId: Uint8Array): Hex32 {
  return hex0x(keccak256(jobId))
}

/** keccak256(domain | len(job) | job | for each sorted receipt id: len(id) | id), lengths u16 BE. */
export function batchIdFor (jobId: Uint8Array, receiptIds: Uint8Array[]): Hex32 {
  const ids = [...receiptIds].sort(compareBytes)
  const parts: Uint8Array[] = [BATCH_DOMAIN, u16(jobId.length), jobId]
  for (const id of ids) parts.push(u16(id.length), id)
  return hex0x(keccak256(concat(parts)))
}

export function buildSettlementBatch (jobId: Uint8Array, receipts: BatchReceipt[], createdAt: number): SettlementBatch {
  if (receipts.length === 0) throw new RangeError('a settlement batch needs at least one receipt')
  const sorted = [...receipts].sort((a, b) => compareBytes(a.receiptId, b.receiptId))
  for (let i = 1; i < sorted.length; i++) {
    if (compareBytes(sorted[i - 1].receiptId, sorted[i].receiptId) === 0) throw new RangeError(`receipt ${hex0x(sorted[i].receiptId)} appears twice in one batch`)
  }
  const perAddress = new Map<string, bigint>()
  let total = 0n
  for (const r of sorted) {
    if (!isEvmAddress(r.payoutAddress)) throw new RangeError(`payout address ${r.payoutAddress} is not an EVM address`)
    if (r.amount < 0n) throw new RangeError('a receipt amount is negative')
    const key = r.payoutAddress.toLowerCase()
    perAddress.set(key, (perAddress.get(key) ?? 0n) + r.amount)
    total += r.amount
  }
  const payouts = [...perAddress.entries()].sort((a, b) => a[0] < b[0] ? -1 : 1).map(([provider, amount]) => ({ provider: provider as Address, amount }))
  const leaves = sorted.map(r => receiptLeaf(r.receiptBytes))
  const receiptIds = sorted.map(r => r.receiptId)
  return {
    batchId: batchIdFor(jobId, receiptIds),
    jobId,
    chainJobId: chainJobId(jobId),
    root: hex0x(buildMerkleTree(leaves).root),
    receiptCount: sorted.length,
    payouts,
    total,
    receiptIds,
    leaves,
    createdAt
  }
}

/** Proof that receipt `receiptId` is in `batch` (for Settlement.verifyReceipt). */
export function receiptProofInBatch (batch: SettlementBatch, receiptId: Uint8Array): Uint8Array[] {
  const i = batch.receiptIds.findIndex(id => compareBytes(id, receiptId) === 0)
  if (i < 0) throw new RangeError('receipt is not in this batch')
  return merkleProof(buildMerkleTree(batch.leaves), i)
}

export function encodeSettlementBatch (b: SettlementBatch): Uint8Array {
  return dbc.settlement.v1.SettlementBatch.encode({
    batchId: hexBytes(b.batchId),
    jobId: b.jobId,
    merkleRoot: hexBytes(b.root),
    payouts: b.payouts.map(p => ({ provider: p.provider, amount: p.amount.toString() })),
    receiptIds: b.receiptIds,
    createdAt: b.createdAt
  }).finish()
}

function hexBytes (h: string): Uint8Array {
  const s = h.slice(2)
  const out = new Uint8Array(s.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

function u16 (n: number): Uint8Array {
  if (n > 0xffff) throw new RangeError('id longer than 65535 bytes')
  return new Uint8Array([n >> 8, n & 0xff])
}

function concat (parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
