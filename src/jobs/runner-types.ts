// The runner's public shapes: how it is made (JobRunnerInit, RunnerPayment) and what it reports
// (JobSummary, TaskExplanation). The job status JSON and the CLI read these: add fields, never rename.
import type { dbc } from '../wire/gen/wire.js'
import type { JobEvent, Manifest, PlacementSummary, Progress, ReputationBook, TaskPlacementExplanation, CopyRecord } from '../core/scheduler/index.js'
import type { JobTransport } from './transport.js'
import type { JobStore } from './store.js'
import type { JobPayer } from './payer.js'
import type { StakeFigure } from '../core/settlement/stake-check.js'

export interface JobRunnerInit {
  jobId: string
  manifest: Manifest
  /** The submitter: lease holder and job owner (or its session key). */
  holder: { peerId: Uint8Array, secretKey: Uint8Array }
  transport: JobTransport
  /** Module bytes (wasm) or the command/image text; sent inline with each task. */
  code: Uint8Array
  store?: JobStore
  reputation?: ReputationBook
  /** Folder relative input paths resolve against. */
  baseDir?: string
  /** Size of `inputs.files.path` (read from disk when omitted). */
  fileSize?: number
  seed?: number
  /** When the job was submitted (a relative `deadline` counts from here; default: run start). */
  submittedAt?: number
  /** Lease heartbeat timeout (default 2 s). */
  leaseTimeoutMs?: number
  stragglerFactor?: number
  /** How long to keep looking when no provider can ever take the tasks (default 10 s). */
  giveUpAfterMs?: number
  /** How long unplaced tasks wait for busy providers when the manifest names no task.waitS (default 600 s). */
  waitMs?: number
  /** Leases the job may hold whatever their slots (default 64; a search for more stops at the cap: core/scheduler/lease-cap.ts). */
  maxLeases?: number
  /** Past maxLeases, the job leases on while its leases hold fewer slots than this, and never holds more leases than this (default 256; 0 when maxLeases is set: a hard cap of leases). */
  maxLeaseSlots?: number
  onProgress?: (p: Progress) => void
  onEvent?: (e: JobEvent) => void
  /** How the job pays (escrow on the shared chain, vouchers per provider); none: unpaid (tests, benches). */
  payment?: RunnerPayment
}

/** The runner's side of payment: terms named in lease requests and leases, the payer, the escrow. */
export interface RunnerPayment {
  terms: dbc.task.v1.IPaymentTerms
  payer: JobPayer
  /**
   * Locks the escrow before the first lease opens; throws to stop the job. `predictedCost`: the
   * placement's (tokens); `reserve`: one task at its timeout on each leased offer (tokens), what
   * providers want covered before they start one more task.
   */
  ensureEscrow?: (predictedCost: number, reserve: number) => Promise<void>
  /** Why no new task may start for lack of escrow (undefined: go on). */
  exhausted?: () => string | undefined
  /** A payment or voucher delivery problem (logged; the job goes on). */
  onError?: (err: Error, provider?: string) => void
  /** The payer's signature letting `holder` lease against this escrow (PaymentTerms.holder_auth; providers require it). */
  leaseAuth?: (holder: Uint8Array) => Promise<Uint8Array>
  /**
   * The on-chain stake of payout addresses (lower case; undefined: could not be read in time,
   * src/jobs/stake-reads.ts). Present: offers whose owner's stake does not cover them are not
   * leased (NOT_STAKED, STAKE_TOO_LOW; STAKE_UNKNOWN waits). Absent: stake is not checked (the
   * node's chain.requireStake is off, the manifest says verification.allowUnstaked, or tests).
   */
  stakes?: (owners: readonly string[], signal?: AbortSignal) => Promise<ReadonlyMap<string, StakeFigure | undefined>>
}

export interface JobSummary {
  jobId: string
  status: 'finished' | 'failed' | 'cancelled'
  tasks: number
  done: number
  failed: number
  copies: number
  retries: number
  speculative: number
  wrongCopies: number
  billedCopies: number
  /** Tasks the default spot checks gave a second copy. */
  checkedTasks: number
  /** Providers caught with a wrong result: their results were withdrawn and re-run. */
  caughtProviders: string[]
  providersUsed: number
  leasesLost: number
  elapsedMs: number
  predictedCost: number
  /** Predicted price of every copy sent (re-runs and extra copies included). */
  predictedSpent: number
  /**
   * What the receipts of finished copies bill (tokens). With a budget.total they are verified
   * first and the budget is held against this plus the copies still out; without one it is
   * the receipts' claim (settlement verifies every receipt before paying).
   */
  meteredSpent: number
  placement?: PlacementSummary
  failures: Array<{ index: number, reason: string }>
  /** Refusals providers sent (offers and leases), by their code, e.g. { BUSY: 12 }. */
  refusals?: Record<string, number>
  /** What the payer signed for (within offers and caps) and what it refused of the receipts' bills, in DBC. */
  payment?: { paid: string, refused: string, unit: 'DBC' }
  /** Copies that left several to a frame (TaskBundle: tiny tasks, providers that run them), and those frames; absent: none. */
  bundles?: { copies: number, frames: number }
}

export interface TaskExplanation {
  index: number
  status: string
  acceptedHash?: string
  waiting?: string
  placement?: TaskPlacementExplanation
  copies: Array<Pick<CopyRecord, 'attempt' | 'provider' | 'reason' | 'outcome' | 'hash' | 'error'> & { ms?: number }>
}
