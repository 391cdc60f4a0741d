// The submitter side of a node: the durable job store, the job service over the libp2p task
// transport, and the control API routes behind `dbc job ...`. Jobs that were running when
// the node stopped resume when it starts again.
import { JobStore, JobService, type JobSummary } from '../jobs/index.js'
import { followJobEvents } from '../jobs/task-logs.js'
import { Libp2pJobTransport, type NetworkEstimate } from '../net/tasks.js'
import { withRoutes } from '../net/routes/explain.js'
import { RouteBook, type RoutingMode } from '../net/routes/index.js'
import type { TaskEnvelopes } from '../net/overlay/task-envelopes.js'
import { toHex } from '../core/identity/index.js'
import { validateManifest, formatManifestIssues } from '../core/scheduler/index.js'
import type { Progress } from '../core/scheduler/index.js'
import { DbcError, ManifestError } from '../errors.js'
import { jsonable } from '../chain/subsystem.js'
import type { DaemonContext, Subsystem } from './daemon.js'
import type { Bridge } from '../chain/index.js'
import type { dbc } from '../wire/gen/wire.js'
import type { PeerId } from '@libp2p/interface'
import { PaymentStore } from '../jobs/payment-store.js'
import { JobPayments, type SettleView } from './job-payments.js'
import { TrainingPayments } from './training-payments.js'
import { voucherToWire } from '../core/settlement/voucher-wire.js'
import { decimalToUnits } from '../core/compute/pricing.js'
import { formatCoins } from '../core/settlement/stake.js'

export interface JobsSubsystemInit {
  /** Predicted network figures per provider (the overlay's Vivaldi/geo model when present). */
  network?: (peer: string) => NetworkEstimate
  /** Candidate providers for a lease request (the overlay's capability index). */
  candidates?: (req: dbc.task.v1.ILeaseRequest) => Promise<PeerId[]>
  /** The chain bridge, when the node runs one: jobs lock escrow and pay providers through it. */
  bridge?: () => Bridge | undefined
  /** Dispute window of the escrows this node locks (seconds; default: the bridge's, an hour). */
  disputeWindowS?: number
  /** Jobs lease only staked providers (chain.requireStake; default true). */
  requireStake?: boolean
  /** The overlay's task application: the route of `routing: overlay` and the fallback (src/net/routes). */
  taskEnvelopes?: () => TaskEnvelopes | undefined
}

/** Least time between two progress lines of a job's event stream (the job's end is sent at once). */
const PROGRESS_EVERY_MS = 250

export class JobsSubsystem implements Subsystem {
  readonly name = 'jobs'
  service: JobService | undefined
  private transport: Libp2pJobTransport | undefined
  private ctx: DaemonContext | undefined
  private jobStore: JobStore | undefined
  private readonly progress = new Map<string, Progress>()
  private readonly waiters = new Map<string, Set<() => void>>()
  private readonly done = new Map<string, Promise<JobSummary>>()
  private readonly routing = new Map<string, RoutingMode | 'default'>()
  /** Escrow, vouchers, close and refund of this node's jobs (grid and training). */
  payments: JobPayments | undefined
  /** Training rounds paid through the same payer and vouchers (the training subsystem's hook). */
  trainingPayments: TrainingPayments | undefined

  constructor (private readonly init: JobsSubsystemInit = {}) {}

  async start (ctx: DaemonContext): Promise<void> {
    const routes = new RouteBook(ctx.host, {
      overlay: () => this.init.taskEnvelopes?.(),
      privatePeers: ctx.privatePeers,
      // the config's overlay is node-wide (providers turn private for every job); a job's own routing is per job
      forceOverlay: () => ctx.config.routing?.mode === 'overlay',
      jobRouting: msg => this.jobRouting(msg, ctx.config.routing?.mode),
      fallback: () => ctx.config.routing?.mode !== 'direct',
      keepConnected: peer => ctx.config.bootstrap.some(a => a.endsWith(`/p2p/${peer}`))
    })
    const transport = new Libp2pJobTransport({ host: ctx.host, network: this.init.network, candidates: this.init.candidates, routes })
    this.transport = transport
    const identity = { peerId: ctx.identity.peerId.toMultihash().bytes, secretKey: ctx.identity.secretKey }
    this.jobStore = new JobStore(ctx.store)
    const payments = new JobPayments({ store: new PaymentStore(ctx.store), bridge: () => this.init.bridge?.(), disputeWindowS: this.init.disputeWindowS, requireStake: this.init.requireStake, log: ctx.log })
    this.payments = payments
    this.trainingPayments = new TrainingPayments({ payments: () => this.payments, sendVoucher: async (peer, v) => { await transport.sendVoucher(peer, v, { signal: AbortSignal.timeout(10_000) }) }, log: ctx.log })
    const service = new JobService({
      store: this.jobStore,
      transport,
      identity,
      payment: async (jobId, manifest, opts) => await payments.forJob(jobId, manifest, opts)
    })
    this.service = service
    this.routes(ctx)
    this.ctx = ctx
  }

