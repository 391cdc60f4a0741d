// The ports between the job machine and the providers it reaches (sans-IO types and pure
// helpers): a JobTransport is how a submitter reaches providers (in process, over IPC, over
// libp2p), a LocalProvider what a provider serves. They live in the core so that net/ (the
// libp2p transport and the task protocol's provider side) and jobs/ (the runner, the
// providers) depend on the core, not on each other.
import type { dbc } from '../../wire/gen/wire.js'
import type { OfferView } from './placement.js'
import { isRefusalCode, refusalCode } from './lease-search.js'

/** The job's location preference; a transport that knows where providers are fills `distanceKm`. */
export interface JobLocation { lat?: number, lon?: number, city?: string, maxDistanceKm?: number }

export interface TransportOffer {
  /** What placement needs; `provider` is the transport's id for the provider. */
  view: OfferView
  /** The provider's signed offer as it came. */
  offer: dbc.task.v1.IOffer
}

/**
 * What one round of offer requests saw beside the offers, for `dbc job explain`: how many candidates
 * were asked, and which gave no answer (no offer, no refusal) and why (a timeout, a stream reset).
 * Bounded by the transport's candidates per round.
 */
export interface OfferRoundReport {
  asked: number
  silent: Array<{ provider: string, reason: string }>
}

export interface JobTransport {
  /** Finds candidates (capability index, gossip) and asks the best few for offers. Refusals come back too. */
  requestOffers: (req: dbc.task.v1.ILeaseRequest, opts: { signal?: AbortSignal, exclude?: ReadonlySet<string>, location?: JobLocation, report?: (r: OfferRoundReport) => void }) => Promise<TransportOffer[]>
  /** Hands the provider the lease (signed by us) that authorizes our tasks. */
  /**
   * `maxResultBytes`: the bound the job declared (manifest task.maxResultBytes): a result frame's bound
   * on the lease, and on a lease whose results cannot be paused (WebRTC) each copy waits until its
   * bound fits the node's cap on such results (result-admission.ts). Undefined: TASK_MAX_FRAME, and
   * no such wait (the guard's cap resets the slowest past it).
   */
  /**
   * `bundle`: the lease's offer runs TaskBundles of up to this many tasks (offerBundleOf, > 1), and
   * the job will use them: copies of one turn may then leave together (never more, never to a lease
   * opened without it: the provider ends the lease stream of a submitter that sends one).
   */
  /**
   * `ready`: the lease leaves only once it resolves (the job's escrow deposit mined: a provider
   * refuses a lease without it); the transport may open its way to the provider meanwhile. When it
   * rejects, nothing is sent and openLease rejects with its error.
   */
  openLease: (provider: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal, maxResultBytes?: number, bundle?: number, ready?: Promise<unknown> }) => Promise<void>
  /**
   * Sends one task copy and waits for its result (rejects when the provider is unreachable). A
   * failed result carries a typed `code` (resultCode: the provider's, when it has a code's shape).
   */
  /** `onAdmission`: false when the copy starts waiting to go out (result-admission.ts), true when it goes: its clock starts then. */
  /**
   * `bundle`: the copy may leave in one TaskBundle frame with others sent to its lease in the same
   * turn, up to this many (the job machine's lease holds bundles; at most the openLease bundle).
   * `onSent(n)`: the copy went out in a frame of n tasks (1: a plain Task), for the job's tally.
   */
  runTask: (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal, onAdmission?: (admitted: boolean) => void, bundle?: number, onSent?: (tasksInFrame: number) => void }) => Promise<dbc.task.v1.ITaskResult>
  closeLease?: (provider: string, leaseId: Uint8Array) => void
  /** Hands the provider the payer's latest signed voucher for this job (TaskMessage.voucher). */
  sendVoucher?: (provider: string, voucher: dbc.task.v1.IVoucher, opts: { signal?: AbortSignal }) => Promise<unknown>
  /** Lease heartbeats from providers; returns the unsubscribe function. */
  onHeartbeat: (listener: (hb: { provider: string, leaseId: Uint8Array, at: number }) => void) => () => void
}

/** A typed error a provider charges its sender for (a WireError, src/errors.ts; the core names only its shape). */
export interface ChargedError { readonly code: string, readonly message: string }

