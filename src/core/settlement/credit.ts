// A provider's payment decisions, sans-IO: whether a lease's payment terms name this provider's
// chain, whether the escrow on that chain backs the next task, and whether the payer has fallen
// too far behind on vouchers. The runtime (src/jobs/payment-gate.ts) reads the chain and keeps
// the ledger; this file only decides, with a typed code and a reason for people.
// Amounts are smallest token units (wei, 18 decimals), as on chain and in receipts.
import type { dbc } from '../../wire/gen/wire.js'
import { chargeUnits, TOKEN_DECIMALS, type HourlyPrices } from '../compute/pricing.js'
import { hex0x, type Hex32 } from './hex.js'
import { formatCoins } from './stake.js'
import { slotUnitsPerHour } from './bounds.js'
import { chainJobId } from './batch.js'

const MS_PER_HOUR = 3_600_000n
const ZERO_ADDRESS = `0x${'0'.repeat(40)}`

/** The chain this provider is paid on: a lease must name the same (a voucher's EIP-712 domain). */
export interface PaymentChain { chainId: number, contract: Hex32 }

/** A lease's payment terms, checked and lower-cased. */
export interface PaymentTermsView {
  chainId: number
  contract: Hex32
  /** The escrow's key in the contract: keccak256(abi.encode(payer, keccak256(job id bytes))). */
  chainJobId: Hex32
  /** The job's payer (signs the vouchers). */
  payer: Hex32
}

/** What the provider read of a job's escrow (Settlement.jobs + unspent); undefined: no escrow. */
export interface EscrowRead {
  /** Lower-case payer address; the zero address when the job has no escrow. */
  payer: string
  /** escrow - paid (0 after a refund), wei. */
  unspent: bigint
  refunded: boolean
  /** Unix seconds the payer closed the job (no more work); 0 while open. */
  closedAt: number
  /** Unix seconds after which (plus the dispute window) the payer may refund; 0: none. */
  deadline?: number
  /** Seconds between the deadline (or close) and the payer's refund: the provider's time to redeem. */
  disputeWindow?: number
}

/** What this provider knows of one (job, payer): all wei. */
export interface PaymentLedgerView {
  /** Sum of this provider's receipts for the job, each bounded by its own offer's price. */
  delivered: bigint
  /** Cumulative total of the latest verified voucher. */
  signed: bigint
  /** What the contract paid this provider for the job so far (0 when not read). */
  redeemed: bigint
}

export type PaymentRefusalCode =
  | 'PAYMENT_MISSING' // the lease names no payment terms
  | 'PAYMENT_MALFORMED' // terms of the wrong shape, or for another job (no honest submitter sends them)
  | 'PAYMENT_WRONG_CHAIN' // terms for another chain or contract than this provider's
  | 'NO_ESCROW' // no escrow for the job on this chain
  | 'ESCROW_PAYER_MISMATCH' // the escrow's payer is not the one the lease names
  | 'ESCROW_REFUNDED'
  | 'ESCROW_CLOSED' // the payer closed the job, or its deadline passed
  | 'ESCROW_TOO_SMALL' // unspent funds do not cover the unpaid work plus the next task
  | 'PAYER_BEHIND' // vouchers lag the delivered work by more than the credit
  | 'ESCROW_WINDOW_SHORT' // the escrow's dispute window is below this provider's minimum
  | 'LEASE_NOT_AUTHORISED' // the lease's holder carries no payer signature for this escrow (PaymentTerms.holder_auth)
  | 'LEASE_SLOTS_BUSY' // as many tasks run under the lease as its offer has slots (bounds the work in flight)
  | 'CHAIN_UNAVAILABLE' // the escrow could not be read

export type PaymentDecision =
  | { ok: true }
  | {
    ok: false
    code: PaymentRefusalCode
    reason: string
    /** 'reject': no honest submitter sends this (charge it); 'ignore': one may (a slow chain, a late voucher). */
    action: 'reject' | 'ignore'
  }

const refuse = (code: PaymentRefusalCode, reason: string, action: 'reject' | 'ignore' = 'ignore'): PaymentDecision => ({ ok: false, code, reason, action })

/** Wei as "1.5 DBC". */
export const coins = (wei: bigint): string => `${formatCoins(wei, TOKEN_DECIMALS)} DBC`

