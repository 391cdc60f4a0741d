// Training in the node daemon: every node serves training invitations (TrainingService), and
// a submitting node runs training jobs behind the control API:
//   POST /v1/training              { spec, peers? }  → { jobId }
//   GET  /v1/training/:id          status, history, accuracy
//   GET  /v1/training/:id/events   newline-delimited progress events until the job ends
//   GET  /v1/training/:id/results  { model (base64 dbc-model-v2), accuracy, members, receipts }
//   POST /v1/training/:id/members  { peer }  → invite a peer into the running job
// Jobs are stored in the node's store (src/training/store.ts) with the checkpoint of their last
// completed round: a submitter that restarts resumes each running job from there.
import type { PeerId } from '@libp2p/interface'
import { randomBytes } from 'node:crypto'
import { TrainingService } from './service.js'
import { memberLog } from './member-log.js'
import { TrainingSession, type InviteRefusal, type ResumePoint, type RoundMeterRecord, type TrainingProgress, type TrainingResult } from './session.js'
import { TrainingStore } from './store.js'
import { stateSigner } from './state-sign.js'
import { TrainerRegistry } from './trainers.js'
import type { TrainerConfig } from '../node/config.js'
import { createReceiptMeter } from './metering.js'
import { ALLREDUCE_PROTOCOL } from './transport.js'
import { privacyOf } from './job-privacy.js'
import { checkTrainingFields, parseTrainingSpec, type TrainingSpec } from './spec.js'
import { TrainingError } from './worker.js'
import { trainingRoutes } from './routes.js'
import { MemberPayments, type InvitationGate } from './invite-payment.js'
import { DEFAULT_MIN_ROUND_S } from '../core/settlement/training.js'
import type { dbc } from '../wire/gen/wire.js'
import type { HourlyPrices } from '../core/compute/pricing.js'
import type { DaemonContext, Subsystem } from '../node/daemon.js'
import type { FrameLink } from '../net/overlay/chunk-messenger.js'

export interface TrainingSubsystemInit {
  /** Prices this node charges for training compute (receipted per round): its provider policy's, read when the subsystem starts. */
  prices?: HourlyPrices | (() => HourlyPrices)
  /** GPUs this node offers (its provider policy's, after probing), read at each invitation. */
  gpuCount?: number | (() => number)
  /** Floor of a round's time in the member's own round price, ms (config provider.training.minRoundS; core/settlement/training.ts). */
  minRoundMs?: number
  /** Whether this node works in other nodes' training jobs (config provider.training.enabled; default true). */
  serveTraining?: boolean
  /** The compute peer's slot ledger: a membership holds a slot like a grid task (absent: no slots taken). */
  slots?: () => TrainingSlots | undefined
  /**
   * Picks the group for a job (the scheduler's placement plugs in here). Default: connected
   * peers that speak /dbc/allreduce/1.0.0, the `groupSize` with the lowest measured RTT.
   */
  selectPeers?: (spec: TrainingSpec, signal?: AbortSignal, exclude?: string[]) => Promise<string[]>
  /** This node's EVM payout address (its chain account): named in its round receipts. */
  payoutAddress?: () => string | undefined
  /** Pays the rounds of jobs this node submits (escrow, vouchers, close: src/node/training-payments.ts). */
  payments?: () => TrainingPaymentHook | undefined
  /** The trainers this node offers (default: the config's `trainers:`). */
  trainers?: Record<string, TrainerConfig>
  /** This node's payment gate (the compute peer's): an invitation needs an escrow covering its credit. Absent: no chain, no check. */
  memberPayment?: () => InvitationGate | undefined
  /** The overlay's frames: training messages travel there when no connection reaches a peer (src/training/overlay-route.ts). */
  overlay?: () => FrameLink | undefined
}

/** What a membership needs of the compute peer's slots (ComputePeer implements it). */
export interface TrainingSlots {
  /** Takes a slot for `id` now (no queue): undefined when held, else why not. Idempotent per id. */
  holdSlot: (id: string, demand: { cpus: number, gpus: number, gpuModel?: string }) => string | undefined
  releaseSlot: (id: string) => void
}

