// Training in the node daemon: every node serves training invitations (TrainingService), and
// a submitting node runs training jobs behind the control API:
//   POST /v1/training              { spec, peers? }  → { jobId }
//   GET  /v1/training/:id          status, history, accuracy
//   GET  /v1/training/:id/events   newline-delimited progress events until the job ends
//   GET  /v1/training/:id/results  { model (base64 dbc-model-v2), accuracy, members, receipts }
// The job table is in memory: a training job does not survive a restart of its submitter.
import type { PeerId } from '@libp2p/interface'
import { TrainingService } from './service.js'
import { TrainingSession, type InviteRefusal, type RoundMeterRecord, type TrainingProgress, type TrainingResult } from './session.js'
import { TrainerRegistry } from './trainers.js'
import type { TrainerConfig } from '../node/config.js'
import { createReceiptMeter } from './metering.js'
import { ALLREDUCE_PROTOCOL } from './transport.js'
import { parseTrainingSpec, type TrainingSpec } from './spec.js'
import { TrainingError } from './worker.js'
import type { HourlyPrices } from '../core/compute/pricing.js'
import type { DaemonContext, Subsystem } from '../node/daemon.js'

export interface TrainingSubsystemInit {
  /** Prices this node charges for training compute (receipted per round). */
  prices?: HourlyPrices
  gpuCount?: number
  /**
   * Picks the group for a job (the scheduler's placement plugs in here). Default: connected
   * peers that speak /dbc/allreduce/1.0.0, the `groupSize` with the lowest measured RTT.
   */
  selectPeers?: (spec: TrainingSpec, signal?: AbortSignal) => Promise<string[]>
  /** This node's EVM payout address (its chain account): named in its round receipts. */
  payoutAddress?: () => string | undefined
  /** Pays the rounds of jobs this node submits (escrow, vouchers, close: src/node/training-payments.ts). */
  payments?: () => TrainingPaymentHook | undefined
  /** The trainers this node offers (default: the config's `trainers:`). */
  trainers?: Record<string, TrainerConfig>
}

/** The submitter's payment of training rounds, through the same payer and vouchers as grid tasks. */
export interface TrainingPaymentHook {
  start: (jobId: string, spec: TrainingSpec, opts: { allowTopUp?: boolean, groupSize: number }) => Promise<void>
  metered: (jobId: string, rec: RoundMeterRecord) => void
  roundEnded: (jobId: string) => void
  finish: (jobId: string) => Promise<void>
  paid: (jobId: string) => { paid: string, refused: string, unit: 'DBC' } | undefined
}

interface TrainingJob {
  createdAt: number
  session: TrainingSession
  status: 'running' | 'done' | 'failed'
  history: TrainingProgress[]
  result?: TrainingResult
  error?: { code: string, message: string, refusals?: InviteRefusal[] }
  waiters: Set<() => void>
}

export class TrainingSubsystem implements Subsystem {
  readonly name = 'training'
  service: TrainingService | undefined
  private ctx: DaemonContext | undefined
  private readonly jobs = new Map<string, TrainingJob>()
  private readonly aborts = new AbortController()

  constructor (private readonly init: TrainingSubsystemInit = {}) {}

  async start (ctx: DaemonContext): Promise<void> {
    this.ctx = ctx
    const meter = createReceiptMeter({ secretKey: ctx.identity.secretKey, prices: this.init.prices ?? { priceGpuHour: 0, priceCpuHour: 0 }, gpuCount: this.init.gpuCount, payoutAddress: this.init.payoutAddress })
    const trainers = new TrainerRegistry({ trainers: this.init.trainers ?? ctx.config?.trainers ?? {}, dataDir: ctx.config?.dataDir })
    this.service = new TrainingService(ctx.host, { meter, trainers, onBadInput: ctx.reportBadInput, accept: (spec) => (spec.gpu?.count ?? 0) <= (this.init.gpuCount ?? 0) || `needs ${spec.gpu?.count ?? 0} GPU(s), this node has ${this.init.gpuCount ?? 0}` })
    await this.service.start()
    this.routes(ctx)
  }

  async stop (): Promise<void> {
    this.aborts.abort(new TrainingError('NODE_STOPPING', 'the node is stopping'))
    await this.service?.stop()
  }

  status (): Record<string, unknown> {
    const jobs = [...this.jobs.values()]
    return { trainingJobs: jobs.length, trainingRunning: jobs.filter(j => j.status === 'running').length, trainingServing: this.service?.workers.size ?? 0, trainers: this.service?.trainers.names() ?? [] }
  }

