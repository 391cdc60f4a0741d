// The submitter's side of task logs: each copy's stderr as its provider sent it back (bounded:
// task-output.ts), stored with the job in its own table, and a job's events (placed, result back,
// failed with reason, retried, ended) derived from the durable job rows, so `dbc job logs` reads
// the same after a restart as while the job runs.
import type { StatementSync } from 'node:sqlite'
import type { Store } from '../store/db.js'
import type { dbc } from '../wire/gen/wire.js'
import type { JobTransport } from './transport.js'
import type { JobStore } from './store.js'
import { boundTaskLog, JOB_LOG_BUDGET_BYTES, TASK_LOG_KEEP_BYTES, TASK_LOG_SMALL_BYTES } from './task-output.js'

const MIGRATIONS = [
  `CREATE TABLE job_copy_logs (
     job_id TEXT NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL, provider TEXT NOT NULL,
     stderr BLOB NOT NULL, total_bytes INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (job_id, idx, attempt))`
]

/** Jobs whose stored log bytes are kept in memory (the running ones, in practice). */
export const USED_JOBS_MAX = 256

/** One copy's stored stderr. */
export interface CopyLog { index: number, attempt: number, provider: string, stderr: Uint8Array, totalBytes: number, at: number }

export class TaskLogStore {
  private readonly statements = new Map<string, StatementSync>()
  /** Bytes stored per job (loaded once per job), for the per-job budget; the jobs logged last, at most USED_JOBS_MAX (a job that falls out sums its logs again). */
  private readonly used = new Map<string, number>()

  constructor (readonly store: Store, private readonly limits: { perCopy?: number, perJob?: number, afterBudget?: number } = {}) {
    store.migrate('job-logs', MIGRATIONS)
  }

  private stmt (sql: string): StatementSync {
    let st = this.statements.get(sql)
    if (st === undefined) { st = this.store.db.prepare(sql); this.statements.set(sql, st) }
    return st
  }

  /**
   * Keeps a copy's stderr from its result; the first write for a copy wins (a replayed result
   * cannot rewrite it). Past the job's budget a copy keeps only a short tail.
   */
  record (jobId: string, index: number, attempt: number, provider: string, stderr: Uint8Array | null | undefined, claimedBytes: number | null | undefined, at: number): boolean {
    let used = this.used.get(jobId)
    if (used === undefined) {
      const r = this.stmt('SELECT COALESCE(SUM(LENGTH(stderr)), 0) AS n FROM job_copy_logs WHERE job_id = ?').get(jobId) as { n: number }
      used = Number(r.n)
      // kept at once: a copy with no stderr must not sum the job's logs again (a scan per copy)
      this.used.set(jobId, used)
    }
    const keep = used >= (this.limits.perJob ?? JOB_LOG_BUDGET_BYTES) ? (this.limits.afterBudget ?? TASK_LOG_SMALL_BYTES) : (this.limits.perCopy ?? TASK_LOG_KEEP_BYTES)
    const log = boundTaskLog(stderr, claimedBytes, keep)
    if (log === undefined) return false
    const r = this.stmt('INSERT OR IGNORE INTO job_copy_logs (job_id, idx, attempt, provider, stderr, total_bytes, at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(jobId, index, attempt, provider, log.stderr, log.totalBytes, at)
    const added = Number(r.changes) === 1
    // the daemon's whole life: the jobs logged last, not every job it ever ran
    this.used.delete(jobId)
    this.used.set(jobId, used + (added ? log.stderr.length : 0))
    if (this.used.size > USED_JOBS_MAX) this.used.delete(this.used.keys().next().value as string)
    return added
  }

  get (jobId: string, index: number, attempt: number): CopyLog | undefined {
    const r = this.stmt('SELECT * FROM job_copy_logs WHERE job_id = ? AND idx = ? AND attempt = ?').get(jobId, index, attempt) as Record<string, unknown> | undefined
    return r === undefined ? undefined : rowToLog(r)
  }

  list (jobId: string): CopyLog[] {
    return (this.stmt('SELECT * FROM job_copy_logs WHERE job_id = ? ORDER BY idx, attempt').all(jobId) as Array<Record<string, unknown>>).map(rowToLog)
  }

