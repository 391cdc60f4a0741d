// What the runner writes to the JobStore at each step (copies are recorded before they are sent;
// a result, its acceptance and its billing go in one transaction), and the job's final summary.
import type { ResultVerdict, JobCommand, JobEvent, Progress } from '../core/scheduler/index.js'
import type { JobStore } from './store.js'
import type { JobSummary } from './runner-types.js'

/** A copy's answer, written with the step that follows it. */
export interface CopyRow { index: number, attempt: number, outcome: Exclude<ResultVerdict, 'unknown'>, hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }

/** One pump step: what the machine decided and what came back, written before any of it is acted on. */
export interface HeldStep { cmds: readonly JobCommand[], events: readonly JobEvent[], rows: readonly CopyRow[], at: number }

/**
 * Writes several pump steps, in order, and `also` in one transaction: one commit (one fsync) for
 * all (group commit: the runner holds its steps' sends until then). `committed`: whether it wrote
 * anything (a step that writes nothing commits nothing); `after`: what `also` left to do once committed.
 */
export function persistSteps (s: JobStore | undefined, jobId: string, steps: readonly HeldStep[], outputOf: (index: number, attempt: number) => Uint8Array | undefined, also?: () => () => void): { committed: boolean, after?: () => void } {
  if (s === undefined) return { committed: false, after: also?.() }
  if (also === undefined && !steps.some(stepWrites)) return { committed: false }
  let after: (() => void) | undefined
  s.transaction(() => {
    for (const { cmds, events, rows, at } of steps) {
      for (const c of cmds) if (c.type === 'run') s.copyStarted(jobId, { index: c.index, attempt: c.attempt, provider: c.provider, leaseId: c.leaseId, reason: c.reason, startedAt: at })
      for (const r of rows) s.copyResult(jobId, r.index, r.attempt, { outcome: r.outcome, hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt })
      for (const e of events) {
        if (e.type === 'accepted') s.acceptTask(jobId, e.index, e.hash, e.attempt, outputOf(e.index, e.attempt) ?? new Uint8Array())
        else if (e.type === 'copy-settled') { if (e.revoked === true) s.revokeCopy(jobId, e.index, e.attempt); else s.copySettled(jobId, e.index, e.attempt, e.outcome, e.billed) } else if (e.type === 'task-reopened') s.reopenTask(jobId, e.index)
        else if (e.type === 'task-failed') s.failTask(jobId, e.index, e.reason)
      }
    }
    after = also?.()
  })
  return { committed: true, after }
}

/** Whether persistSteps writes anything for this step. */
export const stepWrites = (p: HeldStep): boolean => p.rows.length > 0 || p.events.some(writes) || p.cmds.some(c => c.type === 'run')

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
