// The shapes of the job machine (src/core/scheduler/job-machine.ts): its policy, copies, leases,
// commands, events and progress; and the per-task and per-lease state its parts share.
import type { SpotCheckPolicy } from './spot-check.js'

export interface JobPolicy {
  taskCount: number
  redundancy: number
  quorum: number
  /** Most copies of one task, tie-breaks included (default 2 x redundancy + 1). */
  maxCopies?: number
  /** Failed copies (errors, timeouts) before the task is given up. */
  maxAttempts: number
  taskTimeoutMs: number
  /** No heartbeat for this long and the lease is lost (default 3 s). */
  leaseTimeoutMs?: number
  adaptive?: boolean
  /** With adaptive verification: share of tasks of trusted providers still fully checked. */
  spotCheckRate?: number
  /** A copy running longer than this many times the mean gets a speculative twin; 0 = never. */
  stragglerFactor?: number
  stragglerMinSamples?: number
  /** Consecutive failures after which a provider is avoided for this job. */
  maxProviderFailures?: number
  /** Wrong answers after which a provider is avoided for this job. */
  maxProviderWrong?: number
  /**
   * The default checks (undefined: off, the manifest opted out). With redundancy 1, tasks of
   * providers with little history get a second copy, others a `rate` share; with any
   * redundancy, one wrong answer catches its provider (every result of it withdrawn).
   */
  spotChecks?: SpotCheckPolicy
  /**
   * The job declared its largest result (manifest task.maxResultBytes): only then do
   * RESULT_TOO_LARGE answers from distinct providers fail a task early (TOO_LARGE_PROVIDERS).
   */
  declaredResultBound?: boolean
}

export type CopyReason = 'initial' | 'redundant' | 'retry' | 'speculative' | 'tie-break' | 'spot-check'
export type CopyOutcome = 'running' | 'pending' | 'agreed' | 'wrong' | 'surplus' | 'failed' | 'timeout' | 'lost' | 'cancelled' | 'unverified'
export type ResultVerdict = CopyOutcome | 'duplicate' | 'unknown'

export interface CopyRecord {
  index: number
  attempt: number
  provider: string
  leaseId: string
  reason: CopyReason
  startedAt: number
  /** Waiting on the submitter's side to go out (result-admission.ts): its deadline does not run meanwhile. */
  admissionWait?: boolean
  endedAt?: number
  outcome: CopyOutcome
  hash?: string
  error?: string
  /** Its timeout when longer than the task's: a copy sent ahead of its lease's slots waits there for one (job-dispatch.ts). */
  timeoutMs?: number
  /**
   * On a lease with bundles: the copies sent to it in the same step as this one (shared, counted as
   * they go). They leave together in TaskBundle frames whose results come back when the bundle ends,
   * so this copy's time to its answer is about its frame's: per copy it is that time over
   * min(n, bundle) (copyShare; review18 F3: a lease was reckoned 16 times slower than it ran).
   */
  batch?: { at: number, n: number, bundle: number }
}

/** How many copies' run time a copy's time to its answer covers: 1, or its bundle's copies (CopyRecord.batch). */
export function copyShare (c: Pick<CopyRecord, 'batch'>): number {
  return c.batch === undefined ? 1 : Math.max(1, Math.min(c.batch.n, c.batch.bundle))
}

/** Copies a lease holds in its slots: slots x bundle (a slot runs a bundle's copies one after another). */
export function inSlots (l: Pick<LeaseGrant, 'slots' | 'bundle'>): number {
  return l.slots * Math.max(1, l.bundle ?? 1)
}

/** A copy that ran longer than this ends read-ahead on its lease: a copy queued behind such a copy would wait as long. */
export const READ_AHEAD_MAX_COPY_MS = 1000

export interface LeaseGrant {
  leaseId: string, provider: string, slots: number, /** lower = preferred */ rank?: number
  /** Predicted time of one copy on it (transfer + run, placement's prediction): speculation.ts compares copies by it. */
  runMs?: number
  /** Copies sent beyond `slots`, waiting at the provider for a slot (tiny tasks: a slot is never idle for a round trip). */
  readAhead?: number
  /**
   * Tiny tasks on a provider that runs TaskBundles (its offer's bundle_max, 2..TASK_BUNDLE_MAX): each
   * slot runs up to this many copies one after another, so the lease holds slots x bundle copies in
   * flight (inSlots), plus read-ahead. Absent or 1: one copy per slot (older providers). The lease
   * cap (lease-cap.ts) still counts `slots`.
   */
  bundle?: number
  /**
   * The account its work is paid to, when the payer knows it as one (a payout address whose key
   * signed a binding to this peer): peers of one owner are one provider for a task's copies, so one
   * operator's second peer id is no second opinion (review s14 cheat F3).
   */
  owner?: string
}

