// The payment gate's port, options, persisted ledger and errors (payment-gate.ts is the gate):
// what the chain, the store and the callers see of it.
import type { dbc } from '../wire/gen/wire.js'
import { DbcError, WireError } from '../errors.js'
import { taskPriceUnits, type EscrowRead, type PaymentTermsView } from '../core/settlement/credit.js'
import type { SignedVoucher, VoucherDomain } from '../core/settlement/voucher.js'
import type { Hex32 } from '../core/settlement/hex.js'
import { LEASE_TASKS_AHEAD } from '../core/scheduler/ports.js'

/** What the gate needs from the chain (src/chain/bridge.ts implements it). */
export interface PaymentPort {
  /** This provider's payout address: vouchers must name it. */
  readonly address: string
  /** The EIP-712 domain vouchers are signed for: this chain's id and Settlement contract. */
  domain: () => VoucherDomain
  /** The job's escrow; undefined when it has none. Throws when the chain cannot be read. */
  escrow: (chainJobId: Hex32, opts?: { fresh?: boolean }) => Promise<EscrowRead | undefined>
  /** What the contract paid this provider for the job so far; absent: counted as 0 (cautious). */
  redeemed?: (chainJobId: Hex32) => Promise<bigint>
  /**
   * Keeps a voucher the gate verified, for redemption (the chain's voucher book). `signer`: the
   * address the gate recovered from it and the domain it used (the port's, as the gate cached it);
   * the book does not recover it again when its own chain settings are that domain.
   */
  acceptVoucher: (sv: SignedVoucher, opts?: { signer?: { address: string, domain: VoucherDomain } }) => Promise<void>
  /**
   * The payout key's signature binding it to `peer` on this chain (core/settlement/payout-binding.ts);
   * throws while it is being signed (like `domain`). Absent: offers carry none (submitters refuse them).
   */
  payoutBinding?: (peer: Uint8Array) => Uint8Array
}

export interface PaymentGateInit {
  /** Free work extended to a payer, in task prices (default 1): see credit.ts decideAdmission. */
  creditTasks?: number
  /** How long an escrow read is trusted before a task reads it again (default 5 s). */
  escrowTtlMs?: number
  /** A refused admission reads the chain again at most this often per job (default 1 s). */
  minRefreshMs?: number
  /** Jobs remembered at most (the idle oldest go first; default 4096). */
  maxJobs?: number
  /** The shortest escrow dispute window accepted, seconds (config provider.minDisputeWindowS; default 3600). */
  minDisputeWindowS?: number
  /** A task is admitted only when the escrow's deadline is at least its timeout plus this far ahead (default 60 s). */
  deadlineMarginS?: number
  now?: () => number
  /** Recovers a voucher's signer (default: EIP-712 recovery, core/settlement/voucher.ts). */
  recover?: (sv: SignedVoucher, d: VoucherDomain) => Promise<string | undefined>
  /** Keeps the ledger across restarts (src/jobs/provider-ledger-store.ts); absent: in memory only. */
  ledger?: LedgerPersistence
}

/** What of a job's ledger outlives the process: delivered work and the latest voucher held. */
export interface PersistedLedger { payer: string, delivered: bigint, signed: bigint, tasks: number, maxBehind: bigint, voucher?: dbc.task.v1.IVoucher, jobId?: string }

export interface LedgerPersistence {
  load: (limit: number) => Array<{ chainJobId: string } & PersistedLedger>
  save: (chainJobId: string, e: PersistedLedger) => void
  remove: (chainJobId: string) => void
}

/** The payment side of an open lease: its terms, its offer's prices, its task slot, its tasks running. */
/**
 * Tasks of one lease that may wait at the gate for one of its slots (the lease stream's read-ahead,
 * src/net/task-lease-stream.ts LEASE_STREAM_QUEUED): a waiting task is not admitted yet, so the
 * unsigned work bound (credit plus `slots` tasks) is unchanged; the next task starts as a slot frees
 * instead of a submitter's round trip later.
 */
export const LEASE_SLOT_QUEUE = LEASE_TASKS_AHEAD