  /** Bytes stored for a job (the budget's count). */
  bytes (jobId: string): number {
    const r = this.stmt('SELECT COALESCE(SUM(LENGTH(stderr)), 0) AS n FROM job_copy_logs WHERE job_id = ?').get(jobId) as { n: number }
    return Number(r.n)
  }
}

function rowToLog (r: Record<string, unknown>): CopyLog {
  return {
    index: Number(r.idx), attempt: Number(r.attempt), provider: String(r.provider),
    stderr: r.stderr instanceof Uint8Array ? new Uint8Array(r.stderr) : new Uint8Array(), totalBytes: Number(r.total_bytes), at: Number(r.at)
  }
}

/**
 * The transport a job's runner uses, with each result's stderr stored under the copy the runner
 * SENT (its job, index and attempt), so a provider can only write the log of its own copy.
 */
export function recordingTaskLogs (transport: JobTransport, logs: TaskLogStore, jobId: string, onError?: (err: Error) => void): JobTransport {
  const runTask = async (provider: string, task: dbc.task.v1.ITask, opts: { signal?: AbortSignal }): Promise<dbc.task.v1.ITaskResult> => {
    const result = await transport.runTask(provider, task, opts)
    try {
      logs.record(jobId, task.index ?? 0, task.attempt ?? 0, provider, result.stderr, result.stderrBytes, Date.now())
    } catch (err) {
      onError?.(err as Error) // a log that could not be stored never fails the copy
    }
    return result
  }
  return new Proxy(transport, {
    get (target, prop) {
      if (prop === 'runTask') return runTask
      const v = Reflect.get(target, prop, target) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
}

// ---- events ----------------------------------------------------------------------

export type JobEventKind = 'submitted' | 'placed' | 'returned' | 'task-failed' | 'ended'

/** One line of a job's history. `key` is stable across reads (a follower sends each key once). */
export interface JobEvent {
  key: string
  at: number
  kind: JobEventKind
  index?: number
  attempt?: number
  provider?: string
  /** placed: why this copy was sent (initial, redundant, retry, speculative, tie-break, spot-check). */
  reason?: string
  /** returned: the copy's outcome (agreed, pending, failed, timeout, lost, wrong, ...). */
  outcome?: string
  error?: string
  ms?: number
  /** ended: the job's final status and counts. */
  status?: string
  done?: number
  failed?: number
  /** returned: what the task wrote to stderr (decoded; not yet safe for a terminal: see printable()). */
  log?: { text: string, bytes: number, kept: number, truncated: boolean }
}

const RANK: Record<JobEventKind, number> = { submitted: 0, placed: 1, returned: 2, 'task-failed': 3, ended: 4 }

/** A job's events in time order, without logs (attachLogs adds them to the ones a reader wants). */
export function jobEvents (jobs: JobStore, jobId: string): JobEvent[] {
  const job = jobs.getJob(jobId)
  if (job === undefined) return []
  const out: JobEvent[] = [{ key: 'submitted', at: job.createdAt, kind: 'submitted' }]
  const lastEnd = new Map<number, number>()
  for (const c of jobs.copies(jobId)) {
    out.push({ key: `p:${c.index}:${c.attempt}`, at: c.startedAt, kind: 'placed', index: c.index, attempt: c.attempt, provider: c.provider, reason: c.reason })
    if (c.outcome !== 'running' && c.endedAt !== undefined) {
      // the outcome is in the key: a copy that came back pending and was then agreed (or found wrong) is news
      out.push({ key: `r:${c.index}:${c.attempt}:${c.outcome}`, at: c.endedAt, kind: 'returned', index: c.index, attempt: c.attempt, provider: c.provider, outcome: c.outcome, ...(c.error !== undefined && c.error !== '' ? { error: c.error } : {}), ms: c.endedAt - c.startedAt })
      lastEnd.set(c.index, Math.max(lastEnd.get(c.index) ?? 0, c.endedAt))
    }
  }
  // a task that failed without a copy back (never placed) has no time of its own: the job's latest
  const latest = job.status !== 'running' ? job.updatedAt : Math.max(job.createdAt, ...out.map(e => e.at))
  for (const f of jobs.failures(jobId)) {
    out.push({ key: `f:${f.index}`, at: lastEnd.get(f.index) ?? latest, kind: 'task-failed', index: f.index, error: f.reason })
  }
  if (job.status !== 'running') {
    const acc = jobs.accounting(jobId)
    out.push({ key: 'ended', at: job.updatedAt, kind: 'ended', status: job.status, done: acc.done, failed: acc.failed })
  }
  return out.sort((a, b) => a.at - b.at || RANK[a.kind] - RANK[b.kind] || (a.index ?? -1) - (b.index ?? -1) || (a.attempt ?? -1) - (b.attempt ?? -1))
}

/** Adds each returned copy's stored stderr to its event. */
export function attachLogs (events: JobEvent[], logs: TaskLogStore, jobId: string): JobEvent[] {
  for (const e of events) {
    if (e.kind !== 'returned' || e.index === undefined || e.attempt === undefined) continue
    const l = logs.get(jobId, e.index, e.attempt)
    if (l !== undefined) e.log = { text: new TextDecoder().decode(l.stderr), bytes: l.totalBytes, kept: l.stderr.length, truncated: l.totalBytes > l.stderr.length }
  }
  return events
}

/** What `GET /v1/jobs/:id/logs` answers. */
export interface JobLogView { jobId: string, status: string, events: JobEvent[] }

export function jobLogView (jobs: JobStore, logs: TaskLogStore, jobId: string): JobLogView | undefined {
  const job = jobs.getJob(jobId)
  if (job === undefined) return undefined
  return { jobId, status: job.status, events: attachLogs(jobEvents(jobs, jobId), logs, jobId) }
}

/**
 * Sends a job's events as they appear until it ends: every event once (by key), each returned
 * copy's log with the first event of that copy. `wait` resolves on news or after a while.
 */
export async function followJobEvents (jobs: JobStore, logs: TaskLogStore, jobId: string, send: (e: JobEvent) => void, wait: () => Promise<void>, signal: AbortSignal): Promise<string> {
  const sent = new Set<string>()
  const logged = new Set<string>()
  for (;;) {
    const status = jobs.getJob(jobId)?.status ?? 'unknown'
    const fresh = jobEvents(jobs, jobId).filter(e => !sent.has(e.key))
    for (const e of fresh) {
      sent.add(e.key)
      const copy = `${e.index ?? ''}:${e.attempt ?? ''}`
      if (e.kind === 'returned' && !logged.has(copy)) {
        logged.add(copy)
        attachLogs([e], logs, jobId)
      }
      send(e)
    }
    // the job's end is sent as an event: the last read (after its status changed) holds it
    if (status !== 'running' || signal.aborted) return status
    await wait()
  }
}
