// Durable job state in the node's store: jobs, accepted task results, and every copy
// (task index + attempt) with its outcome, receipt and billing flag. Writes are idempotent
// so a submitter that restarts and replays never loses a task or bills a copy twice:
// a task is accepted once (first write wins), a copy is billed at most once.
import type { StatementSync } from 'node:sqlite'
import type { Store } from '../store/db.js'
import type { CopyOutcome, CopyReason, RestoredTask, ProviderRecord } from '../core/scheduler/index.js'

const MIGRATIONS = [
  `CREATE TABLE jobs (
     job_id TEXT PRIMARY KEY, owner BLOB NOT NULL, manifest TEXT NOT NULL, manifest_hash BLOB NOT NULL,
     created_at REAL NOT NULL, nonce BLOB NOT NULL, signature BLOB NOT NULL, status TEXT NOT NULL,
     task_count INTEGER NOT NULL, updated_at REAL NOT NULL, summary TEXT)`,
  `CREATE TABLE job_tasks (
     job_id TEXT NOT NULL, idx INTEGER NOT NULL, status TEXT NOT NULL, accepted_hash TEXT,
     accepted_attempt INTEGER, output BLOB, failed_reason TEXT, PRIMARY KEY (job_id, idx))`,
  `CREATE TABLE job_copies (
     job_id TEXT NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL, provider TEXT NOT NULL,
     lease_id TEXT NOT NULL, reason TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL,
     outcome TEXT NOT NULL, hash TEXT, error TEXT, billed INTEGER NOT NULL DEFAULT 0, receipt BLOB,
     duplicates INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (job_id, idx, attempt))`,
  `CREATE TABLE provider_reputation (provider TEXT PRIMARY KEY, agreed INTEGER NOT NULL, wrong INTEGER NOT NULL, failed INTEGER NOT NULL, timeout INTEGER NOT NULL)`
]

export type JobStatus = 'running' | 'finished' | 'failed' | 'cancelled'

export interface StoredJob {
  jobId: string
  owner: Uint8Array
  manifest: string
  manifestHash: Uint8Array
  createdAt: number
  nonce: Uint8Array
  signature: Uint8Array
  status: JobStatus
  taskCount: number
  updatedAt: number
  summary?: string
}

export interface CopyRow {
  index: number, attempt: number, provider: string, leaseId: string, reason: CopyReason, startedAt: number
  endedAt?: number, outcome: CopyOutcome, hash?: string, error?: string, billed: boolean, receipt?: Uint8Array, duplicates: number
}

/** The most rows one multi-row INSERT writes (copiesStarted, acceptTasks): a statement is prepared once per row count up to it. */
export const ROWS_PER_STATEMENT = 32

const u8 = (v: unknown): Uint8Array => v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array()

export class JobStore {
  private readonly statements = new Map<string, StatementSync>()

  constructor (readonly store: Store) {
    store.migrate('jobs', MIGRATIONS)
  }

  /** Prepared once per SQL text: the dispatch path writes a few rows per task. */
  private stmt (sql: string): StatementSync {
    let st = this.statements.get(sql)
    if (st === undefined) { st = this.store.db.prepare(sql); this.statements.set(sql, st) }
    return st
  }

  /** Multi-row statements by row count (index n: n rows), prepared on first use: no SQL text built per call. */
  private readonly startedStmts: StatementSync[] = []
  private readonly acceptedStmts: StatementSync[] = []
  private readonly answeredStmts: StatementSync[] = []

  private rowsStmt (held: StatementSync[], n: number, head: string, row: string, tail = ''): StatementSync {
    return (held[n] ??= this.stmt(`${head} ${Array.from({ length: n }, () => row).join(', ')}${tail}`))
  }

  transaction<T> (fn: () => T): T { return this.store.transaction(fn) }

