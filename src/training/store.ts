// Durable training jobs in the node's store (like grid jobs, src/jobs/store.ts): the job (spec,
// group, status, result), its progress rows, and the checkpoint of its last completed round (the
// state the members agreed on, with the round, the group and each member's shard). A submitter
// that restarts resumes every running job from its checkpoint (src/training/subsystem.ts).
import type { StatementSync } from 'node:sqlite'
import type { Store } from '../store/db.js'
import type { TrainingCheckpoint, TrainingProgress } from './session.js'
import { bytesToFloats, floatsToBytes } from './worker.js'

const MIGRATIONS = [
  `CREATE TABLE training_jobs (
     job_id TEXT PRIMARY KEY, spec TEXT NOT NULL, peers TEXT NOT NULL, status TEXT NOT NULL,
     created_at REAL NOT NULL, updated_at REAL NOT NULL, error TEXT, accuracy REAL, members TEXT,
     receipts INTEGER, model BLOB, resumed_from INTEGER NOT NULL DEFAULT 0)`,
  `CREATE TABLE training_rounds (job_id TEXT NOT NULL, round INTEGER NOT NULL, progress TEXT NOT NULL, PRIMARY KEY (job_id, round))`,
  `CREATE TABLE training_checkpoints (
     job_id TEXT PRIMARY KEY, round INTEGER NOT NULL, digest TEXT NOT NULL, params BLOB NOT NULL,
     optimizer BLOB, optimizer_round INTEGER NOT NULL, members TEXT NOT NULL, ranks TEXT NOT NULL,
     shards INTEGER NOT NULL, at REAL NOT NULL)`,
  // the manifest's name (session 13: it was dropped, every job listed as "training")
  'ALTER TABLE training_jobs ADD COLUMN name TEXT'
]

/** A job cancelled by its submitter (`dbc job cancel`) ends as 'cancelled': it is not resumed after a restart. */
export type TrainingJobStatus = 'running' | 'done' | 'failed' | 'cancelled'

export interface StoredTrainingJob {
  jobId: string
  /** The manifest's name, if it had one. */
  name?: string
  spec: unknown
  peers: string[]
  status: TrainingJobStatus
  createdAt: number
  updatedAt: number
  error?: { code: string, message: string }
  result?: { accuracy: number, members: string[], receipts: number, model: Uint8Array }
  /** The round the job last resumed from (0: never resumed). */
  resumedFrom: number
}

const u8 = (v: unknown): Uint8Array => v instanceof Uint8Array ? new Uint8Array(v) : new Uint8Array()

export class TrainingStore {
  private readonly statements = new Map<string, StatementSync>()

  constructor (readonly store: Store) {
    store.migrate('training', MIGRATIONS)
  }

  private stmt (sql: string): StatementSync {
    let st = this.statements.get(sql)
    if (st === undefined) { st = this.store.db.prepare(sql); this.statements.set(sql, st) }
    return st
  }

  createJob (j: { jobId: string, spec: unknown, peers: string[], createdAt: number, name?: string }): void {
    this.stmt('INSERT OR IGNORE INTO training_jobs (job_id, spec, peers, status, created_at, updated_at, name) VALUES (?, ?, ?, \'running\', ?, ?, ?)')
      .run(j.jobId, JSON.stringify(j.spec), JSON.stringify(j.peers), j.createdAt, j.createdAt, j.name ?? null)
  }

  resumed (jobId: string, round: number): void {
    this.stmt('UPDATE training_jobs SET resumed_from = ?, updated_at = ? WHERE job_id = ?').run(round, Date.now(), jobId)
  }

  finish (jobId: string, r: { accuracy: number, members: string[], receipts: number, model: Uint8Array }): void {
    this.stmt('UPDATE training_jobs SET status = \'done\', accuracy = ?, members = ?, receipts = ?, model = ?, updated_at = ? WHERE job_id = ?')
      .run(Number.isFinite(r.accuracy) ? r.accuracy : null, JSON.stringify(r.members), r.receipts, r.model, Date.now(), jobId)
  }