/** The submitter's payment of training rounds, through the same payer and vouchers as grid tasks. */
export interface TrainingPaymentHook {
  start: (jobId: string, spec: TrainingSpec, opts: { allowTopUp?: boolean, groupSize: number }) => Promise<void>
  /** A job resumed after a restart: its payer comes back from the store (no-op for a known job). */
  resume: (jobId: string, spec: TrainingSpec) => void
  metered: (jobId: string, rec: RoundMeterRecord) => void
  roundEnded: (jobId: string) => void
  finish: (jobId: string) => Promise<void>
  paid: (jobId: string) => { paid: string, refused: string, unit: 'DBC' } | undefined
  /** The job's payment terms for its invitations: escrow, payer, and the payer's LeaseAuth over `coordinator` (a peer id). */
  terms: (jobId: string, coordinator: string) => Promise<dbc.task.v1.IPaymentTerms | undefined>
}

export interface TrainingJob {
  createdAt: number
  /** The peers it was placed on (a resumed or stored job: those of the store). */
  peers?: string[]
  /** The manifest's name (absent: listed as "training"). */
  name?: string
  spec: TrainingSpec
  /** While it runs: dropped at its end (its model and optimizer state, every round's receipts), `ended` keeps what its view shows. */
  session?: TrainingSession
  ended?: { ranks: Map<string, number>, refusals: InviteRefusal[], momentumOffBy: string[] }
  status: 'running' | 'done' | 'failed' | 'cancelled'
  /** Cancels this job alone (`dbc job cancel`): its session sees it with the node's stop. */
  cancel?: AbortController
  history: TrainingProgress[]
  /** `model` absent: in the store (read when asked for: a daemon that runs for months ran many). */
  result?: { accuracy: number, members: string[], rounds: number, receipts: number, model?: Uint8Array }
  error?: { code: string, message: string, refusals?: InviteRefusal[] }
  waiters: Set<() => void>
  /** The round this job resumed from after a restart of this node (0: never). */
  resumedFrom: number
}

export class TrainingSubsystem implements Subsystem {
  readonly name = 'training'
  service: TrainingService | undefined
  private ctx: DaemonContext | undefined
  private readonly jobs = new Map<string, TrainingJob>()
  /** Peers of built-in jobs being submitted (escrow locking, before launch), each with the job's id. */
  private readonly reserved = new Map<string, string>()
  private readonly aborts = new AbortController()
  private store: TrainingStore | undefined
  /** This node's payment checks as a member of others' jobs (its own round price, per-round credit). */
  private member: MemberPayments | undefined

  constructor (private readonly init: TrainingSubsystemInit = {}) {}

