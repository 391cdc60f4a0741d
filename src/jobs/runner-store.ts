// What the runner writes to the JobStore at each step (copies are recorded before they are sent;
// a result, its acceptance and its billing go in one transaction), and the job's final summary.
import type { ResultVerdict, JobCommand, JobEvent, Progress } from '../core/scheduler/index.js'
import type { JobStore } from './store.js'
import type { JobSummary } from './runner-types.js'

/** A copy's answer, written with the step that follows it. */
export interface CopyRow { index: number, attempt: number, outcome: Exclude<ResultVerdict, 'unknown'>, hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }

/**
 * Writes one pump step: copies about to go out, answers that came back, what the machine decided,
 * and `also` (the payments queued since the last step) in the same transaction: one commit per
 * step. Returns what `also` left to do once that is committed.
 */
export function persistStep (s: JobStore | undefined, jobId: string, now: number, cmds: readonly JobCommand[], events: readonly JobEvent[], rows: readonly CopyRow[], outputOf: (index: number, attempt: number) => Uint8Array | undefined, also?: () => () => void): (() => void) | undefined {
  if (s === undefined) return also?.()
  // a step that writes nothing commits nothing (each commit is a synchronous fsync)
  if (also === undefined && rows.length === 0 && !events.some(writes) && !cmds.some(c => c.type === 'run')) return
  let after: (() => void) | undefined
  s.transaction(() => {
    for (const c of cmds) if (c.type === 'run') s.copyStarted(jobId, { index: c.index, attempt: c.attempt, provider: c.provider, leaseId: c.leaseId, reason: c.reason, startedAt: now })
    for (const r of rows) s.copyResult(jobId, r.index, r.attempt, { outcome: r.outcome, hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt })
    for (const e of events) {
      if (e.type === 'accepted') s.acceptTask(jobId, e.index, e.hash, e.attempt, outputOf(e.index, e.attempt) ?? new Uint8Array())
      else if (e.type === 'copy-settled') { if (e.revoked === true) s.revokeCopy(jobId, e.index, e.attempt); else s.copySettled(jobId, e.index, e.attempt, e.outcome, e.billed) } else if (e.type === 'task-reopened') s.reopenTask(jobId, e.index)
      else if (e.type === 'task-failed') s.failTask(jobId, e.index, e.reason)
    }
    after = also?.()
  })
  return after
}

/** Whether persistStep writes anything for this event. */
const writes = (e: JobEvent): boolean => e.type === 'accepted' || e.type === 'copy-settled' || e.type === 'task-reopened' || e.type === 'task-failed'

/** The job's summary from its final progress and the runner's tallies. */
export function summaryOf (p: Progress, o: Omit<JobSummary, 'status' | 'tasks' | 'done' | 'failed' | 'copies' | 'retries' | 'speculative' | 'wrongCopies' | 'checkedTasks' | 'billedCopies' | 'refusals'> & { cancelled: boolean, billedCopies?: number, refusals: Record<string, number> }): JobSummary {
  const { cancelled, refusals, billedCopies, ...rest } = o
  return {
    ...rest,
    status: cancelled ? 'cancelled' : p.failed > 0 ? 'failed' : 'finished',
    tasks: p.total, done: p.done, failed: p.failed, copies: p.copies, retries: p.retries, speculative: p.speculative, wrongCopies: p.wrong, checkedTasks: p.checks ?? 0,
    billedCopies: billedCopies ?? p.billed,
    ...(Object.keys(refusals).length > 0 ? { refusals } : {})
  }
}
