// A bundle's tasks of one module run in one go by their executor (ComputePeer.runBundle's fast
// path: wasm, one worker message each way, executors/wasm.ts runBundle), instead of an executor
// call each. runBundle holds the slot and answers what this leaves unanswered one task at a time.
import { ExecutorError } from '../errors.js'
import type { SlotGrant } from '../core/compute/slot-ledger.js'
import { ExecutorErrorCode } from './executors/types.js'
import { runBundleInSlot, taskOutcome, type CheckedTask, type TaskRun, type TaskRunContext } from './task-run.js'
import type { BundleOutcome, RunBundleOptions } from './peer-types.js'

/** What a bundle run in one go reads and counts of its compute peer. */
export interface AtOncePeer {
  /** A drain or stop began: no further task starts. */
  draining: () => boolean
  stopping: () => boolean
  /** Tasks running now: +n as they start, -n as they end. */
  executing: (n: number) => void
  /** One more task ran on an executor (ok or failed). */
  ran: () => void
  /** The stop flags of the bundles running in one go: a drain sets each to 1. */
  stops: Set<Int32Array>
}

/**
 * Whether checked tasks (a bundle's, in order) run in one go: two or more, on an executor that has
 * runBundle, of one module (the very bytes: a provider's bundle shares them), entry and memory limit.
 */
export function runsAtOnce (ts: readonly CheckedTask[]): boolean {
  const first = ts[0]
  if (ts.length < 2 || first.executor.runBundle === undefined) return false
  return ts.every(t => t.executor === first.executor && t.task.code === first.task.code && (t.task.entry ?? '') === (first.task.entry ?? '') && t.memoryLimitMib === first.memoryLimitMib)
}

/**
 * Runs a bundle's tasks in one go (runBundleInSlot): admitted in order as the bundle starts (the
 * provider's `admit` counts those admitted before as delivered at the most they can bill first), up
 * to the first it refuses, which runBundle's loop then asks again, one task at a time, once these
 * ended (a first task refused is answered so). Those admitted run together, then each is answered
 * (`ran`) in order; one the bundle's cut left unstarted is LEASE_SLOTS_BUSY, one cancelled meanwhile
 * fails CANCELLED (its run is not its result). Whether every task that ran was ok, and their output bytes.
 */
export async function bundleAtOnce (b: { ctx: TaskRunContext, grant: SlotGrant, signal: AbortSignal, receiptOf: Parameters<typeof taskOutcome>[0], out: BundleOutcome[], opts: RunBundleOptions & { cutMs: number, cutBytes: number }, peer: AtOncePeer }, tasks: Array<{ i: number, t: CheckedTask, signal: AbortSignal }>): Promise<{ ok: boolean, outBytes: number }> {
  const { out, opts, peer } = b
  const go: typeof tasks = []
  for (const x of tasks) {
    if (go.length > 0 && peer.draining()) break // (a drain began: runBundle's loop cuts the rest)
    if (x.signal.aborted) { out[x.i] = { refused: new ExecutorError(ExecutorErrorCode.CANCELLED, `task ${x.t.taskId} was cancelled before it started`) }; continue }
    // a refusal with others admitted is asked again by runBundle's loop (`again`: not counted twice)
    const refusal = opts.admit === undefined ? undefined : await opts.admit(x.i, { again: go.length > 0 })
    if (refusal === undefined) { go.push(x); continue }
    if (go.length > 0) break
    out[x.i] = { refused: refusal }
  }
  if (go.length === 0) return { ok: true, outBytes: 0 }
  const t0 = performance.now()
  peer.executing(go.length)
  // set once a drain begins: the worker starts no further task of the bundle; at once for a drain
  // that began while the last of them was admitted (only the first starts: review20)
  const stopFlag = new Int32Array(new SharedArrayBuffer(4))
  if (peer.draining()) Atomics.store(stopFlag, 0, 1)
  peer.stops.add(stopFlag)
  let runs: Array<TaskRun | undefined>
  try {
    runs = await runBundleInSlot(b.ctx, go.map(x => x.t), b.grant, { signal: b.signal, stopFlag, stopping: peer.stopping, cutMs: opts.cutMs, cutBytes: opts.cutBytes })
  } finally { peer.executing(-go.length); peer.stops.delete(stopFlag) }
  let ok = true
  let outBytes = 0
  for (const [k, { i, t, signal: own }] of go.entries()) {
    let run = runs[k]
    if (run === undefined) { out[i] = { refused: new ExecutorError('LEASE_SLOTS_BUSY', `task ${t.taskId}: not started: its bundle ran ${Math.round(performance.now() - t0)} ms already in its slot, or its outputs reached ${opts.cutBytes} bytes, or another of its tasks had its worker stopped and this one's result went with it (send it again)`) }; continue }
    outBytes += run.output.length
    if (own.aborted && run.ok) run = { ...run, ok: false, output: new Uint8Array(0), code: ExecutorErrorCode.CANCELLED, error: `${ExecutorErrorCode.CANCELLED}: task ${t.taskId} was cancelled while its bundle ran` }
    peer.ran()
    ok &&= run.ok
    const outcome = taskOutcome(b.receiptOf, t, b.grant, run)
    out[i] = outcome
    opts.ran?.(i, outcome)
  }
  return { ok, outBytes }
}