/** What a provider exposes in process (a ComputePeer adapts to this; the task protocol serves one). */
export interface LocalProvider {
  /** The transport's id for this provider. */
  readonly id: string
  /** `sender`: the peer asking, when the transport authenticated it (an offer may be leased by it only). */
  offer: (req: dbc.task.v1.ILeaseRequest, sender?: Uint8Array) => Promise<dbc.task.v1.IOffer> | dbc.task.v1.IOffer
  openLease: (lease: dbc.task.v1.ILease, sender: Uint8Array) => Promise<void> | void
  /** `opts.charge`: charges the sender for a task no honest submitter sends (the transport's peer score). */
  /** `opts.unsignedReceipt`: the result's receipt comes back with an empty signature, for signReceipts (only a provider that has it). */
  runTask: (task: dbc.task.v1.ITask, sender: Uint8Array, opts?: { signal?: AbortSignal, charge?: (err: ChargedError) => void, unsignedReceipt?: boolean }) => Promise<dbc.task.v1.ITaskResult>
  /**
   * The tasks of one TaskBundle (all under one lease, one executor, code and entry), run one after
   * another in one of the lease's slots; one result per task, in order (`signals[i]` cancels task
   * i). Absent (test doubles): the lease stream runs them one after another through runTask.
   */
  runBundle?: (tasks: readonly dbc.task.v1.ITask[], sender: Uint8Array, opts?: { signals?: ReadonlyArray<AbortSignal | undefined>, charge?: (err: ChargedError) => void, unsignedReceipt?: boolean }) => Promise<dbc.task.v1.ITaskResult[]>
  /**
   * Signs the encoded receipts of results written at once with one signature (SignedReceipt.batch):
   * a lease stream's results for a holder that checks batches (Task.batch_receipts). Absent: every
   * receipt is signed alone, as it runs.
   */
  signReceipts?: (receipts: readonly Uint8Array[]) => dbc.receipt.v1.ISignedReceipt[]
  closeLease?: (leaseId: Uint8Array) => void
  /**
   * Task input bytes `sender` may send now: the most its open leases' requests announced;
   * undefined when it holds no lease here (then only small frames are accepted from it).
   */
  leasedInputBytes?: (sender: Uint8Array) => number | undefined
  /** A payer's voucher for a job this provider works on (TaskMessage.voucher). */
  acceptVoucher?: (voucher: dbc.task.v1.IVoucher, sender: Uint8Array) => Promise<dbc.task.v1.IVoucher> | dbc.task.v1.IVoucher
}

/** Offers carry perf scores where 100 is the reference machine (src/compute/benchmark.ts); placement uses 1. */
/**
 * Copies of short tasks a submitter sends to a lease beyond its slots (they wait at the provider for
 * a slot). The one number both sides derive from: the submitter's LEASE_READ_AHEAD, the provider's
 * gate queue LEASE_SLOT_QUEUE (the same) and its lease stream's LEASE_STREAM_QUEUED (one more, so a
 * cancel is always read).
 */
export const LEASE_TASKS_AHEAD = 6

/**
 * Most tasks of one TaskBundle (proto/task.proto: several tiny tasks of one lease in one frame, run
 * in one of its slots one after another). RECEIPT_BATCH_MAX (core/settlement/receipt.ts) is the
 * same, so one bundle's receipts share one signature.
 */
export const TASK_BUNDLE_MAX = 16
/** A provider offers bundles of as many tasks as it expects to run in about this long together. */
export const TASK_BUNDLE_WALL_MS = 50
/**
 * A provider starts no further task of a bundle once the bundle ran this long (a task far slower
 * than announced): the rest are answered LEASE_SLOTS_BUSY, a not-run code the submitter sends again.
 */
export const TASK_BUNDLE_CUT_MS = 1000
/**
 * Nor once its tasks' outputs reach this many bytes, or the lease's result bound if larger: a
 * bundle's results are held until it ends (one write), so it holds about one task's worth, not 16.
 */
export const TASK_BUNDLE_CUT_BYTES = 1024 * 1024

/** The bundle size a provider offers for tasks expected to take `expectedTaskMs` (0: none; the request's expected_task_ms). */
export function bundleMaxFor (expectedTaskMs: number | null | undefined): number {
  const ms = expectedTaskMs ?? 0
  if (!Number.isFinite(ms) || ms <= 0) return 0
  const n = Math.min(TASK_BUNDLE_MAX, Math.floor(TASK_BUNDLE_WALL_MS / ms))
  return n >= 2 ? n : 0
}

/** An offer's bundle_max as a submitter may use it: 1 (no bundles) unless 2..TASK_BUNDLE_MAX (a larger claim is clamped). */
export function offerBundleOf (bundleMax: number | null | undefined): number {
  const n = Math.floor(bundleMax ?? 0)
  return Number.isFinite(n) && n >= 2 ? Math.min(n, TASK_BUNDLE_MAX) : 1
}