  async start (ctx: DaemonContext): Promise<void> {
    this.ctx = ctx
    const p = this.init.prices
    const prices = (typeof p === 'function' ? p() : p) ?? { priceGpuHour: 0, priceCpuHour: 0 }
    const gpuCount = (): number => { const g = this.init.gpuCount; return (typeof g === 'function' ? g() : g) ?? 0 }
    // the member prices its rounds itself (its policy's prices, its own floor and measurements), never from the spec
    const member = this.member = new MemberPayments(() => this.init.memberPayment?.(), () => ({ prices, minRoundMs: this.init.minRoundMs ?? DEFAULT_MIN_ROUND_S * 1000 }))
    // the receipts carry the same payout binding as this node's grid offers (one signer: the compute peer's gate)
    const selfBytes = (): Uint8Array => (ctx.identity.peerId ?? ctx.host.peerId).toMultihash().bytes
    const meter = createReceiptMeter({ secretKey: ctx.identity.secretKey, prices, gpuCount: gpuCount(), payoutAddress: this.init.payoutAddress, payoutBinding: () => { const gate = this.init.memberPayment?.(); return gate?.payoutBinding?.(selfBytes()) }, onBilled: (m, units) => { member.delivered(m.jobId, m.computeMs, units) } })
    const trainers = new TrainerRegistry({ trainers: this.init.trainers ?? ctx.config?.trainers ?? {}, dataDir: ctx.config?.dataDir })
    for (const problem of trainers.problems()) ctx.log.warn(problem)
    this.store = ctx.store !== undefined ? new TrainingStore(ctx.store) : undefined
    const slotId = (jobId: string): string => `training:${jobId}`
    this.service = new TrainingService(ctx.host, { meter, trainers, sign: stateSigner(ctx.identity.secretKey), onBadInput: ctx.reportBadInput,
      // config routing.mode: overlay sends every frame through the overlay, direct never falls back to it
      routes: { overlay: this.init.overlay, routing: () => ctx.config?.routing?.mode, ...privacyOf(ctx) },
      accept: (spec) => {
        if (this.init.serveTraining === false) return 'TRAINING_DISABLED: this node\'s provider policy does not serve training (provider.training.enabled)'
        const offered = gpuCount()
        return (spec.gpu?.count ?? 0) <= offered || `needs ${spec.gpu?.count ?? 0} GPU(s), this node offers ${offered}`
      },
      holdSlot: (jobId, spec) => this.init.slots?.()?.holdSlot(slotId(jobId), { cpus: 1, gpus: spec.gpu?.count ?? 0, ...(spec.gpu?.model !== undefined ? { gpuModel: spec.gpu.model } : {}) }),
      release: (jobId) => { member.forget(jobId); this.init.slots?.()?.releaseSlot(slotId(jobId)) },
      admitPayment: async (inv, spec, coordinator) => {
        this.init.memberPayment?.()?.payoutBinding?.(selfBytes()) // signed before the first round's receipt needs it
        return await member.admitInvitation(inv, spec, coordinator)
      },
      admitRound: async (jobId) => await member.admitRound(jobId),
      onMembership: memberLog(ctx.log, () => Date.now())
    })
    await this.service.start()
    trainingRoutes(ctx.api, { submit: async (spec, peers, opts) => await this.submit(spec, peers, opts), cancel: async id => await this.cancel(id), jobs: () => this.jobs.entries(), job: id => this.job(id), view: (id, j) => this.view(id, j), storedModel: id => this.store?.get(id)?.result?.model })
    for (const j of this.store?.list() ?? []) {
      if (j.status === 'running') continue // resumed once the network is up
      const spec = parseTrainingSpec(j.spec)
      const r = j.result
      this.jobs.set(j.jobId, { createdAt: j.createdAt, ...(j.name !== undefined ? { name: j.name } : {}), spec, status: j.status, history: this.store!.history(j.jobId), waiters: new Set(), resumedFrom: j.resumedFrom, ...(r !== undefined ? { result: { accuracy: r.accuracy, members: r.members, rounds: spec.rounds, receipts: r.receipts } } : {}), ...(j.error !== undefined ? { error: j.error } : {}) })
    }
  }

  /** Resumes the running jobs this node coordinated before it stopped, each from its last checkpoint. */
  async afterNetworkStart (): Promise<void> {
    for (const j of this.store?.list() ?? []) {
      if (j.status !== 'running' || this.jobs.has(j.jobId)) continue
      try {
        const spec = parseTrainingSpec(j.spec)
        const checkpoint = this.store!.checkpoint(j.jobId)
        const peers = checkpoint?.members ?? j.peers
        this.store!.resumed(j.jobId, checkpoint?.round ?? 0)
        const history = this.store!.history(j.jobId)
        // a dial by peer id before the bootstrap (or the DHT) gave their addresses would fail and take the
        // bootstrap's dial down with it: wait (bounded) until the members are connected
        void this.connectedTo(peers, 30_000).then(() => {
          if (this.aborts.signal.aborted) return
          this.launch(j.jobId, spec, peers, j.createdAt, { checkpoint, history }, j.name)
          this.ctx?.log.info({ jobId: j.jobId, round: checkpoint?.round ?? 0 }, 'training job resumed')
        })
      } catch (err) {
        this.store!.fail(j.jobId, { code: (err as TrainingError).code ?? 'TRAINING_FAILED', message: `could not resume: ${(err as Error).message}` })
      }
    }
  }

  async stop (): Promise<void> {
    this.aborts.abort(new TrainingError('NODE_STOPPING', 'the node is stopping'))
    await this.service?.stop()
  }

