// What the runner writes to the JobStore at each step (copies are recorded before they are sent;
// a result, its acceptance and its billing go in one transaction), and the job's final summary.
import type { ResultVerdict, JobCommand, JobEvent, Progress, CopyReason } from '../core/scheduler/index.js'
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
  const settledWith = pairSettled(rows, events)
  s.transaction(() => {
    // the step's copies ahead in multi-row statements (copiesStarted), the same rows as one by one
    const started: Array<{ index: number, attempt: number, provider: string, leaseId: string, reason: CopyReason, startedAt: number }> = []
    for (const c of cmds) if (c.type === 'run') started.push({ index: c.index, attempt: c.attempt, provider: c.provider, leaseId: c.leaseId, reason: c.reason, startedAt: now })
    if (started.length > 0) s.copiesStarted(jobId, started)
    // answers settled in the step, each copy once (pairSettled), in multi-row statements (copiesAnswered)
    const answered: Parameters<JobStore['copiesAnswered']>[1][number][] = []
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]
      const settled = settledWith?.byRow.get(i)
      if (settled !== undefined && r.outcome !== 'duplicate') answered.push({ index: r.index, attempt: r.attempt, r: { outcome: r.outcome, hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt }, settled })
      else s.copyResult(jobId, r.index, r.attempt, { outcome: r.outcome, hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt })
    }
    if (answered.length > 0) s.copiesAnswered(jobId, answered)
    // acceptances gathered into multi-row statements (acceptTasks), written before any other write
    // to job_tasks (a reopen, a failure) that follows them in the step, so the order stays the events'
    let accepted: Array<{ index: number, hash: string, attempt: number, output: Uint8Array }> = []
    const flush = (): void => { if (accepted.length > 0) { s.acceptTasks(jobId, accepted); accepted = [] } }
    for (const e of events) {
      if (e.type === 'accepted') accepted.push({ index: e.index, hash: e.hash, attempt: e.attempt, output: outputOf(e.index, e.attempt) ?? new Uint8Array() })
      else if (e.type === 'copy-settled') { if (e.revoked === true) s.revokeCopy(jobId, e.index, e.attempt); else if (settledWith?.events.has(e) !== true) s.copySettled(jobId, e.index, e.attempt, e.outcome, e.billed) } else if (e.type === 'task-reopened') { flush(); s.reopenTask(jobId, e.index) } else if (e.type === 'task-failed') { flush(); s.failTask(jobId, e.index, e.reason) }
    }
    flush()
    after = also?.()
  })
  return after
}

type Settled = Extract<JobEvent, { type: 'copy-settled' }>

/**
 * The step's answers settled in the same step (row index -> its copy-settled event), written as one
 * statement each (copyAnswered): only a copy with exactly one answer (not a duplicate) and exactly one
 * copy-settled event, not a revoke, in the step; any other copy is written statement by statement.
 */
function pairSettled (rows: readonly CopyRow[], events: readonly JobEvent[]): { byRow: Map<number, Settled>, events: Set<Settled> } | undefined {
  if (rows.length === 0) return undefined
  // a copy's key as the runner's (index * 65536 + attempt): no string made per row and event; a
  // pair is taken only for the very same copy (below), so a key two copies shared would pair none wrongly
  const key = (index: number, attempt: number): number => index * 65536 + attempt
  const settles = new Map<number, Settled | null>()
  for (const e of events) {
    if (e.type !== 'copy-settled') continue
    const k = key(e.index, e.attempt)
    settles.set(k, settles.has(k) || e.revoked === true ? null : e)
  }
  if (settles.size === 0) return undefined
  const rowOf = new Map<number, number | null>()
  rows.forEach((r, i) => { const k = key(r.index, r.attempt); rowOf.set(k, rowOf.has(k) || r.outcome === 'duplicate' ? null : i) })
  const byRow = new Map<number, Settled>()
  const paired = new Set<Settled>()
  for (const [k, e] of settles) {
    const i = rowOf.get(k)
    if (e !== null && i !== undefined && i !== null && rows[i].index === e.index && rows[i].attempt === e.attempt) { byRow.set(i, e); paired.add(e) }
  }
  return byRow.size === 0 ? undefined : { byRow, events: paired }
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
