// The submitter side of a node: the durable job store, the job service over the libp2p task
// transport, and the control API routes behind `dbc job ...`. Jobs that were running when
// the node stopped resume when it starts again.
import { JobStore, JobService, type JobSummary } from '../jobs/index.js'
import { Libp2pJobTransport, type NetworkEstimate } from '../net/tasks.js'
import { validateManifest, formatManifestIssues } from '../core/scheduler/index.js'
import type { Progress } from '../core/scheduler/index.js'
import { DbcError, ManifestError } from '../errors.js'
import { jsonable } from '../chain/subsystem.js'
import type { DaemonContext, Subsystem } from './daemon.js'
import type { Bridge, SettleResult } from '../chain/index.js'
import { dbc } from '../wire/gen/wire.js'
import type { PeerId } from '@libp2p/interface'

export interface JobsSubsystemInit {
  /** Predicted network figures per provider (the overlay's Vivaldi/geo model when present). */
  network?: (peer: string) => NetworkEstimate
  /** Candidate providers for a lease request (the overlay's capability index). */
  candidates?: (req: dbc.task.v1.ILeaseRequest) => Promise<PeerId[]>
  /** The chain bridge, when the node runs one: finished jobs' receipts settle through it. */
  bridge?: () => Bridge | undefined
}

export class JobsSubsystem implements Subsystem {
  readonly name = 'jobs'
  service: JobService | undefined
  private transport: Libp2pJobTransport | undefined
  private ctx: DaemonContext | undefined
  private jobStore: JobStore | undefined
  private readonly progress = new Map<string, Progress>()
  private readonly waiters = new Map<string, Set<() => void>>()
  private readonly done = new Map<string, Promise<JobSummary>>()

  constructor (private readonly init: JobsSubsystemInit = {}) {}

  async start (ctx: DaemonContext): Promise<void> {
    const transport = new Libp2pJobTransport({ host: ctx.host, network: this.init.network, candidates: this.init.candidates })
    this.transport = transport
    const identity = { peerId: ctx.identity.peerId.toMultihash().bytes, secretKey: ctx.identity.secretKey }
    this.jobStore = new JobStore(ctx.store)
    const service = new JobService({ store: this.jobStore, transport, identity })
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
    void done.then(async summary => {
      if (summary.status === 'finished' || summary.status === 'cancelled') await this.submitReceipts(jobId).catch(err => { this.ctx?.log.warn({ jobId, err: (err as Error).message }, 'receipts not handed to the bridge yet; `dbc job settle` retries') })
    }, () => {}).finally(() => { for (const w of this.waiters.get(jobId) ?? []) w() })
  }

  /** Billed copies' signed receipts of a job, as the providers signed them. */
  receipts (jobId: string): dbc.receipt.v1.ISignedReceipt[] {
    const store = this.jobStore
    if (store === undefined) return []
    return store.copies(jobId).filter(c => c.billed && c.receipt !== undefined).map(c => dbc.receipt.v1.SignedReceipt.decode(c.receipt as Uint8Array))
  }

  /**
   * Hands a finished job's receipts to the bridge (idempotent: the outbox keeps one entry
   * per receipt id) after making sure the job's escrow covers them.
   */
  async submitReceipts (jobId: string): Promise<{ accepted: number, duplicates: number, rejected: number, total: bigint } | undefined> {
    const bridge = this.init.bridge?.()
    if (bridge === undefined) return undefined
    const receipts = this.receipts(jobId)
    let total = 0n
    for (const r of receipts) total += BigInt(dbc.receipt.v1.UsageReceipt.decode(r.receipt ?? new Uint8Array()).amount || '0')
    const chainJob = `0x${jobId}`
    const onChain = await bridge.job(chainJob).catch(() => undefined)
    const escrow = onChain?.escrow ?? 0n
    const hasOwner = onChain !== undefined && !/^0x0{40}$/i.test(onChain.owner)
    // the first deposit makes this node the job's owner on chain, which settling needs even
    // when the receipts bill nothing (tasks under half a millisecond round to 0 units)
    if (total > escrow || !hasOwner) await bridge.deposit(chainJob, total > escrow ? total - escrow : 1n)
    const r = bridge.submitReceipts(chainJob, receipts as any)
    this.ctx?.log.info({ jobId, accepted: r.accepted, duplicates: r.duplicates, rejected: r.rejected.length, total: total.toString() }, 'receipts handed to the bridge')
    return { accepted: r.accepted, duplicates: r.duplicates, rejected: r.rejected.length, total }
  }

  async settle (jobId: string, signal?: AbortSignal): Promise<{ receipts: number, total: string, batches: SettleResult[] }> {
    const bridge = this.init.bridge?.()
    if (bridge === undefined) throw new DbcError('NO_CHAIN', 'this node runs no chain bridge', { hint: 'configure the chain section (kind: embedded or rpc)' })
    const st = this.service?.status(jobId)
    if (st !== undefined && st.status === 'running') throw new DbcError('JOB_RUNNING', `job ${jobId} is still running`, { hint: 'settle it once it has finished (or cancel it first)' })
    const sub = await this.submitReceipts(jobId)
    const batches = await bridge.settleNow(`0x${jobId}`, { signal })
    return { receipts: this.receipts(jobId).length, total: (sub?.total ?? 0n).toString(), batches }
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
    api.route('POST', '/v1/jobs/:id/settle', async (req) => {
      svc().status(req.params.id) // 404 for unknown jobs
      const r = await this.settle(req.params.id, req.signal)
      return jsonable(r)
    })
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
