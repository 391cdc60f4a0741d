// The contract's key for a job. (The v1 settlement batch that lived here went with settleBatch:
// payment v2 pays per provider through payer-signed cumulative vouchers, voucher.ts.)
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { hex0x, type Hex32 } from './hex.js'

/** The contract's job key: keccak256 of the job id bytes (job ids have any length). */
export function chainJobId (jobId: Uint8Array): Hex32 {
  return hex0x(keccak256(jobId))
}