  /**
   * The routing of the job a task message names: its manifest's `routing` (cached: it never
   * changes), else the node's default; undefined when the message names no job of this node.
   */
  private jobRouting (msg: dbc.task.v1.ITaskMessage, nodeMode: RoutingMode | undefined): RoutingMode | undefined {
    const bytes = msg.leaseRequest?.jobId ?? msg.lease?.jobId ?? msg.task?.jobId
    if (bytes == null || bytes.length === 0) return undefined
    const id = toHex(bytes)
    let routing = this.routing.get(id)
    if (routing === undefined) {
      const job = this.jobStore?.getJob(id)
      if (job === undefined) return undefined
      try { routing = (JSON.parse(job.manifest ?? '{}') as { manifest?: { routing?: RoutingMode } }).manifest?.routing } catch {}
      routing ??= 'default'
      if (this.routing.size >= 1024) this.routing.delete(this.routing.keys().next().value as string)
      this.routing.set(id, routing)
    }
    return routing === 'default' ? (nodeMode ?? 'auto') : routing as RoutingMode
  }

  async afterNetworkStart (): Promise<void> {
    const service = this.service
    if (service === undefined || this.ctx === undefined) return
    const resumed = await service.resumeAll({ onProgress: (id, p) => { this.onProgress(id, p) } })
    for (const r of resumed) this.track(r.jobId, r.done)
    if (resumed.length > 0) this.ctx.log.info({ jobs: resumed.map(r => r.jobId) }, 'resumed running jobs')
    // jobs that ended before a restart: close what was not closed, refund what is due. Their
    // providers get the latest vouchers again: a job's final vouchers leave after its end is
    // written (runner-payments.ts final), so a node killed in between signs them only now
    for (const e of this.payments?.store.escrows() ?? []) {
      if (e.kind === 'grid' && e.closedAt === undefined && e.deposited > 0n && service.status(e.jobId).status !== 'running') void this.finishPayments(e.jobId).then(async () => { await this.resendVouchers(e.jobId) })
    }
    this.payments?.scheduleRefunds()
  }

  /** Final vouchers went out with the runner's end; here: `close` on chain (the refund follows the window). */
  async finishPayments (jobId: string): Promise<void> {
    await this.payments?.finish(jobId).catch(err => { this.ctx?.log.warn({ jobId, err: (err as Error).message }, 'job not closed on chain yet; `dbc job settle` retries') })
  }

  private onProgress (jobId: string, p: Progress): void {
    this.progress.set(jobId, p)
    for (const w of this.waiters.get(jobId) ?? []) w()
  }

  /**
   * Until the job ends: its `done` and latest progress are kept for its event streams, then
   * dropped (an ended job's line is its stored counts), and its payer once its payments are done.
   */
  private track (jobId: string, done: Promise<JobSummary>): void {
    this.done.set(jobId, done)
    void done.then(async () => { await this.finishPayments(jobId) }, async () => { await this.payments?.release(jobId) }).finally(() => {
      if (this.done.get(jobId) === done) { this.done.delete(jobId); this.progress.delete(jobId) }
      for (const w of this.waiters.get(jobId) ?? []) w()
    })
  }