  /** Starts a training job; resolves with its id once the group is chosen. */
  async submit (specInput: unknown, peers?: string[], opts: { allowTopUp?: boolean } = {}): Promise<string> {
    const ctx = this.ctx
    if (ctx === undefined || this.service === undefined) throw new TrainingError('NOT_READY', 'the training subsystem is not started')
    const spec = parseTrainingSpec(specInput)
    const group = peers ?? await (this.init.selectPeers ?? this.nearestPeers.bind(this))(spec, this.aborts.signal)
    if (group.length === 0) throw new TrainingError('NO_PEERS', 'no connected peer serves training', { hint: 'start compute peers (`dbc node start`) and connect them to this node' })
    const session = new TrainingSession({ transport: this.service.transport, spec, peers: group, signal: this.aborts.signal })
    // money first: the escrow is locked before any peer is invited
    const pay = this.init.payments?.()
    await pay?.start(session.jobId, spec, { allowTopUp: opts.allowTopUp, groupSize: group.length })
    const job: TrainingJob = { createdAt: Date.now(), session, status: 'running', history: [], waiters: new Set() }
    this.jobs.set(session.jobId, job)
    const wake = (): void => { for (const w of job.waiters) w() }
    session.on('progress', (p) => { job.history.push(p); pay?.roundEnded(session.jobId); wake() })
    if (pay !== undefined) session.on('metered', (rec) => { pay.metered(session.jobId, rec) })
    session.run().then((r) => { job.result = r; job.status = 'done' }, (err: Error) => {
      job.status = 'failed'
      job.error = { code: (err as TrainingError).code ?? 'TRAINING_FAILED', message: err.message, refusals: session.refusals }
      ctx.log.warn({ jobId: session.jobId, err: err.message }, 'training job failed')
    }).finally(() => {
      wake()
      void pay?.finish(session.jobId)
    })
    return session.jobId
  }

  /** Whether a connected peer announced the all-reduce protocol (serves training). */
  async servesTraining (peer: PeerId): Promise<boolean> {
    try {
      return (await this.ctx!.host.peerStore.get(peer)).protocols.includes(ALLREDUCE_PROTOCOL)
    } catch {
      return false
    }
  }

  private async nearestPeers (spec: TrainingSpec, signal?: AbortSignal): Promise<string[]> {
    const host = this.ctx!.host
    const candidates: PeerId[] = []
    for (const id of host.getPeers()) {
      try {
        const p = await host.peerStore.get(id)
        if (p.protocols.includes(ALLREDUCE_PROTOCOL)) candidates.push(id)
      } catch {}
    }
    const rtts = await Promise.all(candidates.map(async id => {
      try { return await host.services.ping.ping(id, { signal: AbortSignal.any([AbortSignal.timeout(2000), ...(signal !== undefined ? [signal] : [])]) }) } catch { return Infinity }
    }))
    return candidates.map((id, i) => ({ id: id.toString(), rtt: rtts[i] })).filter(c => Number.isFinite(c.rtt)).sort((a, b) => a.rtt - b.rtt).slice(0, spec.groupSize).map(c => c.id)
  }

  private job (id: string): TrainingJob {
    const j = this.jobs.get(id)
    if (j === undefined) throw new TrainingError('NOT_FOUND', `no training job ${id} on this node`, { hint: 'list jobs with GET /v1/training' })
    return j
  }

  private view (id: string, j: TrainingJob): Record<string, unknown> {
    const last = j.history[j.history.length - 1]
    return { jobId: id, name: 'training', createdAt: j.createdAt, payment: this.init.payments?.()?.paid(id) ?? null, status: j.status, round: last?.round ?? -1, rounds: j.session.spec.rounds, loss: last?.loss ?? null, accuracy: j.result?.accuracy ?? [...j.history].reverse().find(h => Number.isFinite(h.accuracy))?.accuracy ?? null, members: last?.members ?? [], refusals: j.session.refusals, error: j.error ?? null }
  }

  private routes (ctx: DaemonContext): void {
    const api = ctx.api
    api.route('POST', '/v1/training', async (req) => {
      const body = (req.body ?? {}) as { spec?: unknown, peers?: string[], allowTopUp?: boolean }
      return { jobId: await this.submit(body.spec ?? {}, body.peers, { allowTopUp: body.allowTopUp === true }) }
    })
    api.route('GET', '/v1/training', () => ({ jobs: [...this.jobs.entries()].map(([id, j]) => this.view(id, j)) }))
    api.route('GET', '/v1/training/:id', (req) => ({ ...this.view(req.params.id, this.job(req.params.id)), history: this.job(req.params.id).history }))
    api.route('GET', '/v1/training/:id/results', (req) => {
      const j = this.job(req.params.id)
      if (j.result === undefined) throw new TrainingError('NOT_FINISHED', `training job ${req.params.id} is ${j.status}`, { hint: j.status === 'running' ? 'wait for it to finish' : j.error?.message })
      const r = j.result
      return { jobId: r.jobId, accuracy: r.accuracy, members: r.members, rounds: r.history.length, receipts: r.metering.filter(m => m.receipt !== undefined).length, model: Buffer.from(r.model).toString('base64') }
    })
    api.streamRoute('GET', '/v1/training/:id/events', async (req, send) => {
      const j = this.job(req.params.id)
      let sent = 0
      let wake: () => void = () => {}
      const waiter = (): void => { wake() }
      j.waiters.add(waiter)
      try {
        for (;;) {
          while (sent < j.history.length) { const p = j.history[sent++]; send({ type: 'progress', round: p.round, loss: p.loss, accuracy: Number.isFinite(p.accuracy) ? p.accuracy : null, members: p.members.length, dropped: p.dropped, roundMs: p.roundMs }) }
          if (j.status !== 'running' || req.signal.aborted) { send({ type: 'end', ...this.view(req.params.id, j) }); return }
          await new Promise<void>(resolve => { wake = resolve; setTimeout(resolve, 1000) })
        }
      } finally {
        j.waiters.delete(waiter)
      }
    })
  }
}
