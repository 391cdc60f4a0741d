// Job ids as the bridge takes them. The contract keys an escrow by its payer and the job
// (`chainJobIdOf(jobId, payer)` = keccak256(abi.encode(payer, keccak256(job id bytes)))), so a
// stranger's deposit under the same job id is another escrow. `deposit` takes the job's hash
// (`jobHashOf`); every other Bridge method takes the escrow id, as 0x-hex or bytes.
import { ChainError } from '../errors.js'
import { keccak256 } from 'viem'
import { escrowIdOfHash } from '../core/settlement/batch.js'
import type { Hex } from './config.js'
import { hex } from './outbox.js'

/** A job id as callers hold it: bytes, or a string ('0x…' = hex bytes, else UTF-8). */
export type JobIdInput = Uint8Array | string
/** The contract's job key: 32 bytes, as 0x-hex or bytes (PaymentTerms.chain_job_id). */
export type ChainJobIdInput = Hex | Uint8Array

export function jobIdBytes (jobId: JobIdInput): Uint8Array {
  if (jobId instanceof Uint8Array) return jobId
  if (/^0x([0-9a-fA-F]{2})*$/.test(jobId)) return new Uint8Array(Buffer.from(jobId.slice(2), 'hex'))
  return new TextEncoder().encode(jobId)
}

/** The job's hash: keccak256 of the job id bytes (what `deposit` takes). */
export function jobHashOf (jobId: JobIdInput): Hex {
  return keccak256(jobIdBytes(jobId))
}

/** The contract's key for `payer`'s escrow of a job (as core/settlement's chainJobId; Settlement.escrowIdOf). */
export function chainJobIdOf (jobId: JobIdInput, payer: string): Hex {
  return escrowIdOfHash(payer, jobHashOf(jobId))
}

/** The escrow id of `payer`'s escrow for a job hash (Settlement.escrowIdOf). */
export function escrowIdOf (payer: string, jobHash: ChainJobIdInput): Hex {
  return escrowIdOfHash(payer, chainJobKey(jobHash))
}

/** A 32-byte chain job id as lower-case 0x-hex; ChainError BAD_JOB_ID otherwise. */
export function chainJobKey (id: ChainJobIdInput): Hex {
  const h = id instanceof Uint8Array ? hex(id) : id
  if (!/^0x[0-9a-fA-F]{64}$/.test(h)) throw new ChainError('BAD_JOB_ID', `not a 32-byte chain job id: ${String(h).slice(0, 20)}`, { hint: 'pass the escrow id (chainJobIdOf(jobId, payer)), as 0x-hex or 32 bytes' })
  return h.toLowerCase() as Hex
}
