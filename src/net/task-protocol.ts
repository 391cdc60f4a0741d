// /dbc/task/1.0.0's name and frame limits, shared by the provider's server (task-server.ts) and
// the submitter's transport (tasks.ts).
import { SMALL_FRAME_BYTES } from './guard/index.js'
import { DEFAULT_MODULE_LIMITS } from '../core/compute/wasm-validate.js'

export const TASK_PROTOCOL = '/dbc/task/1.0.0'
/** Task inputs travel inline: allow up to 16 MiB per frame on this protocol. */
export const TASK_MAX_FRAME = 16 * 1024 * 1024
/** What a peer without a lease may send: a lease request or a lease (a few hundred bytes). */
export const TASK_REQUEST_MAX_FRAME = SMALL_FRAME_BYTES
/** Room for the module sent inline with a lease's first task: the largest module providers validate (8 MiB). */
export const TASK_CODE_ALLOWANCE = DEFAULT_MODULE_LIMITS.maxModuleBytes
/** A provider's writes to a peer (offers, heartbeats, results, closes) wait this long for it to read. */
export const TASK_WRITE_TIMEOUT_MS = 30_000
/**
 * How long a capability lookup's candidates answer a submitter's later lease rounds (Libp2pJobTransport;
 * peers connected since are asked too). A lookup with fewer matches than it wants walks every cell of
 * its plan (18 DHT provider queries from Berlin, each asking the DHT's peers, and a record fetch from
 * each provider found): in a bench grid profile one lookup mid-job took ~9% of the submitter's event
 * loop and ~4% of each provider's over the job. At 10 s a running job paid that every 10 s; a provider
 * known only to the DHT (not connected) now waits up to 30 s to be asked.
 */
export const CANDIDATES_TTL_MS = 30_000

/**
 * The largest task frame a lease holder may send: its lease request announced `inputBytes`, the
 * job's largest task input, so twice that (slack for encodings), plus the module and the task's
 * other fields; never above TASK_MAX_FRAME.
 */
export function taskFrameCap (inputBytes: number): number {
  return Math.min(TASK_MAX_FRAME, TASK_CODE_ALLOWANCE + 2 * Math.max(0, inputBytes) + TASK_REQUEST_MAX_FRAME)
}

/** A result frame's fields besides its output (ids, hash, signed receipt, error text): well under this. */
export const RESULT_FRAME_OVERHEAD = 64 * 1024

/**
 * The largest result bytes a lease request may announce and what one that announces none (0, an
 * old peer) gets: TASK_MAX_FRAME. A NaN, negative or larger value counts as that too.
 */
export function announcedResultBytes (announced: number | null | undefined): number {
  const n = Number(announced ?? 0)
  return Number.isFinite(n) && n > 0 ? Math.min(TASK_MAX_FRAME, Math.ceil(n)) : TASK_MAX_FRAME
}

/** The largest result frame a submitter reads on a lease whose request announced `resultBytes` of output. */
export function resultFrameCap (resultBytes: number | null | undefined): number {
  return Math.min(TASK_MAX_FRAME, announcedResultBytes(resultBytes) + RESULT_FRAME_OVERHEAD)
}
