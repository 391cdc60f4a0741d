// JobService: the node's jobs. Submits (signs the job with the owner key and stores it),
// runs and resumes them, and answers status, results, cancel, explain and list. Results
// and cancel need a request signed by the owner, or by a session key the owner delegated.
import { readFile, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import {
  ReputationBook, signJob, signJobAction, authorizeJobAction, taskCount,
  type Manifest, type JobAction, type JobActionRequest, type SessionToken, type Progress, type PlacementSummary
} from '../core/scheduler/index.js'
import { JobRunner, type JobSummary, type TaskExplanation, type JobRunnerInit, type RunnerPayment } from './runner.js'
import { JobStore, type StoredJob } from './store.js'
import { canonicalManifestBytes, checkJobCode } from './manifest-file.js'
import type { JobTransport } from './transport.js'
import { JobAccessDeniedError, JobNotFoundError } from './errors.js'
import { DbcError, ManifestError } from '../errors.js'
import { encodeContainerCode } from '../core/compute/container-code.js'
import { TaskLogStore, recordingTaskLogs, jobLogView, type JobLogView } from './task-logs.js'

export interface Identity { peerId: Uint8Array, secretKey: Uint8Array }

export interface JobServiceInit {
  store: JobStore
  transport: JobTransport
  /** This node's key: it holds the leases and signs jobs it submits for itself. */
  identity: Identity
  /** Runner options passed to every job (timeouts, straggler factor...). */
  runner?: Partial<Pick<JobRunnerInit, 'leaseTimeoutMs' | 'stragglerFactor' | 'giveUpAfterMs' | 'maxLeases' | 'seed'>>
  /** Loads the code a manifest names (default: wasm from disk, command/image as text). */
  loadCode?: (m: Manifest, baseDir: string) => Promise<Uint8Array>
  /**
   * How a job pays (escrow, payer): undefined when the node runs no chain. `allowTopUp`: the
   * submitter allowed the escrow to grow past what was first locked (undefined on resume).
   */
  payment?: (jobId: string, manifest: Manifest, opts: { allowTopUp?: boolean, submittedAt?: number }) => Promise<RunnerPayment | undefined>
}

export interface JobStatusView {
  jobId: string
  name: string
  status: StoredJob['status']
  tasks: number
  done: number
  failed: number
  running: number
  /** Copies sent ahead of a free slot, waiting at their provider (not in `running`); absent when none. */
  ahead?: number
  queued: number
  billedCopies: number
  copiesByOutcome: Record<string, number>
  createdAt: number
  updatedAt: number
  live: boolean
  /** Why queued tasks do not run now, while the job waits for busy providers (e.g. "waiting: 4 providers busy; ...") or while a search that found nobody able to take them keeps looking ("searching: not placed: ...; the tasks fail in 7 s ..."). */
  waiting?: string
  /** Refusals providers sent (offers and leases), by code, e.g. { BUSY: 12 }. */
  refusals?: Record<string, number>
  summary?: JobSummary
}

export interface JobExplanation {
  jobId: string
  status: StoredJob['status']
  placement?: PlacementSummary
  failures: Array<{ index: number, reason: string }>
  task?: TaskExplanation
}

/** A job's waiting reason (live only) and refusals by code (live, or from its summary once ended). */
function jobWaitView (runner: JobRunner | undefined, summary: string | undefined): Pick<JobStatusView, 'waiting' | 'refusals'> {
  const refusals = runner?.refusals() ?? (summary === undefined ? undefined : (JSON.parse(summary) as JobSummary).refusals)
  const waiting = runner?.waiting()
  return { ...(waiting !== undefined ? { waiting } : {}), ...(refusals !== undefined && Object.keys(refusals).length > 0 ? { refusals } : {}) }
}

export async function defaultLoadCode (m: Manifest, baseDir: string): Promise<Uint8Array> {
  if (m.code.wasm !== undefined) {
    const path = resolve(baseDir, m.code.wasm)
    try {
      return new Uint8Array(await readFile(path))
    } catch (err) {
      // name the manifest field, not just a raw ENOENT (src/jobs/preflight.ts does the same for the CLI)
      const errno = (err as NodeJS.ErrnoException).code
      throw new ManifestError('MANIFEST_UNREADABLE', `code.wasm (${m.code.wasm}): ${errno === 'ENOENT' ? `no such file ${path}` : `${path} can not be read (${errno ?? (err as Error).message})`}`, { hint: `paths in a manifest are relative to its folder (${baseDir})`, cause: err })
    }
  }
  // a container task's code names the provider's image and whether it asks for a network
  if (m.code.image !== undefined) return encodeContainerCode({ image: m.code.image, network: m.resources.network })
  return new TextEncoder().encode(JSON.stringify(m.code.command ?? []))
}

export class JobService {
  private readonly live = new Map<string, { runner: JobRunner, done: Promise<JobSummary> }>()
  readonly reputation: ReputationBook
  /** Each copy's stderr as its provider sent it (`dbc job logs`). */
  readonly taskLogs: TaskLogStore

  constructor (private readonly init: JobServiceInit) {
    this.reputation = ReputationBook.fromJSON(init.store.loadReputation())
    this.taskLogs = new TaskLogStore(init.store.store)
  }

  /** Stores the signed job and starts it; `done` settles when it ends. */
  async submit (manifest: Manifest, opts: { baseDir?: string, code?: Uint8Array, owner?: Identity, onProgress?: (p: Progress) => void, signal?: AbortSignal, allowTopUp?: boolean } = {}): Promise<{ jobId: string, done: Promise<JobSummary> }> {
    const owner = opts.owner ?? this.init.identity
    const baseDir = opts.baseDir ?? '.'
    const code = opts.code ?? await (this.init.loadCode ?? defaultLoadCode)(manifest, baseDir)
    // a module providers would refuse never ships (they charge its sender); bytes handed in by an
    // in-process caller (tests, benches with their own providers) are that caller's business
    if (opts.code === undefined) checkJobCode(manifest, code)
    const job = signJob(owner.secretKey, owner.peerId, canonicalManifestBytes(manifest), Date.now(), new Uint8Array(randomBytes(16)))
    const fileSize = manifest.inputs.files?.path !== undefined ? (await stat(resolve(baseDir, manifest.inputs.files.path))).size : undefined
    this.init.store.createJob({
      jobId: job.jobId, owner: job.owner, manifest: JSON.stringify({ manifest, baseDir, codeInline: opts.code !== undefined ? Buffer.from(code).toString('base64') : undefined }),
      manifestHash: job.manifestHash, createdAt: job.createdAt, nonce: job.nonce, signature: job.signature,
      status: 'running', taskCount: taskCount(manifest, fileSize), updatedAt: job.createdAt
    })
    return { jobId: job.jobId, done: this.start(job.jobId, manifest, baseDir, code, { ...opts, submittedAt: job.createdAt }) }
  }

  /** Restarts every job the store says was running (after the node restarted). */
  async resumeAll (opts: { onProgress?: (jobId: string, p: Progress) => void } = {}): Promise<Array<{ jobId: string, done: Promise<JobSummary> }>> {
    const out: Array<{ jobId: string, done: Promise<JobSummary> }> = []
    for (const j of this.init.store.listJobs()) {
      if (j.status !== 'running' || this.live.has(j.jobId)) continue
      const saved = JSON.parse(j.manifest) as { manifest: Manifest, baseDir: string, codeInline?: string }
      const code = saved.codeInline !== undefined ? new Uint8Array(Buffer.from(saved.codeInline, 'base64')) : await (this.init.loadCode ?? defaultLoadCode)(saved.manifest, saved.baseDir)
      out.push({ jobId: j.jobId, done: this.start(j.jobId, saved.manifest, saved.baseDir, code, { submittedAt: j.createdAt, onProgress: p => opts.onProgress?.(j.jobId, p) }) })
    }
    return out
  }

  private start (jobId: string, manifest: Manifest, baseDir: string, code: Uint8Array, opts: { onProgress?: (p: Progress) => void, signal?: AbortSignal, submittedAt?: number, allowTopUp?: boolean }): Promise<JobSummary> {
    const runner = new JobRunner({ ...this.init.runner, submittedAt: opts.submittedAt, jobId, manifest, baseDir, code, holder: this.init.identity, transport: recordingTaskLogs(this.init.transport, this.taskLogs, jobId), store: this.init.store, reputation: this.reputation, onProgress: opts.onProgress })
    const done = (async () => {
      // the payment terms (and the payer) exist before the first offer is asked for
      if (this.init.payment !== undefined) {
        try {
          runner.setPayment(await this.init.payment(jobId, manifest, { allowTopUp: opts.allowTopUp, submittedAt: opts.submittedAt }))
        } catch (err) {
          const e = err as Error & { code?: string }
          const summary = unpaidSummary(jobId, `no payment terms: ${e.code !== undefined ? `${e.code}: ` : ''}${e.message}`)
          this.init.store.setJobStatus(jobId, 'failed', Date.now(), JSON.stringify(summary))
          return summary
        }
      }
      const summary = await runner.run({ signal: opts.signal })
      this.init.store.setJobStatus(jobId, summary.status, Date.now(), JSON.stringify(summary))
      return summary
    })().finally(() => { this.live.delete(jobId) })
    this.live.set(jobId, { runner, done })
    return done
  }

  private job (jobId: string): StoredJob {
    const j = this.init.store.getJob(jobId)
    if (j === undefined) throw new JobNotFoundError(jobId)
    return j
  }

  /** A request signed by this node's key (what the local CLI uses through the API). */
  localRequest (jobId: string, action: JobAction, session?: SessionToken, key: Identity = this.init.identity): JobActionRequest {
    return signJobAction(key.secretKey, key.peerId, jobId, action, Date.now(), session)
  }

  private authorize (jobId: string, action: JobAction, req: JobActionRequest): StoredJob {
    const j = this.job(jobId)
    const a = authorizeJobAction({ jobId, owner: j.owner }, req, Date.now())
    if (!a.ok || req.action !== action) throw new JobAccessDeniedError(jobId, action, a.ok ? `the request was signed for "${req.action}"` : a.reason)
    return j
  }

  status (jobId: string): JobStatusView {
    const j = this.job(jobId)
    const acc = this.init.store.accounting(jobId)
    const live = this.live.get(jobId)
    const p = live?.runner.progress()
    const saved = JSON.parse(j.manifest) as { manifest: Manifest }
    return {
      jobId, name: saved.manifest.name, status: j.status, tasks: j.taskCount, done: acc.done, failed: acc.failed,
      running: p?.running ?? 0, ...(p?.ahead !== undefined && p.ahead > 0 ? { ahead: p.ahead } : {}), queued: p?.queued ?? (j.status === 'running' ? j.taskCount - acc.done - acc.failed : 0),
      billedCopies: acc.billed, copiesByOutcome: acc.byOutcome, createdAt: j.createdAt, updatedAt: j.updatedAt, live: live !== undefined,
      ...jobWaitView(live?.runner, j.summary),
      summary: j.summary === undefined ? undefined : JSON.parse(j.summary) as JobSummary
    }
  }

  list (): JobStatusView[] {
    return this.init.store.listJobs().map(j => this.status(j.jobId))
  }

  /** Accepted outputs, in task order. Owner or session only. */
  results (jobId: string, req: JobActionRequest): Array<{ index: number, hash: string, output: Uint8Array }> {
    this.authorize(jobId, 'results', req)
    return this.init.store.results(jobId)
  }

  /** Owner or session only. */
  async cancel (jobId: string, req: JobActionRequest): Promise<void> {
    this.authorize(jobId, 'cancel', req)
    const live = this.live.get(jobId)
    if (live !== undefined) { live.runner.cancel(); await live.done.catch(() => undefined); return }
    const j = this.job(jobId)
    if (j.status === 'running') this.init.store.setJobStatus(jobId, 'cancelled', Date.now())
  }

  /** Overall (placement, failures), or for one task: where each copy ran and why. */
  explain (jobId: string, index?: number): JobExplanation {
    const j = this.job(jobId)
    const live = this.live.get(jobId)
    const summary = j.summary === undefined ? undefined : JSON.parse(j.summary) as JobSummary
    const out: JobExplanation = { jobId, status: j.status, placement: live?.runner.placementSummary() ?? summary?.placement, failures: this.init.store.failures(jobId) }
    if (index !== undefined) {
      // a task the job never had must not be answered with a made-up state
      if (!Number.isInteger(index) || index < 0 || index >= j.taskCount) {
        throw new DbcError('TASK_OUT_OF_RANGE', `job ${jobId} has ${j.taskCount} task${j.taskCount === 1 ? '' : 's'} (indices 0 to ${j.taskCount - 1}): there is no task ${String(index)}`, { hint: `pass --task N with N from 0 to ${j.taskCount - 1}` })
      }
      if (live !== undefined) out.task = live.runner.explain(index)
      else {
        const r = this.init.store.results(jobId).find(x => x.index === index)
        out.task = {
          index,
          status: r !== undefined ? 'done' : out.failures.some(f => f.index === index) ? 'failed' : j.status === 'running' ? 'queued' : j.status,
          acceptedHash: r?.hash,
          copies: this.init.store.copies(jobId, index).map(c => ({ attempt: c.attempt, provider: c.provider, reason: c.reason, outcome: c.outcome, hash: c.hash, error: c.error, ms: c.endedAt === undefined ? undefined : c.endedAt - c.startedAt }))
        }
      }
    }
    return out
  }

  /** The job's events and each copy's captured stderr (`dbc job logs`). */
  logs (jobId: string): JobLogView {
    this.job(jobId) // 404 for unknown jobs
    return jobLogView(this.init.store, this.taskLogs, jobId) as JobLogView
  }

  /** Waits for every running job (for shutdown and tests). */
  async idle (): Promise<void> {
    await Promise.allSettled([...this.live.values()].map(l => l.done))
  }
}


/** A job that never started: it could not be given payment terms (the chain is down, no funds). */
function unpaidSummary (jobId: string, reason: string): JobSummary {
  return {
    jobId, status: 'failed', tasks: 0, done: 0, failed: 0, copies: 0, retries: 0, speculative: 0, wrongCopies: 0, checkedTasks: 0, caughtProviders: [], billedCopies: 0, providersUsed: 0,
    leasesLost: 0, elapsedMs: 0, predictedCost: 0, predictedSpent: 0, meteredSpent: 0, failures: [{ index: -1, reason }]
  }
}