  fail (jobId: string, error: { code: string, message: string }): void {
    this.stmt('UPDATE training_jobs SET status = \'failed\', error = ?, updated_at = ? WHERE job_id = ?').run(JSON.stringify(error), Date.now(), jobId)
  }

  /** The submitter cancelled the job: it ends here (a restart does not resume it); `error` says by whom and when. */
  cancel (jobId: string, error: { code: string, message: string }): void {
    this.stmt('UPDATE training_jobs SET status = \'cancelled\', error = ?, updated_at = ? WHERE job_id = ? AND status = \'running\'').run(JSON.stringify(error), Date.now(), jobId)
  }

  progress (jobId: string, p: TrainingProgress): void {
    this.stmt('INSERT OR REPLACE INTO training_rounds (job_id, round, progress) VALUES (?, ?, ?)').run(jobId, p.round, JSON.stringify({ ...p, accuracy: Number.isFinite(p.accuracy) ? p.accuracy : null }))
  }

  history (jobId: string): TrainingProgress[] {
    return (this.stmt('SELECT progress FROM training_rounds WHERE job_id = ? ORDER BY round').all(jobId) as Array<{ progress: string }>).map(r => {
      const p = JSON.parse(r.progress) as TrainingProgress & { accuracy: number | null }
      return { ...p, accuracy: p.accuracy ?? NaN }
    })
  }

  /** The last checkpoint replaces the one before (one per job: a resume needs only the newest). */
  saveCheckpoint (jobId: string, c: TrainingCheckpoint): void {
    this.stmt(`INSERT INTO training_checkpoints (job_id, round, digest, params, optimizer, optimizer_round, members, ranks, shards, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(job_id) DO UPDATE SET round = excluded.round, digest = excluded.digest, params = excluded.params, optimizer = excluded.optimizer,
      optimizer_round = excluded.optimizer_round, members = excluded.members, ranks = excluded.ranks, shards = excluded.shards, at = excluded.at WHERE excluded.round > training_checkpoints.round`)
      .run(jobId, c.round, c.digest, floatsToBytes(c.params), floatsToBytes(c.optimizer), c.optimizerRound, JSON.stringify(c.members), JSON.stringify(c.ranks), c.shards, Date.now())
  }

  checkpoint (jobId: string): TrainingCheckpoint | undefined {
    const r = this.stmt('SELECT * FROM training_checkpoints WHERE job_id = ?').get(jobId) as Record<string, unknown> | undefined
    if (r === undefined) return undefined
    return {
      jobId,
      round: Number(r.round),
      digest: String(r.digest),
      params: bytesToFloats(u8(r.params)),
      optimizer: bytesToFloats(u8(r.optimizer)),
      optimizerRound: Number(r.optimizer_round),
      members: JSON.parse(String(r.members)) as string[],
      ranks: JSON.parse(String(r.ranks)) as Record<string, number>,
      shards: Number(r.shards)
    }
  }

  get (jobId: string): StoredTrainingJob | undefined {
    const r = this.stmt('SELECT * FROM training_jobs WHERE job_id = ?').get(jobId) as Record<string, unknown> | undefined
    return r === undefined ? undefined : rowToJob(r)
  }

  list (): StoredTrainingJob[] {
    return (this.stmt('SELECT * FROM training_jobs ORDER BY created_at').all() as Array<Record<string, unknown>>).map(rowToJob)
  }
}

function rowToJob (r: Record<string, unknown>): StoredTrainingJob {
  return {
    jobId: String(r.job_id),
    ...(r.name != null ? { name: String(r.name) } : {}),
    spec: JSON.parse(String(r.spec)),
    peers: JSON.parse(String(r.peers)) as string[],
    status: r.status as TrainingJobStatus,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    ...(r.error != null ? { error: JSON.parse(String(r.error)) } : {}),
    ...(r.model != null ? { result: { accuracy: r.accuracy == null ? NaN : Number(r.accuracy), members: JSON.parse(String(r.members ?? '[]')) as string[], receipts: Number(r.receipts ?? 0), model: u8(r.model) } } : {}),
    resumedFrom: Number(r.resumed_from)
  }
}