const hexOf = (b: Uint8Array): Hex32 => hex0x(b).toLowerCase() as Hex32
const short = (h: string): string => h.length > 14 ? `${h.slice(0, 10)}…` : h

/** The contract's key for `payer`'s escrow of a job: keccak256(abi.encode(payer, keccak256(job id bytes))) (batch.ts chainJobId). */
export function escrowKeyOf (jobId: Uint8Array, payer: string): Hex32 {
  return chainJobId(jobId, payer).toLowerCase() as Hex32
}

/**
 * Checks a lease's payment terms against the job it is for and this provider's chain. Terms of
 * the wrong shape or for another job are charged (no honest submitter builds them); missing terms
 * and another chain are not (an honest node configured for another network sends them).
 */
export function checkPaymentTerms (terms: dbc.task.v1.IPaymentTerms | null | undefined, jobId: Uint8Array, self: PaymentChain): { ok: true, terms: PaymentTermsView } | Extract<PaymentDecision, { ok: false }> {
  const job = short(hexOf(jobId))
  if (terms == null) return refuse('PAYMENT_MISSING', `the lease for job ${job} names no escrow (this provider is paid on chain ${self.chainId}, contract ${self.contract})`) as Extract<PaymentDecision, { ok: false }>
  const contract = terms.contract ?? new Uint8Array()
  const key = terms.chainJobId ?? new Uint8Array()
  const payer = terms.payer ?? new Uint8Array()
  const chainId = Number(terms.chainId ?? 0)
  if (contract.length !== 20 || key.length !== 32 || payer.length !== 20 || !Number.isSafeInteger(chainId) || chainId <= 0) {
    return refuse('PAYMENT_MALFORMED', 'the payment terms are malformed (chain id, a 20-byte contract and payer, a 32-byte job key)', 'reject') as Extract<PaymentDecision, { ok: false }>
  }
  const view: PaymentTermsView = { chainId, contract: hexOf(contract), chainJobId: hexOf(key), payer: hexOf(payer) }
  if (view.payer === ZERO_ADDRESS) return refuse('PAYMENT_MALFORMED', 'the payment terms name no payer', 'reject') as Extract<PaymentDecision, { ok: false }>
  // the escrow id binds the payer: terms naming another payer's escrow (or another job's) are forged
  if (view.chainJobId !== escrowKeyOf(jobId, view.payer)) return refuse('PAYMENT_MALFORMED', `the payment terms name another escrow than payer ${view.payer}'s for job ${job}`, 'reject') as Extract<PaymentDecision, { ok: false }>
  if (view.chainId !== self.chainId || view.contract !== self.contract.toLowerCase()) {
    return refuse('PAYMENT_WRONG_CHAIN', `job ${job} pays on chain ${view.chainId} (contract ${view.contract}); this provider is paid on chain ${self.chainId} (contract ${self.contract.toLowerCase()})`) as Extract<PaymentDecision, { ok: false }>
  }
  return { ok: true, terms: view }
}

/**
 * The most one task may be billed under an offer: its hourly price for the task's slot (GPUs and
 * cores) for the task's whole timeout. The submitter pays no more for a task (bounds.ts), so this
 * is what admitting one more task risks.
 */
export function taskPriceUnits (offer: HourlyPrices, gpus: number, cores: number, timeoutMs: number): bigint {
  const ms = Number.isFinite(timeoutMs) && timeoutMs > 0 ? BigInt(Math.ceil(timeoutMs)) : 0n
  return slotUnitsPerHour(offer, gpus, cores) * ms / MS_PER_HOUR
}

/**
 * What one receipt adds to `delivered`: its amount, bounded by the offer's prices for its metered
 * usage and by the task's slot price for its wall time (at most the timeout). A provider whose
 * bill is above its offer counts what it offered, no more.
 */
export function deliveredUnits (receipt: { amount: string, wallMs: number, cpuMs: number, gpuSeconds: number, pricingVersion?: number }, offer: HourlyPrices, gpus: number, cores: number, timeoutMs: number): bigint {
  let billed: bigint
  try { billed = BigInt(receipt.amount) } catch { return 0n }
  if (billed <= 0n) return 0n
  let repriced: bigint
  try { repriced = chargeUnits({ gpuSeconds: receipt.gpuSeconds, cpuMs: receipt.cpuMs, pricingVersion: receipt.pricingVersion }, offer) } catch { return 0n }
  const wall = Number.isFinite(receipt.wallMs) && receipt.wallMs > 0 ? receipt.wallMs : 0
  const byTime = taskPriceUnits(offer, gpus, cores, Math.min(wall, timeoutMs > 0 ? timeoutMs : wall))
  let out = billed
  if (repriced < out) out = repriced
  if (byTime < out) out = byTime
  return out
}

