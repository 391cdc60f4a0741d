// When to cut a batch: a job's pending receipts are settled once there are `maxReceipts` of
// them, once the oldest has waited `maxAgeMs`, or as soon as the job has finished. Pure: the
// caller passes `now` and re-asks at `nextCheckAt`.
export interface BatchingPolicy {
  /** Cut a batch at this many receipts (also the largest batch). */
  maxReceipts: number
  /** Cut a batch when the oldest pending receipt is this old. */
  maxAgeMs: number
}

export const DEFAULT_BATCHING: BatchingPolicy = { maxReceipts: 1000, maxAgeMs: 30_000 }

export interface PendingReceipts {
  jobId: string
  count: number
  /** When the oldest pending receipt of the job arrived (ms). */
  oldestAt: number
  jobFinished?: boolean
}

export type BatchReason = 'size' | 'age' | 'finished'

export interface BatchDecision {
  due: Array<{ jobId: string, take: number, reason: BatchReason }>
  /** When to ask again (ms), or undefined when nothing is pending. */
  nextCheckAt: number | undefined
}

export function decideBatches (pending: PendingReceipts[], now: number, policy: BatchingPolicy = DEFAULT_BATCHING): BatchDecision {
  const due: BatchDecision['due'] = []
  let next: number | undefined
  for (const p of pending) {
    if (p.count <= 0) continue
    const take = Math.min(p.count, policy.maxReceipts)
    let reason: BatchReason | undefined
    if (p.count >= policy.maxReceipts) reason = 'size'
    else if (p.jobFinished === true) reason = 'finished'
    else if (now - p.oldestAt >= policy.maxAgeMs) reason = 'age'
    if (reason !== undefined) {
      due.push({ jobId: p.jobId, take, reason })
      // What stays behind after this batch is re-checked right away.
      if (p.count > take) next = Math.min(next ?? now, now)
    } else {
      const at = p.oldestAt + policy.maxAgeMs
      next = next === undefined ? at : Math.min(next, at)
    }
  }
  return { due, nextCheckAt: next }
}