  createJob (j: StoredJob): void {
    this.stmt(`INSERT OR IGNORE INTO jobs (job_id, owner, manifest, manifest_hash, created_at, nonce, signature, status, task_count, updated_at, summary)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(j.jobId, j.owner, j.manifest, j.manifestHash, j.createdAt, j.nonce, j.signature, j.status, j.taskCount, j.updatedAt, j.summary ?? null)
  }

  getJob (jobId: string): StoredJob | undefined {
    const r = this.stmt('SELECT * FROM jobs WHERE job_id = ?').get(jobId) as Record<string, unknown> | undefined
    return r === undefined ? undefined : rowToJob(r)
  }

  listJobs (): StoredJob[] {
    return (this.stmt('SELECT * FROM jobs ORDER BY created_at').all() as Array<Record<string, unknown>>).map(rowToJob)
  }

  setJobStatus (jobId: string, status: JobStatus, at: number, summary?: string): void {
    this.stmt('UPDATE jobs SET status = ?, updated_at = ?, summary = COALESCE(?, summary) WHERE job_id = ?').run(status, at, summary ?? null, jobId)
  }

  /** Written before the copy is sent (write-ahead), so attempt numbers are never reused. */
  copyStarted (jobId: string, c: { index: number, attempt: number, provider: string, leaseId: string, reason: CopyReason, startedAt: number }): void {
    this.stmt(`INSERT OR IGNORE INTO job_copies (job_id, idx, attempt, provider, lease_id, reason, started_at, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, 'running')`)
      .run(jobId, c.index, c.attempt, c.provider, c.leaseId, c.reason, c.startedAt)
  }

  /**
   * copyStarted for many copies: one INSERT OR IGNORE of up to ROWS_PER_STATEMENT rows per statement
   * (each row is ignored or written as copyStarted's would be). A pump step writes a lease's whole
   * bundle of copies ahead at once: one statement per copy was ~a third of the step's statements.
   */
  copiesStarted (jobId: string, cs: ReadonlyArray<{ index: number, attempt: number, provider: string, leaseId: string, reason: CopyReason, startedAt: number }>): void {
    for (let at = 0; at < cs.length; at += ROWS_PER_STATEMENT) {
      const n = Math.min(ROWS_PER_STATEMENT, cs.length - at)
      const args: Array<string | number> = []
      for (let k = at; k < at + n; k++) { const c = cs[k]; args.push(jobId, c.index, c.attempt, c.provider, c.leaseId, c.reason, c.startedAt) }
      this.rowsStmt(this.startedStmts, n, "INSERT OR IGNORE INTO job_copies (job_id, idx, attempt, provider, lease_id, reason, started_at, outcome) VALUES", "(?, ?, ?, ?, ?, ?, ?, 'running')").run(...args)
    }
  }

  /** A result came back for a copy; a second result for the same copy only counts as a duplicate. */
  copyResult (jobId: string, index: number, attempt: number, r: { outcome: CopyOutcome | 'duplicate', hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }): void {
    if (r.outcome === 'duplicate') {
      this.stmt('UPDATE job_copies SET duplicates = duplicates + 1 WHERE job_id = ? AND idx = ? AND attempt = ?').run(jobId, index, attempt)
      return
    }
    this.stmt('UPDATE job_copies SET outcome = ?, hash = ?, error = ?, ended_at = ?, receipt = COALESCE(receipt, ?) WHERE job_id = ? AND idx = ? AND attempt = ?')
      .run(r.outcome, r.hash ?? null, r.error ?? null, r.endedAt, r.receipt ?? null, jobId, index, attempt)
  }

  /** Final outcome of a copy; `billed` is sticky (never set twice, never taken back). */
  copySettled (jobId: string, index: number, attempt: number, outcome: CopyOutcome, billed: boolean): void {
    this.stmt('UPDATE job_copies SET outcome = CASE WHEN billed = 1 THEN outcome ELSE ? END, billed = MAX(billed, ?) WHERE job_id = ? AND idx = ? AND attempt = ?')
      .run(outcome, billed ? 1 : 0, jobId, index, attempt)
  }

  /**
   * copyResult then copySettled of the same copy in one statement (a result the job machine settled
   * in the step that wrote it: the runner's usual case); what the two leave is the same.
   */
  copyAnswered (jobId: string, index: number, attempt: number, r: { outcome: CopyOutcome, hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }, settled: { outcome: CopyOutcome, billed: boolean }): void {
    // every right-hand side reads the row as it was: copyResult leaves billed as it is, so a billed
    // copy keeps the result's outcome, another takes the settled one
    this.stmt('UPDATE job_copies SET outcome = CASE WHEN billed = 1 THEN ? ELSE ? END, hash = ?, error = ?, ended_at = ?, receipt = COALESCE(receipt, ?), billed = MAX(billed, ?) WHERE job_id = ? AND idx = ? AND attempt = ?')
      .run(r.outcome, settled.outcome, r.hash ?? null, r.error ?? null, r.endedAt, r.receipt ?? null, settled.billed ? 1 : 0, jobId, index, attempt)
  }

  /**
   * copyAnswered for many copies, each named once: one UPDATE ... FROM (VALUES ...) of up to
   * ROWS_PER_STATEMENT copies per statement (each row set as copyAnswered sets it).
   */
  copiesAnswered (jobId: string, cs: ReadonlyArray<{ index: number, attempt: number, r: { outcome: CopyOutcome, hash?: string, error?: string, endedAt: number, receipt?: Uint8Array }, settled: { outcome: CopyOutcome, billed: boolean } }>): void {
    for (let at = 0; at < cs.length; at += ROWS_PER_STATEMENT) {
      const n = Math.min(ROWS_PER_STATEMENT, cs.length - at)
      const args: Array<string | number | Uint8Array | null> = []
      for (let k = at; k < at + n; k++) { const { index, attempt, r, settled } = cs[k]; args.push(r.outcome, settled.outcome, r.hash ?? null, r.error ?? null, r.endedAt, r.receipt ?? null, settled.billed ? 1 : 0, index, attempt) }
      args.push(jobId)
      // (the VALUES columns are column1..column9; billed and receipt name the copy's row as it was)
      this.rowsStmt(this.answeredStmts, n, 'UPDATE job_copies SET outcome = CASE WHEN billed = 1 THEN v.column1 ELSE v.column2 END, hash = v.column3, error = v.column4, ended_at = v.column5, receipt = COALESCE(receipt, v.column6), billed = MAX(billed, v.column7) FROM (VALUES',
        '(?, ?, ?, ?, ?, ?, ?, ?, ?)', ') AS v WHERE job_copies.job_id = ? AND job_copies.idx = v.column8 AND job_copies.attempt = v.column9').run(...args)
    }
  }

  /** A copy withdrawn because its provider was caught lying: not billed any more (its pay is forfeited). */
  revokeCopy (jobId: string, index: number, attempt: number): void {
    this.stmt(`UPDATE job_copies SET outcome = 'wrong', billed = 0 WHERE job_id = ? AND idx = ? AND attempt = ?`).run(jobId, index, attempt)
  }

  /** An accepted result withdrawn (a caught provider's vote carried it): the task runs again. */
  reopenTask (jobId: string, index: number): void {
    this.stmt(`DELETE FROM job_tasks WHERE job_id = ? AND idx = ? AND status = 'done'`).run(jobId, index)
  }

  /** First acceptance wins; a replay is ignored. Returns whether this call accepted it. */
  acceptTask (jobId: string, index: number, hash: string, attempt: number, output: Uint8Array): boolean {
    const r = this.stmt(`INSERT OR IGNORE INTO job_tasks (job_id, idx, status, accepted_hash, accepted_attempt, output) VALUES (?, ?, 'done', ?, ?, ?)`).run(jobId, index, hash, attempt, output)
    return Number(r.changes) === 1
  }

  /**
   * acceptTask for many tasks, in order (INSERT OR IGNORE of up to ROWS_PER_STATEMENT rows per
   * statement: a task named twice keeps its first row, as one by one).
   */
  acceptTasks (jobId: string, ts: ReadonlyArray<{ index: number, hash: string, attempt: number, output: Uint8Array }>): void {
    for (let at = 0; at < ts.length; at += ROWS_PER_STATEMENT) {
      const n = Math.min(ROWS_PER_STATEMENT, ts.length - at)
      const args: Array<string | number | Uint8Array> = []
      for (let k = at; k < at + n; k++) { const t = ts[k]; args.push(jobId, t.index, t.hash, t.attempt, t.output) }
      this.rowsStmt(this.acceptedStmts, n, "INSERT OR IGNORE INTO job_tasks (job_id, idx, status, accepted_hash, accepted_attempt, output) VALUES", "(?, ?, 'done', ?, ?, ?)").run(...args)
    }
  }

  failTask (jobId: string, index: number, reason: string): void {
    this.stmt(`INSERT OR IGNORE INTO job_tasks (job_id, idx, status, failed_reason) VALUES (?, ?, 'failed', ?)`).run(jobId, index, reason)
  }

  /** What a restarted submitter feeds back into a fresh JobMachine. */
  restoreState (jobId: string): Map<number, RestoredTask> {
    const out = new Map<number, RestoredTask>()
    const get = (i: number): RestoredTask => { let t = out.get(i); if (t === undefined) { t = { copies: [] }; out.set(i, t) } return t }
    for (const r of this.stmt('SELECT idx, status, accepted_hash, failed_reason FROM job_tasks WHERE job_id = ?').all(jobId) as Array<Record<string, unknown>>) {
      const t = get(Number(r.idx))
      if (r.status === 'done') t.accepted = String(r.accepted_hash)
      else t.failed = String(r.failed_reason ?? 'failed')
    }
    for (const c of this.copies(jobId)) get(c.index).copies.push({ attempt: c.attempt, provider: c.provider, outcome: c.outcome, hash: c.hash, reason: c.reason })
    return out
  }

  copies (jobId: string, index?: number): CopyRow[] {
    const rows = (index === undefined
      ? this.stmt('SELECT * FROM job_copies WHERE job_id = ? ORDER BY idx, attempt').all(jobId)
      : this.stmt('SELECT * FROM job_copies WHERE job_id = ? AND idx = ? ORDER BY attempt').all(jobId, index)) as Array<Record<string, unknown>>
    return rows.map(r => ({
      index: Number(r.idx), attempt: Number(r.attempt), provider: String(r.provider), leaseId: String(r.lease_id), reason: r.reason as CopyReason,
      startedAt: Number(r.started_at), endedAt: r.ended_at == null ? undefined : Number(r.ended_at), outcome: r.outcome as CopyOutcome,
      hash: r.hash == null ? undefined : String(r.hash), error: r.error == null ? undefined : String(r.error), billed: Number(r.billed) === 1,
      receipt: r.receipt == null ? undefined : u8(r.receipt), duplicates: Number(r.duplicates)
    }))
  }

  results (jobId: string): Array<{ index: number, hash: string, attempt: number, output: Uint8Array }> {
    return (this.stmt(`SELECT idx, accepted_hash, accepted_attempt, output FROM job_tasks WHERE job_id = ? AND status = 'done' ORDER BY idx`).all(jobId) as Array<Record<string, unknown>>)
      .map(r => ({ index: Number(r.idx), hash: String(r.accepted_hash), attempt: Number(r.accepted_attempt), output: u8(r.output) }))
  }

  /** Receipts of billed copies (one per copy that agreed with the accepted result): what settlement pays. */
  billedReceipts (jobId: string): Array<{ index: number, attempt: number, provider: string, receipt: Uint8Array }> {
    return (this.stmt('SELECT idx, attempt, provider, receipt FROM job_copies WHERE job_id = ? AND billed = 1 AND receipt IS NOT NULL ORDER BY idx, attempt').all(jobId) as Array<Record<string, unknown>>)
      .map(r => ({ index: Number(r.idx), attempt: Number(r.attempt), provider: String(r.provider), receipt: u8(r.receipt) }))
  }

  failures (jobId: string): Array<{ index: number, reason: string }> {
    return (this.stmt(`SELECT idx, failed_reason FROM job_tasks WHERE job_id = ? AND status = 'failed' ORDER BY idx`).all(jobId) as Array<Record<string, unknown>>)
      .map(r => ({ index: Number(r.idx), reason: String(r.failed_reason) }))
  }

  /** Copies by outcome and how many are billed, for status and the summary. */
  accounting (jobId: string): { done: number, failed: number, billed: number, byOutcome: Record<string, number>, duplicates: number } {
    const t = this.stmt(`SELECT SUM(status = 'done') AS done, SUM(status = 'failed') AS failed FROM job_tasks WHERE job_id = ?`).get(jobId) as Record<string, unknown>
    const byOutcome: Record<string, number> = {}
    let billed = 0
    let duplicates = 0
    // one pass over the job's copies (status is asked while the job runs)
    for (const r of this.stmt('SELECT outcome, COUNT(*) AS n, SUM(billed) AS billed, SUM(duplicates) AS dups FROM job_copies WHERE job_id = ? GROUP BY outcome').all(jobId) as Array<Record<string, unknown>>) {
      byOutcome[String(r.outcome)] = Number(r.n)
      billed += Number(r.billed ?? 0)
      duplicates += Number(r.dups ?? 0)
    }
    return { done: Number(t.done ?? 0), failed: Number(t.failed ?? 0), billed, byOutcome, duplicates }
  }

  saveReputation (records: Record<string, ProviderRecord>): void {
    const stmt = this.stmt('INSERT INTO provider_reputation (provider, agreed, wrong, failed, timeout) VALUES (?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE SET agreed = excluded.agreed, wrong = excluded.wrong, failed = excluded.failed, timeout = excluded.timeout')
    this.transaction(() => { for (const [p, r] of Object.entries(records)) stmt.run(p, r.agreed, r.wrong, r.failed, r.timeout) })
  }

  loadReputation (): Record<string, ProviderRecord> {
    const out: Record<string, ProviderRecord> = {}
    for (const r of this.stmt('SELECT * FROM provider_reputation').all() as Array<Record<string, unknown>>) {
      out[String(r.provider)] = { agreed: Number(r.agreed), wrong: Number(r.wrong), failed: Number(r.failed), timeout: Number(r.timeout) }
    }
    return out
  }
}

function rowToJob (r: Record<string, unknown>): StoredJob {
  return {
    jobId: String(r.job_id), owner: u8(r.owner), manifest: String(r.manifest), manifestHash: u8(r.manifest_hash), createdAt: Number(r.created_at),
    nonce: u8(r.nonce), signature: u8(r.signature), status: r.status as JobStatus, taskCount: Number(r.task_count), updatedAt: Number(r.updated_at),
    summary: r.summary == null ? undefined : String(r.summary)
  }
}

/** On restart: copies that were out when the submitter stopped can not report back. */
export function markRunningCopiesLost (s: JobStore, jobId: string, at: number): void {
  s.store.db.prepare(`UPDATE job_copies SET outcome = 'lost', ended_at = ?, error = 'submitter restarted' WHERE job_id = ? AND outcome = 'running'`).run(at, jobId)
}