export type JobCommand =
  /** `bundle`: the copy may leave in a TaskBundle of up to this many (its lease holds bundles; the transport groups the copies of one turn). */
  | { type: 'run', index: number, attempt: number, leaseId: string, provider: string, reason: CopyReason, bundle?: number }
  | { type: 'cancel', index: number, attempt: number, leaseId: string, provider: string }
  | { type: 'release-lease', leaseId: string, provider: string, reason: string }
  | { type: 'need-leases', reason: string }
  /** Copies wait behind busy leases while others run: more leases would help (never gives tasks up). */
  | { type: 'more-leases', reason: string }

export type JobEvent =
  | { type: 'accepted', index: number, hash: string, attempt: number, provider: string }
  /**
   * A copy reached its final outcome; `billed` copies are the ones to pay for. `revoked`: a copy
   * settled `agreed` before is withdrawn (its provider was caught lying): pay nothing more for it.
   */
  | { type: 'copy-settled', index: number, attempt: number, provider: string, outcome: CopyOutcome, billed: boolean, revoked?: boolean }
  /** An accepted task's result no longer stands (a caught provider's vote carried it): it runs again. */
  | { type: 'task-reopened', index: number, reason: string }
  /**
   * A provider returned a result that disagrees with an accepted one: every result it gave in
   * this job is withdrawn (`invalidated` copies) and re-run elsewhere, its reputation is gone,
   * and the payer must sign nothing more for it in this job (its unpaid amounts are forfeited).
   */
  | { type: 'provider-caught', provider: string, reason: string, invalidated: number }
  | { type: 'task-failed', index: number, reason: string }
  | { type: 'lease-lost', leaseId: string, provider: string, reason: string }
  | { type: 'provider-avoided', provider: string, reason: string }
  | { type: 'finished', done: number, failed: number }

/**
 * `unreachable`: no answer came back because the route failed (stream reset, relay gone): the
 * copy is lost, not failed, so the provider may run the task again on a new route.
 */
/** `code`: the failed copy's result code (shape-checked: resultCode), e.g. RESULT_TOO_LARGE. */
export interface ResultInput { index: number, attempt: number, ok: boolean, hash?: string, error?: string, code?: string, unreachable?: boolean }

export interface RestoredTask {
  accepted?: string
  failed?: string
  copies: Array<{ attempt: number, provider: string, outcome: CopyOutcome, hash?: string, reason?: CopyReason }>
}

export interface TaskState {
  status: 'queued' | 'active' | 'done' | 'failed'
  attempts: number
  copies: CopyRecord[]
  reasons: CopyReason[]
  queued: number
  outstanding: number
  failures: number
  /** Copies lost to a failed route (bounded: MAX_LOST_COPIES_FACTOR x maxAttempts, then the task fails). */
  lostCopies?: number
  /** Providers whose copy failed RESULT_TOO_LARGE (the job's declared bound): from TOO_LARGE_PROVIDERS of them the task fails. */
  tooLarge?: string[]
  quorum: number
  reduced: boolean
  /** Got a second copy from the default spot checks. */
  checked: boolean
  decided: boolean
  speculated: boolean
  accepted?: string
  /** Reopened once at the job's end because only providers not established had agreed on it. */
  audited?: boolean
}

export interface LeaseState extends LeaseGrant {
  rank: number, lastHeartbeat: number, running: number, alive: boolean
  /** The copies sent to it in the current step (bundles only: CopyRecord.batch). */
  batch?: { at: number, n: number, bundle: number }
  /** A copy on it got no answer (its route failed) at this time: nothing goes out on it until a later heartbeat shows the route works. */
  suspendedAt?: number
}

export const KEY = 65536 // copy key = index * KEY + attempt
export const SCAN = 64
export const TERMINAL: ReadonlySet<CopyOutcome> = new Set(['pending', 'agreed', 'wrong', 'surplus', 'failed'])

export interface Progress {
  total: number, done: number, failed: number, running: number, queued: number, copies: number, retries: number, speculative: number, wrong: number, billed: number
  /** Tasks the default spot checks gave a second copy; providers caught lying. */
  checks?: number, caught?: number
  /**
   * Copies sent ahead of a free slot (a lease's read-ahead for tiny tasks, and the copies of a
   * bundle behind the one its slot runs): out, waiting at their provider for their turn, and not
   * in `running`, which counts at most each lease's slots.
   */
  ahead?: number
}