export interface LeasePayment {
  terms: PaymentTermsView
  prices: { priceGpuHour: number, priceCpuHour: number }
  gpus: number
  cores: number
  /** Tasks its offer lets run at once: the credit bounds unsigned finished work, this the work in flight. */
  slots: number
  inflight: number
  /** Tasks read ahead on the lease stream, waiting for one of its slots (PaymentGate.slotFree: at most LEASE_SLOT_QUEUE). */
  waiting?: Array<() => void>
  /** The last task price worked out for this lease (prices and slot are the lease's own, fixed): its tasks share a timeout. */
  priced?: { timeoutMs: number, units: bigint }
}

/**
 * A bundle's tasks admitted together and not finished yet (PaymentGate.admitTask's and finished's
 * `ahead`; one per bundle, the gate keeps `open` and `top`). They run one after another in one slot,
 * so together they bill at most their largest price (`top`: the slot's one task in flight, as a task
 * alone) plus `extra`: the others' prices, and at most `cap` when set (the price of the bundle's cut:
 * no task starts after it, compute-provider.ts). That extra counts as delivered in the credit rule of
 * the bundle's next task and of every other task of the job, so bundles of one job admitted at once on
 * several slots keep its unsigned work to the credit plus one task a slot.
 */
export interface BundleAhead { open: bigint, top: bigint, cap?: bigint }

/**
 * taskPriceUnits for a task of the lease: the lease's prices and slot never change and its tasks
 * (a job's) share a timeout, so the price is worked out once and held (admitTask and finished ask
 * for it per task).
 */
export function leaseTaskPrice (lp: LeasePayment, timeoutMs: number): bigint {
  const held = lp.priced
  if (held !== undefined && held.timeoutMs === timeoutMs) return held.units
  const units = taskPriceUnits(lp.prices, lp.gpus, lp.cores, timeoutMs)
  lp.priced = { timeoutMs, units }
  return units
}

/** A lease or task refused for payment where an honest submitter may be the cause (not charged). */
export class PaymentDeclinedError extends DbcError {
  override name = 'PaymentDeclinedError'
  constructor (code: string, reason: string) { super(code, reason, { hint: 'deposit escrow for the job on the provider\'s chain (or top it up), and send vouchers as results come' }) }
}
/** A lease or voucher no honest submitter sends (the sender is charged). */
export class PaymentRejectedError extends WireError {
  override name = 'PaymentRejectedError'
  constructor (code: string, reason: string) { super(code, reason, { hint: 'name this provider\'s chain, the job\'s own escrow and its payer; vouchers must be signed by the payer for this provider' }) }
}

/** Longest job id kept on a ledger row (a grid id is 32 bytes = 64 hex digits; a training id is 16). */
const JOB_LABEL_MAX = 64

/** A grid lease's job id bytes as the submitter's `dbc job list` and this node's log print them: hex (bounded: peer input). */
export function gridJobLabel (jobId: Uint8Array): string | undefined {
  if (jobId.length === 0) return undefined
  const hex = Buffer.from(jobId.subarray(0, JOB_LABEL_MAX / 2)).toString('hex')
  return jobId.length > JOB_LABEL_MAX / 2 ? `${hex}…` : hex
}

/** A training job's id (UTF-8 text from the invitation): printable ASCII only, bounded (peer input). */
export function trainingJobLabel (jobId: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(jobId.subarray(0, JOB_LABEL_MAX * 4)).replace(/[^\x20-\x7e]/g, '?')
  if (text === '') return undefined
  return text.length > JOB_LABEL_MAX ? `${text.slice(0, JOB_LABEL_MAX)}…` : text
}

/** One (job, payer) row of the gate's ledger. */
export interface LedgerEntry {
  payer: string
  /**
   * The job's id as its submitter and this node's log name it (grid: hex; training: its text),
   * from the lease or invitation whose terms bound it to this escrow (checkPaymentTerms): what
   * `dbc earnings` shows beside the chain job id. Absent for a voucher that came before any lease.
   */
  jobId?: string
  delivered: bigint
  signed: bigint
  redeemed: bigint
  inflight: number
  tasks: number
  refusals: number
  lastRefusal?: string
  voucher?: dbc.task.v1.IVoucher
  /** Most unsigned work seen at once (delivered - signed). */
  maxBehind: bigint
}

export interface CachedRead { read: EscrowRead | undefined, at: number }

/** One row of `status()` (amounts in DBC, as text). */
export interface PaymentJobStatus { chainJobId: string, jobId?: string, payer: string, delivered: string, signed: string, behind: string, maxBehind: string, inflight: number, tasks: number, refusals: number, lastRefusal?: string }