export interface AdmissionInput {
  terms: PaymentTermsView
  /** The escrow read from the chain; undefined when the job has none. */
  escrow: EscrowRead | undefined
  ledger: PaymentLedgerView
  /** Free work this provider extends: delivered - signed may reach this before it refuses. */
  credit: bigint
  /** The next task's price (taskPriceUnits); 0 for a lease (no task yet). */
  nextTask: bigint
  /** Unix seconds, for the escrow's deadline. */
  nowSec: number
  /** The shortest dispute window accepted (seconds): below it signed work may be refunded before it is redeemed. */
  minDisputeWindowS?: number
  /** Seconds the next task may still need (its timeout plus a margin): the deadline must lie further ahead. */
  nextTaskS?: number
}

/**
 * Admits a lease or the next task, or refuses it with a code and a reason: the escrow exists on
 * this chain, is the named payer's, is neither refunded nor closed nor past its deadline; the
 * payer is not more than `credit` behind; and the unspent funds cover what this provider is
 * still owed (delivered or signed, whichever is more, less what it redeemed) plus the next task.
 */
export function decideAdmission (p: AdmissionInput): PaymentDecision {
  const { terms, escrow, ledger } = p
  const job = short(terms.chainJobId)
  if (escrow === undefined || escrow.payer === ZERO_ADDRESS || escrow.payer === '') return refuse('NO_ESCROW', `no escrow for job ${job} on chain ${terms.chainId}`)
  // the escrow id binds its payer (checkPaymentTerms), so this holds only on a chain that keys escrows otherwise: not charged
  if (escrow.payer.toLowerCase() !== terms.payer) return refuse('ESCROW_PAYER_MISMATCH', `the escrow of job ${job} on chain ${terms.chainId} belongs to ${escrow.payer.toLowerCase()}, not to the payer the lease names (${terms.payer})`)
  if (escrow.refunded) return refuse('ESCROW_REFUNDED', `the escrow of job ${job} was refunded to its payer`)
  if (escrow.closedAt > 0) return refuse('ESCROW_CLOSED', `the payer closed job ${job} (no more work is paid)`)
  if ((escrow.deadline ?? 0) > 0 && p.nowSec >= (escrow.deadline ?? 0)) return refuse('ESCROW_CLOSED', `the escrow of job ${job} is past its deadline (the payer may take it back)`)
  if (p.minDisputeWindowS !== undefined && (escrow.disputeWindow ?? 0) < p.minDisputeWindowS) return refuse('ESCROW_WINDOW_SHORT', `the escrow of job ${job} has a dispute window of ${escrow.disputeWindow ?? 0} s; this provider needs at least ${p.minDisputeWindowS} s to redeem before a refund`)
  if (p.nextTaskS !== undefined && (escrow.deadline ?? 0) > 0 && (escrow.deadline ?? 0) - p.nowSec < p.nextTaskS) return refuse('ESCROW_CLOSED', `the escrow of job ${job} ends in ${(escrow.deadline ?? 0) - p.nowSec} s, before the next task could end (${p.nextTaskS} s): extend the deadline`)
  const behind = ledger.delivered - ledger.signed
  if (behind > p.credit) return refuse('PAYER_BEHIND', `payer is ${coins(behind)} behind on job ${job} (delivered ${coins(ledger.delivered)}, signed ${coins(ledger.signed)}, credit ${coins(p.credit)}): send a voucher`)
  const claimed = ledger.delivered > ledger.signed ? ledger.delivered : ledger.signed
  const owed = claimed > ledger.redeemed ? claimed - ledger.redeemed : 0n
  const need = owed + p.nextTask
  if (escrow.unspent === 0n) return refuse('ESCROW_TOO_SMALL', `escrow of job ${job} has nothing unspent${owed > 0n ? ` (${coins(owed)} of work is unpaid)` : ''}`)
  if (escrow.unspent < need) {
    return refuse('ESCROW_TOO_SMALL', `escrow of job ${job} has ${coins(escrow.unspent)} unspent, less than the ${coins(need)} owed (${coins(owed)} unpaid work${p.nextTask > 0n ? ` + ${coins(p.nextTask)} for the next task` : ''})`)
  }
  return { ok: true }
}