  /** A stream of the job's lines ended: its waiter goes, and the job's set once empty. */
  private unwait (jobId: string, set: Set<() => void>, waiter: () => void): void {
    set.delete(waiter)
    if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId)
  }

  /**
   * `dbc job settle`: the submitter's view of a job's payments (escrow, what each provider was
   * signed and redeemed, what was refused and why, refund state). For an ended job it also
   * closes it on chain if that did not happen yet and refunds the rest once the window passed.
   */
  async settle (jobId: string): Promise<SettleView> {
    const payments = this.payments
    if (payments === undefined || !payments.enabled) throw new DbcError('NO_CHAIN', 'this node runs no chain bridge', { hint: 'start the node on a network with a chain (--network local, dbc-testnet, dbc-mainnet)' })
    const view = await payments.view(jobId)
    if (view === undefined) throw new DbcError('NOT_FOUND', `job ${jobId} has no payments on this node`, { hint: 'list jobs with `dbc job list`' })
    // a running training job is closed at its end (TrainingPayments.finish), not by a settle meanwhile
    const running = view.kind === 'grid' ? this.service?.status(jobId).status === 'running' : this.trainingPayments?.running(jobId) === true
    if (!running) {
      await payments.finish(jobId)
      await this.resendVouchers(jobId)
      await payments.refundDue()
    }
    return (await payments.view(jobId))!
  }

  /** Every provider of a job gets its latest signed voucher again (one that was down at the end included). */
  private async resendVouchers (jobId: string): Promise<void> {
    const transport = this.transport
    const payments = this.payments
    if (transport === undefined || payments === undefined) return
    await Promise.all(payments.latestVouchers(jobId).flatMap(({ providers, voucher }) => providers.map(async (peer) => {
      try {
        await transport.sendVoucher(peer, voucherToWire(voucher), { signal: AbortSignal.timeout(10_000) })
      } catch (err) {
        this.ctx?.log.warn({ jobId, provider: peer, err: (err as Error).message }, 'voucher not re-sent (the provider is unreachable); `dbc job settle` tries again')
      }
    })))
  }

  private routes (ctx: DaemonContext): void {
    const api = ctx.api
    const svc = (): JobService => {
      if (this.service === undefined) throw new DbcError('NOT_READY', 'the job service is not ready')
      return this.service
    }
    api.route('POST', '/v1/jobs', async (req) => {
      const body = (req.body ?? {}) as { manifest?: unknown, baseDir?: string, allowTopUp?: boolean }
      const parsed = validateManifest(body.manifest)
      if (!parsed.ok) throw new ManifestError('MANIFEST_INVALID', `not a valid job manifest:\n${formatManifestIssues(parsed.issues)}`, { hint: 'fix the fields named above in the manifest' })
      const { jobId, done } = await svc().submit(parsed.manifest, { baseDir: body.baseDir, allowTopUp: body.allowTopUp === true, onProgress: p => { this.onProgress(jobId, p) } })
      this.track(jobId, done)
      return { jobId }
    })
    api.route('GET', '/v1/jobs', () => ({ jobs: svc().list() }))
    api.route('POST', '/v1/jobs/:id/settle', async (req) => jsonable(await this.settle(req.params.id)))
    api.route('GET', '/v1/jobs/:id/payments', async (req) => {
      const v = await this.payments?.view(req.params.id)
      if (v === undefined) throw new DbcError('NOT_FOUND', `job ${req.params.id} has no payments on this node`)
      return jsonable(v)
    })
    // grows a job's escrow; past its stated budget (or with none) only when the request confirms it
    api.route('POST', '/v1/jobs/:id/top-up', async (req) => {
      const body = (req.body ?? {}) as { amount?: string | number, allowTopUp?: boolean }
      return jsonable(await this.topUp(req.params.id, body.amount, body.allowTopUp === true))
    })
    api.route('GET', '/v1/jobs/:id', (req) => svc().status(req.params.id))
    api.route('GET', '/v1/jobs/:id/explain', (req) => {
      const t = req.query.get('task')
      return withRoutes(svc().explain(req.params.id, t === null ? undefined : Number(t)), this.transport?.routes)
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
      // the job's end cuts the wait short once (its status is stored before `done` settles)
      let cut: () => void = () => {}
      void this.done.get(id)?.then(() => {}, () => {}).then(() => { cut() })
      try {
        for (;;) {
          const st = s.status(id)
          const sentAt = performance.now()
          send({ type: 'progress', status: st.status, progress: this.progress.get(id) ?? null, tasks: st.tasks, done: st.done, failed: st.failed, ...(st.waiting !== undefined ? { waiting: st.waiting } : {}) })
          if (st.status !== 'running' || req.signal.aborted) {
            send({ type: 'end', status: st })
            return
          }
          // a line per runner step read the store's copy counts each time (O(copies) per step,
          // 3-5% of a submitter's CPU on 1,000 tiny tasks, quadratic in a job): one per PROGRESS_EVERY_MS
          const timers: NodeJS.Timeout[] = []
          await new Promise<void>(resolve => {
            cut = resolve
            wake = () => {
              wake = () => {}
              timers.push(setTimeout(resolve, Math.max(0, sentAt + PROGRESS_EVERY_MS - performance.now())))
            }
            timers.push(setTimeout(resolve, 500))
          })
          for (const t of timers) clearTimeout(t)
          wake = () => {}
          cut = () => {}
        }
      } finally {
        this.unwait(id, set, waiter)
      }
    })
    // `dbc job logs`: the job's events and each copy's stderr; the stream sends new ones until the job ends
    api.route('GET', '/v1/jobs/:id/logs', (req) => svc().logs(req.params.id))
    api.streamRoute('GET', '/v1/jobs/:id/logs/follow', async (req, send) => {
      const id = req.params.id
      const s = svc()
      s.logs(id) // 404 for unknown jobs
      const set = this.waiters.get(id) ?? new Set()
      this.waiters.set(id, set)
      let wake: () => void = () => {}
      const waiter = (): void => { wake() }
      set.add(waiter)
      try {
        const status = await followJobEvents(this.jobStore as JobStore, s.taskLogs, id, e => { send({ type: 'event', event: e }) }, async () => {
          await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, 500) })
        }, req.signal)
        send({ type: 'end', status })
      } finally {
        this.unwait(id, set, waiter)
      }
    })
  }

  /** `dbc job top-up JOB AMOUNT [--yes]`: adds escrow; beyond the manifest's budget.total only with confirmation. */
  async topUp (jobId: string, amount: string | number | undefined, confirmed: boolean): Promise<{ jobId: string, added: string, deposited: string, unit: 'DBC' }> {
    const payments = this.payments
    if (payments === undefined || !payments.enabled) throw new DbcError('NO_CHAIN', 'this node runs no chain bridge')
    const e = payments.store.escrow(jobId)
    if (e === undefined) throw new DbcError('NOT_FOUND', `job ${jobId} has no escrow on this node`)
    // a closed escrow takes no more deposits (the chain would revert JobAlreadyClosed): say so first
    if (e.closedAt !== undefined) throw new DbcError('JOB_CLOSED', `job ${jobId} is finished and its escrow was closed on chain at ${new Date(e.closedAt).toISOString()}: a closed job takes no more deposits`, { hint: 'submit the work again as a new job (`dbc job settle JOB` shows what this one paid)' })
    let units: bigint
    try { units = decimalToUnits(amount ?? '') } catch { throw new DbcError('BAD_ARGUMENT', `the top-up amount must be a positive number of DBC, got ${String(amount)}`) }
    if (units <= 0n) throw new DbcError('BAD_ARGUMENT', 'the top-up amount must be above 0')
    if (!confirmed && (e.budget === undefined || e.deposited - (e.reserve ?? 0n) + units > e.budget)) {
      throw new DbcError('TOP_UP_NEEDS_CONFIRMATION', `topping up job ${jobId} by ${formatCoins(units)} DBC takes its escrow to ${formatCoins(e.deposited + units)} DBC, ${e.budget === undefined ? 'and its manifest states no budget.total' : `past its budget.total of ${formatCoins(e.budget)} DBC`}`, { hint: 'confirm with `--yes` (allowTopUp: true in the API)' })
    }
    await payments.topUp(jobId, units, confirmed)
    const after = payments.store.escrow(jobId)!
    return { jobId, added: formatCoins(units), deposited: formatCoins(after.deposited), unit: 'DBC' }
  }

  async stop (): Promise<void> {
    this.payments?.stop()
    // an ended job's final vouchers still on their way go out before the transport closes (each send is bounded: 10 s)
    await this.payments?.idle()
    this.transport?.close()
  }

  status (): Record<string, unknown> {
    const jobs = this.service?.list() ?? []
    return { jobs: jobs.length, running: jobs.filter(j => j.status === 'running').length }
  }
}