  status (): Record<string, unknown> {
    const jobs = [...this.jobs.values()]
    // the jobs this node works in, and the states it adopted from other peers (a joiner's transfer)
    const workers = [...this.service?.workers.values() ?? []].map(w => ({ jobId: w.jobId, coordinator: w.coordinator, round: w.round, loads: w.loads, refusedRounds: w.refusedRounds, payment: this.member?.view(w.jobId) ?? null }))
    return { trainingJobs: jobs.length, trainingRunning: jobs.filter(j => j.status === 'running').length, trainingServing: this.service?.workers.size ?? 0, trainingWorkers: workers, trainers: this.service?.trainers.names() ?? [], trainingRoutes: this.service?.transport.routes() ?? {}, trainingPrivatePeers: this.ctx?.privatePeers?.held ?? 0 }
  }

  /** Starts a training job; resolves with its id once the group is chosen. */
  async submit (specInput: unknown, peers?: string[], opts: { allowTopUp?: boolean, name?: string } = {}): Promise<string> {
    const ctx = this.ctx
    if (ctx === undefined || this.service === undefined) throw new TrainingError('NOT_READY', 'the training subsystem is not started')
    const name = jobName(opts.name)
    checkTrainingFields(specInput)
    const spec = parseTrainingSpec(specInput)
    // a peer runs one built-in training job per coordinator at a time: say so now, not as the
    // members' refusals once the escrow is locked (found by helper user, session 13)
    const refuseTaken = (busy: Map<string, string>): void => {
      const taken = (peers ?? []).filter(p => busy.has(p))
      if (taken.length === 0) return
      const job = busy.get(taken[0])!
      throw new TrainingError('PEERS_BUSY', `${taken.length} of the peers named (${taken.map(p => `${p.slice(0, 16)}…`).join(', ')}) run this node's training job ${job}: a peer runs one built-in training job for a coordinator at a time`, { hint: `wait for it to end (\`dbc job status ${job}\`), or name other peers` })
    }
    refuseTaken(this.busyWithOurs(spec))
    const picked = peers ?? await (this.init.selectPeers ?? this.nearestPeers.bind(this))(spec, this.aborts.signal, [...this.busyWithOurs(spec).keys()])
    // again after the await: a submit that ran meanwhile may have taken some of them (review s13 L6)
    const busy = this.busyWithOurs(spec)
    refuseTaken(busy)
    const group = picked.filter(p => !busy.has(p))
    if (group.length === 0 && busy.size > 0) {
      const job = [...busy.values()][0]
      throw new TrainingError('PEERS_BUSY', `every connected peer serving training runs this node's training job ${job}: a peer runs one built-in training job for a coordinator at a time`, { hint: `wait for it to end (\`dbc job status ${job}\`), or connect more compute peers` })
    }
    if (group.length === 0) throw new TrainingError('NO_PEERS', 'no connected peer serves training', { hint: 'start compute peers (`dbc node start`) and connect them to this node' })
    const jobId = randomBytes(8).toString('hex')
    // held from here: a submit running while this one locks its escrow sees them busy (review s13 L6)
    if (spec.model.kind === 'mlp') for (const p of group) if (!this.reserved.has(p)) this.reserved.set(p, jobId)
    try {
      // money first: the escrow is locked before any peer is invited
      await this.init.payments?.()?.start(jobId, spec, { allowTopUp: opts.allowTopUp, groupSize: group.length })
      const createdAt = Date.now()
      this.store?.createJob({ jobId, spec, peers: group, createdAt, ...(name !== undefined ? { name } : {}) })
      this.launch(jobId, spec, group, createdAt, undefined, name)
    } finally {
      for (const [p, id] of this.reserved) if (id === jobId) this.reserved.delete(p)
    }
    return jobId
  }

