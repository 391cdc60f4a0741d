// GET /v1/dashboard/jobs/:id: a submitted job task by task for the Jobs page. Per provider: its
// copies by outcome and the tasks it delivered; per task: status, where each copy ran and why
// (the scheduler's copy reason), read from the job store; the unplaced reasons from explain.
import type { Store } from '../store/db.js'
import type { JobStore } from '../jobs/store.js'
import type { JobService } from '../jobs/service.js'
import { describeUnplaced, type UnplacedReason } from '../core/scheduler/index.js'

export type TaskState = 'queued' | 'running' | 'done' | 'failed'

export interface ProviderRow {
  provider: string
  /** Copies running there now. */
  running: number
  /**
   * Its copies that agreed with an accepted result: every provider of a redundant (or spot-checked)
   * task counts it. Counting only the copy recorded as accepted showed 1,379 and 0 for two providers
   * that each returned 1,379 agreed copies of a redundancy-2 job (review s13 L9, user walk s14).
   */
  done: number
  failed: number
  copies: number
  byOutcome: Record<string, number>
}

export interface TaskRow {
  index: number
  status: TaskState
  reason?: string
  copies: Array<{ attempt: number, provider: string, reason: string, outcome: string, ms: number | null, error?: string }>
}

export interface JobDetail {
  jobId: string
  counts: Record<TaskState, number>
  providers: ProviderRow[]
  tasks: TaskRow[]
  /** More tasks than listed (the page shows the first `limit`). */
  truncated: boolean
  unplaced: Array<{ reason: string, tasks: number, text: string }>
}

const DEFAULT_LIMIT = 400

export function jobDetail (store: Store, jobs: JobStore, service: JobService, jobId: string, limit = DEFAULT_LIMIT): JobDetail {
  const status = service.status(jobId) // NOT_FOUND for unknown jobs
  const explain = service.explain(jobId)
  // task states only (job_tasks holds outputs too: do not read those here)
  const rows = store.db.prepare('SELECT idx, status, failed_reason FROM job_tasks WHERE job_id = ?').all(jobId) as Array<{ idx: number, status: string, failed_reason: string | null }>
  const byIndex = new Map(rows.map(r => [Number(r.idx), r]))
  const copies = jobs.copies(jobId)
  const copiesByTask = new Map<number, typeof copies>()
  for (const c of copies) {
    const list = copiesByTask.get(c.index) ?? []
    list.push(c)
    copiesByTask.set(c.index, list)
  }
  const providers = new Map<string, ProviderRow>()
  const prow = (p: string): ProviderRow => {
    let r = providers.get(p)
    if (r === undefined) { r = { provider: p, running: 0, done: 0, failed: 0, copies: 0, byOutcome: {} }; providers.set(p, r) }
    return r
  }
  for (const c of copies) {
    const r = prow(c.provider)
    r.copies++
    r.byOutcome[c.outcome] = (r.byOutcome[c.outcome] ?? 0) + 1
    if (c.outcome === 'running' && status.status === 'running') r.running++
    if (c.outcome === 'agreed') r.done++
    if (c.outcome === 'failed' || c.outcome === 'timeout' || c.outcome === 'lost' || c.outcome === 'wrong') r.failed++
  }
  const counts: Record<TaskState, number> = { queued: 0, running: 0, done: 0, failed: 0 }
  const tasks: TaskRow[] = []
  for (let i = 0; i < status.tasks; i++) {
    const t = byIndex.get(i)
    const cs = copiesByTask.get(i) ?? []
    let st: TaskState
    if (t?.status === 'done') {
      st = 'done'
    } else if (t?.status === 'failed') st = 'failed'
    else if (status.status === 'running' && cs.some(c => c.outcome === 'running')) st = 'running'
    else st = status.status === 'running' ? 'queued' : 'failed'
    counts[st]++
    if (tasks.length < limit) {
      tasks.push({
        index: i,
        status: st,
        ...(t?.failed_reason != null ? { reason: t.failed_reason } : {}),
        copies: cs.map(c => ({ attempt: c.attempt, provider: c.provider, reason: c.reason, outcome: c.outcome, ms: c.endedAt === undefined ? null : Math.round(c.endedAt - c.startedAt), ...(c.error !== undefined ? { error: c.error } : {}) }))
      })
    }
  }
  // the live runner's own counts are the truth while it runs (a copy row is written as it starts)
  if (status.status === 'running') {
    counts.running = status.running
    counts.queued = status.queued
  }
  const unplaced = Object.entries(explain.placement?.unplaced ?? {}).filter(([, n]) => (n ?? 0) > 0)
    .map(([reason, n]) => ({ reason, tasks: n ?? 0, text: describeUnplaced(reason as UnplacedReason) }))
  return { jobId, counts, providers: [...providers.values()].sort((a, b) => b.copies - a.copies), tasks, truncated: status.tasks > tasks.length, unplaced }
}
