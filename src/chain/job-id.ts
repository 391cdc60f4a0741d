// Job ids as the bridge takes them. The contract keys a job by 32 bytes (`chainJobIdOf`: keccak256
// of the job id bytes); every Bridge method takes that key, as 0x-hex or bytes.
import { ChainError } from '../errors.js'
import { keccak256 } from 'viem'
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

/** The contract's key for a job: keccak256 of the job id bytes (as core/settlement's chainJobId). */
export function chainJobIdOf (jobId: JobIdInput): Hex {
  return keccak256(jobIdBytes(jobId))
}

/** A 32-byte chain job id as lower-case 0x-hex; ChainError BAD_JOB_ID otherwise. */
export function chainJobKey (id: ChainJobIdInput): Hex {
  const h = id instanceof Uint8Array ? hex(id) : id
  if (!/^0x[0-9a-fA-F]{64}$/.test(h)) throw new ChainError('BAD_JOB_ID', `not a 32-byte chain job id: ${String(h).slice(0, 20)}`, { hint: 'pass the on-chain job key (chainJobIdOf(jobId)), as 0x-hex or 32 bytes' })
  return h.toLowerCase() as Hex
}
