// The contract's keys for a job. An escrow is keyed by its payer AND the job (escrowId), so a
// stranger who deposits first under a job id makes its own escrow and blocks nobody (review M3).
import { keccak_256 as keccak256 } from '@noble/hashes/sha3.js'
import { bytesFromHex, hex0x, type Hex32 } from './hex.js'

/** The job's hash: keccak256 of the job id bytes (job ids have any length); what `deposit` takes. */
export function jobHash (jobId: Uint8Array): Hex32 {
  return hex0x(keccak256(jobId))
}

/**
 * The escrow id: keccak256(abi.encode(payer, jobHash)), as Settlement.escrowIdOf. What close,
 * refund, vouchers, lease authorisations and the escrow reads name.
 */
export function escrowIdOfHash (payer: string, hash: string): Hex32 {
  const a = bytesFromHex(payer)
  const h = bytesFromHex(hash)
  if (a.length !== 20 || h.length !== 32) throw new RangeError('escrowIdOf needs a 20-byte payer and a 32-byte job hash')
  const buf = new Uint8Array(64)
  buf.set(a, 12)
  buf.set(h, 32)
  return hex0x(keccak256(buf))
}

/** The escrow id of `payer`'s escrow for the job `jobId` (its bytes). */
export function chainJobId (jobId: Uint8Array, payer: string): Hex32 {
  return escrowIdOfHash(payer, jobHash(jobId))
}