export const PERF_SCORE_REFERENCE = 100

/** Most times the reference machine's speed an offer may claim (its benchmark is its own word until copies measure it). */
export const MAX_PERF_RATIO = 100

/** An offer's claimed speed as a ratio to the reference: the reference when missing, not finite or not positive; at most MAX_PERF_RATIO. */
export function perfRatioOf (perfScore: number | null | undefined): number {
  const r = (perfScore ?? PERF_SCORE_REFERENCE) / PERF_SCORE_REFERENCE
  return Number.isFinite(r) && r > 0 ? Math.min(r, MAX_PERF_RATIO) : 1
}

/** What placement sees of a signed offer. */
export function offerView (offer: dbc.task.v1.IOffer, provider: string, net: { rttMs?: number, bandwidthBytesPerSec?: number, distanceKm?: number } = {}): OfferView {
  const hex = (b?: Uint8Array | null): string => Array.from(b ?? [], x => x.toString(16).padStart(2, '0')).join('')
  return {
    offerId: hex(offer.offerId),
    provider,
    slots: offer.slots ?? 0,
    priceGpuHour: offer.priceGpuHour ?? 0,
    priceCpuHour: offer.priceCpuHour ?? 0,
    perfScore: perfRatioOf(offer.perfScore),
    expiresAt: offer.expiresAt ?? 0,
    refusal: offer.refusal == null || offer.refusal === '' ? undefined : offer.refusal,
    rttMs: net.rttMs,
    bandwidthBytesPerSec: net.bandwidthBytesPerSec,
    distanceKm: net.distanceKm,
    gpusProbed: offer.gpusProbed === true,
    bundleMax: offerBundleOf(offer.bundleMax)
  }
}

/**
 * Codes that mean a copy got no answer, not a wrong or failed one: its stream closed first (a
 * relay on the way died), the provider had closed its lease before this side saw it, or it is
 * stopping (PEER_STOPPED: a SIGTERM'd node aborts its running copies; its lease ends and the job
 * waits for it up to task.waitS, instead of counting failures in a row that avoid it for the job).
 * Such a copy is lost (the provider may run the task again); a provider sending them on purpose
 * gains nothing: lost copies are bounded per task and avoid a provider that loses them in a row.
 */
export const NO_ANSWER_CODES: ReadonlySet<string> = new Set(['STREAM_ENDED', 'LEASE_CLOSED', 'LEASE_LOST', 'PEER_STOPPED'])

/**
 * Answers that say the provider did not run the copy (yet): its lease's slots are busy (a copy the
 * submitter cancelled still running there), it is busy, or the payer's vouchers lag its credit.
 * Not the provider's failure: the same copy goes again on the same lease, PAYER_BEHIND after the
 * voucher went out, within NOT_RUN_RETRIES and a quarter of the task timeout; only then it counts
 * (src/jobs/runner-send.ts).
 */
/**
 * A provider did not send a result larger than the bound the lease request announced (the manifest's
 * task.maxResultBytes): the task's failure, not the provider's (never billed, nobody charged).
 */
export const RESULT_TOO_LARGE = 'RESULT_TOO_LARGE'

export const NOT_RUN_CODES: ReadonlySet<string> = new Set(['PAYER_BEHIND', 'LEASE_SLOTS_BUSY', 'BUSY'])

/**
 * The typed code of a failed task result, as the submitter may trust it: the provider's `code`
 * when it has a code's shape (a hostile provider's code is only a label: it names a code, it
 * cannot smuggle text), else TASK_FAILED; none for an ok result. The error text is for people only.
 */
export function resultCode (r: { ok?: boolean | null, code?: string | null, error?: string | null }): string | undefined {
  if (r.ok === true) return undefined
  return r.code != null && isRefusalCode(r.code) ? r.code : 'TASK_FAILED'
}

/** The code a provider puts on a failed result it built from its own text (`CODE: text`, the convention of typed errors), when it set none. */
export function withOwnCode (r: dbc.task.v1.ITaskResult): dbc.task.v1.ITaskResult {
  if (r.ok === true || (r.code != null && r.code !== '')) return r
  const c = refusalCode(r.error ?? '')
  return { ...r, ok: false, code: c === 'REFUSED' && !(r.error ?? '').startsWith('REFUSED:') ? 'TASK_FAILED' : c }
}