/** A wire voucher checked for shape (not yet for its signer), in the form core/settlement/voucher.ts signs. */
export interface ParsedVoucher {
  escrowId: Hex32
  provider: Hex32
  cumulative: bigint
  receiptsRoot: Hex32
  receiptCount: number
  signature: Hex32
}

/** Shape checks of a TaskMessage.voucher; a reason when malformed (no honest payer sends that). */
export function parseVoucher (v: dbc.task.v1.IVoucher): { ok: true, voucher: ParsedVoucher } | { ok: false, reason: string } {
  const key = v.escrowId ?? new Uint8Array()
  const provider = v.provider ?? new Uint8Array()
  const cumulative = v.cumulative ?? new Uint8Array()
  const root = v.receiptsRoot ?? new Uint8Array()
  const sig = v.signature ?? new Uint8Array()
  if (key.length !== 32) return { ok: false, reason: 'the voucher\'s escrow id is not 32 bytes' }
  if (provider.length !== 20) return { ok: false, reason: 'the voucher\'s provider is not a 20-byte address' }
  if (cumulative.length === 0 || cumulative.length > 32) return { ok: false, reason: 'the voucher\'s cumulative amount is not a uint256' }
  if (root.length !== 32) return { ok: false, reason: 'the voucher\'s receipts root is not 32 bytes' }
  if (sig.length !== 65) return { ok: false, reason: 'the voucher\'s signature is not 65 bytes' }
  let amount = 0n
  for (const b of cumulative) amount = (amount << 8n) | BigInt(b)
  return { ok: true, voucher: { escrowId: hexOf(key), provider: hexOf(provider), cumulative: amount, receiptsRoot: hexOf(root), receiptCount: Number(v.receiptCount ?? 0), signature: hexOf(sig) } }
}

/** A uint256 as the wire carries it (big-endian, no leading zeros; one zero byte for 0). */
export function uint256Bytes (n: bigint): Uint8Array {
  if (n < 0n) throw new RangeError('negative amount')
  const out: number[] = []
  for (let v = n; v > 0n; v >>= 8n) out.unshift(Number(v & 0xffn))
  return new Uint8Array(out.length === 0 ? [0] : out)
}

export type VoucherCode = 'VOUCHER_MALFORMED' | 'VOUCHER_WRONG_PROVIDER' | 'VOUCHER_NO_ESCROW' | 'VOUCHER_BAD_SIGNER'

/**
 * What to do with a voucher once its signer is recovered: 'accept' (a newer total), 'stale' (not
 * above what is held: vouchers sent one after another may arrive out of order; answered with the
 * held one, not charged), or a refusal that charges the sender (no honest payer sends it).
 */
export function judgeVoucher (p: { voucher: ParsedVoucher, self: string, chainId?: number, signer: string | undefined, escrow: EscrowRead | undefined, held: bigint | undefined }): { kind: 'accept' } | { kind: 'stale' } | { kind: 'refuse', code: VoucherCode, reason: string } {
  const { voucher: v } = p
  if (v.provider !== p.self.toLowerCase()) return { kind: 'refuse', code: 'VOUCHER_WRONG_PROVIDER', reason: `the voucher pays ${v.provider}, not this provider (${p.self.toLowerCase()})` }
  if (p.held !== undefined && v.cumulative <= p.held) return { kind: 'stale' }
  if (p.escrow === undefined || p.escrow.payer === ZERO_ADDRESS || p.escrow.payer === '') return { kind: 'refuse', code: 'VOUCHER_NO_ESCROW', reason: `no escrow for job ${short(v.escrowId)} on ${p.chainId !== undefined ? `chain ${p.chainId}` : 'this chain'}` }
  if (p.signer === undefined || p.signer.toLowerCase() !== p.escrow.payer.toLowerCase()) return { kind: 'refuse', code: 'VOUCHER_BAD_SIGNER', reason: `the voucher for job ${short(v.escrowId)} is not signed by its payer ${p.escrow.payer.toLowerCase()}` }
  return { kind: 'accept' }
}