  /** Runs a job (new, or resumed from its checkpoint after a restart), keeping its store rows up to date. */
  private launch (jobId: string, spec: TrainingSpec, group: string[], createdAt: number, resume?: ResumePoint, name?: string): void {
    const ctx = this.ctx!
    const store = this.store
    const cancel = new AbortController()
    const session = new TrainingSession({
      transport: this.service!.transport,
      jobId,
      spec,
      peers: group,
      signal: AbortSignal.any([this.aborts.signal, cancel.signal]),
      resume,
      sign: stateSigner(ctx.identity.secretKey),
      checkpoint: (c) => { store?.saveCheckpoint(jobId, c) },
      candidates: async (exclude) => await this.candidatePeers(exclude),
      payment: async () => await this.init.payments?.()?.terms(jobId, ctx.identity.peerId.toString())
    })
    const pay = this.init.payments?.()
    pay?.resume(jobId, spec)
    let stopping = false
    const job: TrainingJob = { createdAt, peers: group, ...(name !== undefined ? { name } : {}), spec, session, cancel, status: 'running', history: resume?.history.filter(h => h.round < session.resumedFrom) ?? [], waiters: new Set(), resumedFrom: session.resumedFrom }
    this.jobs.set(jobId, job)
    const wake = (): void => { for (const w of job.waiters) w() }
    session.on('progress', (p) => { job.history.push(p); store?.progress(jobId, p); pay?.roundEnded(jobId); wake() })
    if (pay !== undefined) session.on('metered', (rec) => { pay.metered(jobId, rec) })
    session.run().then((r: TrainingResult) => {
      const receipts = r.metering.filter(m => m.receipt !== undefined).length
      job.result = { accuracy: r.accuracy, members: r.members, rounds: r.history.length, receipts, ...(store === undefined ? { model: r.model } : {}) }
      job.status = 'done'
      store?.finish(jobId, { accuracy: r.accuracy, members: r.members, receipts, model: r.model })
    }, (err: Error) => {
      const cancelled = (err as TrainingError).code === 'CANCELLED'
      job.status = cancelled ? 'cancelled' : 'failed'
      job.error = { code: (err as TrainingError).code ?? 'TRAINING_FAILED', message: err.message, refusals: session.refusals }
      // a job stopped by this node's shutdown stays 'running' in the store: it resumes on the next start
      stopping = (err as TrainingError).code === 'NODE_STOPPING'
      if (cancelled) store?.cancel(jobId, job.error)
      else if (!stopping) store?.fail(jobId, job.error)
      if (cancelled) ctx.log.info({ jobId }, 'training job cancelled')
      else ctx.log.warn({ jobId, err: err.message }, 'training job failed')
    }).finally(() => {
      const members = job.history[job.history.length - 1]?.members ?? []
      job.ended = { ranks: new Map(members.flatMap(m => { const r = session.ranks.get(m); return r === undefined ? [] : [[m, r] as const] })), refusals: session.refusals, momentumOffBy: session.momentumOffBy(members) }
      job.session = undefined
      job.cancel = undefined
      wake()
      // a job stopped by the shutdown resumes on the next start: its escrow stays open
      if (!stopping) void pay?.finish(jobId)
    })
  }

