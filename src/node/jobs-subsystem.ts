// The submitter side of a node: the durable job store, the job service over the libp2p task
// transport, and the control API routes behind `dbc job ...`. Jobs that were running when
// the node stopped resume when it starts again.
import { JobStore, JobService, type JobSummary } from '../jobs/index.js'
import { Libp2pJobTransport, type NetworkEstimate } from '../net/tasks.js'
import { validateManifest, formatManifestIssues } from '../core/scheduler/index.js'
import type { Progress } from '../core/scheduler/index.js'
import { DbcError, ManifestError } from '../errors.js'
import type { DaemonContext, Subsystem } from './daemon.js'

export interface JobsSubsystemInit {
  /** Predicted network figures per provider (the overlay's Vivaldi/geo model when present). */
  network?: (peer: string) => NetworkEstimate
}

export class JobsSubsystem implements Subsystem {
  readonly name = 'jobs'
  service: JobService | undefined
  private transport: Libp2pJobTransport | undefined
  private ctx: DaemonContext | undefined
  private readonly progress = new Map<string, Progress>()
  private readonly waiters = new Map<string, Set<() => void>>()
  private readonly done = new Map<string, Promise<JobSummary>>()

  constructor (private readonly init: JobsSubsystemInit = {}) {}

  async start (ctx: DaemonContext): Promise<void> {
    const transport = new Libp2pJobTransport({ host: ctx.host, network: this.init.network })
    this.transport = transport
    const identity = { peerId: ctx.identity.peerId.toMultihash().bytes, secretKey: ctx.identity.secretKey }
    const service = new JobService({ store: new JobStore(ctx.store), transport, identity })
    this.service = service
    this.routes(ctx)
    this.ctx = ctx
  }

  async afterNetworkStart (): Promise<void> {
    const service = this.service
    if (service === undefined || this.ctx === undefined) return
    const resumed = await service.resumeAll({ onProgress: (id, p) => { this.onProgress(id, p) } })
    for (const r of resumed) this.track(r.jobId, r.done)
    if (resumed.length > 0) this.ctx.log.info({ jobs: resumed.map(r => r.jobId) }, 'resumed running jobs')
  }

  private onProgress (jobId: string, p: Progress): void {
    this.progress.set(jobId, p)
    for (const w of this.waiters.get(jobId) ?? []) w()
  }

  private track (jobId: string, done: Promise<JobSummary>): void {
    this.done.set(jobId, done)
    void done.catch(() => {}).finally(() => { for (const w of this.waiters.get(jobId) ?? []) w() })
  }

  private routes (ctx: DaemonContext): void {
    const api = ctx.api
    const svc = (): JobService => {
      if (this.service === undefined) throw new DbcError('NOT_READY', 'the job service is not ready')
      return this.service
    }
    api.route('POST', '/v1/jobs', async (req) => {
      const body = (req.body ?? {}) as { manifest?: unknown, baseDir?: string }
      const parsed = validateManifest(body.manifest)
      if (!parsed.ok) throw new ManifestError('MANIFEST_INVALID', `not a valid job manifest:\n${formatManifestIssues(parsed.issues)}`, { hint: 'fix the fields named above in the manifest' })
      const { jobId, done } = await svc().submit(parsed.manifest, { baseDir: body.baseDir, onProgress: p => { this.onProgress(jobId, p) } })
      this.track(jobId, done)
      return { jobId }
    })
    api.route('GET', '/v1/jobs', () => ({ jobs: svc().list() }))
    api.route('GET', '/v1/jobs/:id', (req) => svc().status(req.params.id))
    api.route('GET', '/v1/jobs/:id/explain', (req) => {
      const t = req.query.get('task')
      return svc().explain(req.params.id, t === null ? undefined : Number(t))
    })
    api.route('GET', '/v1/jobs/:id/results', (req) => {
      const s = svc()
      const results = s.results(req.params.id, s.localRequest(req.params.id, 'results'))
      return { jobId: req.params.id, results: results.map(r => ({ index: r.index, hash: r.hash, output: Buffer.from(r.output).toString('base64') })) }
    })
    api.route('POST', '/v1/jobs/:id/cancel', async (req) => {
      const s = svc()
      await s.cancel(req.params.id, s.localRequest(req.params.id, 'cancel'))
      return s.status(req.params.id)
    })
    // progress events until the job ends (newline-delimited JSON)
    api.streamRoute('GET', '/v1/jobs/:id/events', async (req, send) => {
      const id = req.params.id
      const s = svc()
      s.status(id) // 404 for unknown jobs
      let wake: () => void = () => {}
      const set = this.waiters.get(id) ?? new Set()
      this.waiters.set(id, set)
      const waiter = (): void => { wake() }
      set.add(waiter)
      try {
        for (;;) {
          const st = s.status(id)
          send({ type: 'progress', status: st.status, progress: this.progress.get(id) ?? null, tasks: st.tasks, done: st.done, failed: st.failed })
          if (st.status !== 'running' || req.signal.aborted) {
            send({ type: 'end', status: st })
            return
          }
          await new Promise<void>(resolve => {
            wake = resolve
            setTimeout(resolve, 500)
          })
        }
      } finally {
        set.delete(waiter)
      }
    })
  }

  async stop (): Promise<void> {
    this.transport?.close()
  }

  status (): Record<string, unknown> {
    const jobs = this.service?.list() ?? []
    return { jobs: jobs.length, running: jobs.filter(j => j.status === 'running').length }
  }
}