  /** Resolves once every one of `peers` is connected, or after `ms`. */
  private async connectedTo (peers: string[], ms: number): Promise<void> {
    const host = this.ctx!.host
    const end = Date.now() + ms
    while (Date.now() < end && !this.aborts.signal.aborted) {
      if (peers.every(p => host.getPeers().some(id => id.toString() === p))) return
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  }

  /** Connected peers serving training, none of `exclude`, nearest first: replacements for a group. */
  private async candidatePeers (exclude: string[]): Promise<string[]> {
    const host = this.ctx!.host
    const out: string[] = []
    for (const id of host.getPeers()) {
      if (exclude.includes(id.toString())) continue
      if (await this.servesTraining(id)) out.push(id.toString())
    }
    return out
  }

  /** Whether a connected peer announced the all-reduce protocol (serves training). */
  async servesTraining (peer: PeerId): Promise<boolean> {
    try {
      return (await this.ctx!.host.peerStore.get(peer)).protocols.includes(ALLREDUCE_PROTOCOL)
    } catch {
      return false
    }
  }

  /** Peers in this node's running built-in (mlp) jobs, each with the job: none for another kind of spec. */
  private busyWithOurs (spec: TrainingSpec): Map<string, string> {
    const out = new Map<string, string>()
    if (spec.model.kind !== 'mlp') return out
    for (const [id, j] of this.jobs) {
      if (j.status !== 'running' || j.spec.model.kind !== 'mlp') continue
      // the peers it holds now (members, joiners, invitees), not the group it started with (review s13 L6)
      for (const p of j.session?.heldPeers() ?? j.peers ?? []) if (!out.has(p)) out.set(p, id)
    }
    for (const [p, id] of this.reserved) if (!out.has(p)) out.set(p, id)
    return out
  }

  private async nearestPeers (spec: TrainingSpec, signal?: AbortSignal, exclude: string[] = []): Promise<string[]> {
    const host = this.ctx!.host
    const candidates: PeerId[] = []
    for (const id of host.getPeers()) {
      if (exclude.includes(id.toString())) continue
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

  /** What GET /v1/training lists (the dashboard's node-wide event stream compares these). */
  /**
   * Cancels a running job of this node: its session tells the members to stop (also while its
   * invitations are out), the rounds done are paid as at any end, and it ends 'cancelled' (a
   * restart does not resume it). Answers once it has ended (or after 5 s, still 'running').
   */
  async cancel (jobId: string): Promise<Record<string, unknown>> {
    const j = this.job(jobId)
    if (j.status !== 'running' || j.cancel === undefined) throw new TrainingError('NOT_RUNNING', `training job ${jobId} is ${j.status}`, { hint: 'only a running job can be cancelled' })
    j.cancel.abort(new TrainingError('CANCELLED', 'cancelled by the submitter (dbc job cancel)'))
    const end = Date.now() + 5000
    while (j.status === 'running' && Date.now() < end) {
      await new Promise<void>(resolve => { const w = (): void => { j.waiters.delete(w); resolve() }; j.waiters.add(w); setTimeout(w, 100) })
    }
    return this.view(jobId, j)
  }

  list (): Array<Record<string, unknown>> { return [...this.jobs.entries()].map(([id, j]) => this.view(id, j)) }

  private view (id: string, j: TrainingJob): Record<string, unknown> {
    const last = j.history[j.history.length - 1]
    return { jobId: id, name: j.name ?? 'training', groupSize: j.spec.groupSize, createdAt: j.createdAt, payment: this.init.payments?.()?.paid(id) ?? null, status: j.status, round: last?.round ?? -1, rounds: j.spec.rounds, resumedFrom: j.resumedFrom, loss: last?.loss ?? null, accuracy: j.result?.accuracy ?? [...j.history].reverse().find(h => Number.isFinite(h.accuracy))?.accuracy ?? null, members: last?.members ?? [], ranks: Object.fromEntries((last?.members ?? []).flatMap(m => { const r = (j.session ?? j.ended)?.ranks.get(m); return r === undefined ? [] : [[m, r]] })), refusals: (j.session ?? j.ended)?.refusals ?? [], momentumOffBy: j.session?.momentumOffBy(last?.members ?? []) ?? j.ended?.momentumOffBy ?? [], error: j.error ?? null, routing: j.spec.routing ?? this.ctx?.config?.routing?.mode ?? 'auto', routes: this.memberRoutes(last?.members ?? []) }
  }

  /** How this node reaches each of `members` now (dbc job status/explain): the route's kind, relays and why. */
  private memberRoutes (members: string[]): Record<string, MemberRoute> {
    const all = this.service?.transport.routes() ?? {}
    const self = this.service?.transport.self
    const out: Record<string, MemberRoute> = {}
    for (const m of members.slice(0, 64)) {
      const r = all[m]
      if (m === self) out[m] = { kind: 'self', relays: [], facts: 'this node', frames: {} }
      else if (r !== undefined) out[m] = { kind: r.kind, ...(r.relay !== undefined ? { relay: r.relay } : {}), relays: r.relays ?? (r.relay !== undefined ? [r.relay] : []), facts: r.facts ?? '', frames: { ...r.frames } as Record<string, number> }
    }
    return out
  }
}

/** How the coordinator reaches one member (the job's view). */
interface MemberRoute { kind: string, relay?: string, relays: string[], facts: string, frames: Record<string, number> }

/** A job's name as given (a manifest's `name:`): printable, at most 64 characters; undefined when none. */
export function jobName (name: unknown): string | undefined {
  if (name === undefined || name === null) return undefined
  if (typeof name !== 'string') throw new TrainingError('TRAINING_SPEC_INVALID', 'name: must be a string')
  const clean = name.replace(/[^\x20-\x7e]/g, '').trim().slice(0, 64)
  return clean === '' ? undefined : clean
}
