// The compute peer's side: accept training invitations on /dbc/allreduce/1.0.0 and run a
// TrainingWorker per job with a trainer built from the job's spec (the built-in MLP, or one of
// the external trainers the operator declared in the node's config, by name). An invitation
// comes from a stranger: it is answered with a refusal and its reason whenever it can not run,
// and a spec that names a program or breaks the schema costs the inviter score.
import { logger } from '@libp2p/logger'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { WireError } from '../errors.js'
import type { dbc } from '../wire/gen/wire.js'
import { TrainingTransport, type TrainingHost, type TrainingMessage, type TrainingTransportInit } from './transport.js'
import { TrainingError, TrainingWorker, type RoundMetering } from './worker.js'
import { decodeSpec, type TrainingSpec } from './spec.js'
import { memberRouting, type TrainingRouting } from './overlay-route.js'
import { BUILTIN_WORK_BUDGET, builtinRefusal, createMlpTrainer, type BuiltinWork, type Trainer } from './trainer.js'
import { TrainerRegistry } from './trainers.js'
import type { MembershipEvent } from './member-log.js'

const log = logger('dbc:training:service')

export interface TrainingServiceInit {
  /** Builds the trainer for a job (default: built-in MLP, or the spec's external trainer). */
  createTrainer?: (spec: TrainingSpec, rank: number, shards: number) => Promise<Trainer>
  /** Turns a round's metering into an encoded SignedReceipt (see metering.ts). */
  meter?: (m: RoundMetering) => Uint8Array | undefined
  /** Jobs run at once; further invitations are refused (default 2). */
  maxJobs?: number
  /** Accept or refuse an invitation (e.g. GPU requirements, budget, busy). */
  accept?: (spec: TrainingSpec, coordinator: string) => boolean | string
  /**
   * Checks who pays the rounds (the invitation's PaymentTerms: escrow on this node's chain
   * covering its credit); a refusal with its typed code, `charge` when no honest submitter sends it.
   */
  admitPayment?: (inv: { jobId: string, payment?: dbc.task.v1.IPaymentTerms | null }, spec: TrainingSpec, coordinator: string) => Promise<{ code: string, reason: string, charge?: boolean } | undefined>
  /**
   * Before each round a member is named in (the payment gate's per-round check: PAYER_BEHIND,
   * ESCROW_TOO_SMALL, ...); a refusal sits the round out and tells the coordinator the code.
   */
  admitRound?: (jobId: string, round: number) => Promise<{ code: string, reason: string } | undefined>
  /**
   * Takes the compute slot a membership holds (its GPUs, else one core) from the provider's slot
   * ledger, as a grid task does: a refusal text (the provider is busy) or undefined. Idempotent per job.
   */
  holdSlot?: (jobId: string, spec: TrainingSpec) => string | undefined
  /** The job's slot (and whatever the node keeps for it) is given back: its worker ended or never started. */
  release?: (jobId: string) => void
  /** A peer sent bytes that break /dbc/allreduce (the daemon's peer score). */
  onBadInput?: (peer: PeerId, err: WireError) => void
  /** The trainers the operator declared (config `trainers:`); a spec picks one by name. */
  trainers?: TrainerRegistry
  /**
   * Most built-in MLP work per build, round and evaluation, in multiply-adds (default BUILTIN_WORK_BUDGET, under
   * ~200 ms each): the built-in trainer runs on the node's event loop.
   */
  builtinWorkBudget?: Partial<BuiltinWork>
  /** Signs the digest of a state this node hands to a joiner or the coordinator (see state-sign.ts); unsigned states are refused. */
  sign?: (digest: Uint8Array) => Uint8Array
  /** Each training membership this node joins, refuses or leaves (the daemon logs it: member-log.ts). */
  onMembership?: (e: MembershipEvent) => void
  /** The transport's routes: the overlay's frames (the fallback when no connection opens), the node's routing mode, its private set. */
  routes?: Pick<TrainingTransportInit, 'overlay' | 'routing' | 'privacy'>
}
/** A job id longer than this is refused (ids are 16 hex characters). */
export const MAX_JOB_ID_LENGTH = 128
/** Refusal reasons are cut to this length on the wire. */
export const MAX_REASON_LENGTH = 500
/** Longest an invitation waits for the same coordinator's finishing jobs to stop before its slots are counted, ms. */
export const FINISHING_WAIT_MS = 5000

/**
 * The trainer for a spec: the operator's trainer the spec names; for the built-in MLP, the
 * operator's trainer that serves it (`serves: [mlp]`, e.g. PyTorch on a GPU) or the built-in one.
 */
export async function defaultTrainerFactory (spec: TrainingSpec, rank: number, shards: number, trainers: TrainerRegistry = new TrainerRegistry()): Promise<Trainer> {
  if (spec.model.kind === 'external') return await trainers.start(spec.model.trainer, { rank, shards, spec })
  const serving = trainers.serving('mlp')
  if (serving !== undefined) return await trainers.start(serving, { rank, shards, spec })
  return createMlpTrainer(spec, rank, shards)
}

/** Why this node refuses a spec it decoded (undefined: it may run here). */
function refusalOf (spec: TrainingSpec, trainers: TrainerRegistry, budget: BuiltinWork): string | undefined {
  if (spec.model.kind === 'external') return trainers.unknownTrainer(spec.model.trainer)
  // an operator's trainer runs outside the event loop: the built-in budget does not apply to it
  if (trainers.serving('mlp') !== undefined) return undefined
  return builtinRefusal(spec, budget)
}

export class TrainingService {
  readonly transport: TrainingTransport
  readonly workers = new Map<string, TrainingWorker>()
  /** Jobs whose trainer is starting (they count toward maxJobs). */
  private readonly starting = new Set<string>()
  /** Built-in jobs (starting or running) by job id → coordinator: one per coordinator, so no stranger holds every slot. */
  private readonly builtinBy = new Map<string, string>()
  /** Coordinators one of whose invitations waits for their finishing jobs to stop. */
  private readonly awaitingEnd = new Set<string>()
  readonly trainers: TrainerRegistry
  private readonly init: TrainingServiceInit
  private unlisten: (() => void) | undefined
  private stopped = false

  constructor (host: TrainingHost | TrainingTransport, init: TrainingServiceInit = {}) {
    this.transport = host instanceof TrainingTransport ? host : new TrainingTransport(host, { onBadInput: init.onBadInput, ...init.routes })
    this.init = init
    this.trainers = init.trainers ?? new TrainerRegistry()
  }

  async start (): Promise<void> {
    await this.transport.start()
    this.unlisten = this.transport.listen((from, msg) => { void this.onMessage(from, msg) })
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.unlisten?.()
    await Promise.all([...this.workers.values()].map(async w => { await w.stop() }))
    this.workers.clear()
    await this.transport.stop()
  }

  /**
   * Joins a running job as a late or replacement peer: builds the trainer, loads the current
   * state from one of `donors` (members), and asks the coordinator for a place next round. The
   * coordinator admits only peers it invited: in the daemon, joining is its invitation (an Invite
   * with from_round > 0, handled below); this is for embedding and tests.
   */
  async join (opts: { jobId: string, coordinator: string, donors: string[], spec: TrainingSpec, rank: number, shards: number, fromRound?: number, digest?: Uint8Array, signal?: AbortSignal }): Promise<TrainingWorker> {
    const trainer = await this.createTrainer(opts.spec, opts.rank, opts.shards)
    const worker = this.track(new TrainingWorker({ transport: this.transport, jobId: opts.jobId, coordinator: opts.coordinator, spec: opts.spec, trainer, meter: this.init.meter, sign: this.init.sign, ...this.roundCheck(opts.jobId) }))
    await worker.start()
    await worker.joinFrom(opts.donors, { fromRound: opts.fromRound, digest: opts.digest, signal: opts.signal })
    return worker
  }

  private async createTrainer (spec: TrainingSpec, rank: number, shards: number): Promise<Trainer> {
    if (this.init.createTrainer !== undefined) return await this.init.createTrainer(spec, rank, shards)
    return await defaultTrainerFactory(spec, rank, shards, this.trainers)
  }

  private async onMessage (from: string, msg: TrainingMessage): Promise<void> {
    const inv = msg.invite
    if (inv == null || this.starting.has(inv.jobId)) return
    // The same coordinator's previous job is ending: its Finish came first on the same stream, but the
    // worker stops (and gives back its slot) a few promise turns later; an invitation read in the same
    // turn (a busy member reads both at once) would find it still running and be refused as busy.
    // One such wait per coordinator at a time (an honest one sends one invitation per job): a flood of
    // invitations does not pile up waits; the others are answered at once, as before.
    const ending = [...this.workers.values()].filter(w => w.coordinator === from && w.jobId !== inv.jobId && w.finishing)
    if (ending.length > 0 && !this.awaitingEnd.has(from)) {
      this.awaitingEnd.add(from)
      let timer: NodeJS.Timeout | undefined
      try {
        await Promise.race([Promise.all(ending.map(async w => { await w.done })), new Promise<void>(resolve => { timer = setTimeout(resolve, FINISHING_WAIT_MS) })])
      } finally {
        clearTimeout(timer)
        this.awaitingEnd.delete(from)
      }
      if (this.starting.has(inv.jobId)) return
    }
    const running = this.workers.get(inv.jobId)
    if (running !== undefined) {
      // its coordinator restarted and resumes the job: the old worker's rounds are over
      if (running.coordinator !== from) return
      this.workers.delete(inv.jobId)
      this.builtinBy.delete(inv.jobId)
      await running.stop()
      if (this.workers.has(inv.jobId) || this.starting.has(inv.jobId)) return
    }
    // once the spec is read, the reply follows the job's routing (before: the node's; the overlay's way back when the invite came that way)
    let routing: TrainingRouting | undefined
    const reply = (accepted: boolean, reason = '', paramCount = 0, code = '', noOptimizer = false): void => {
      // the inviter's job (coordinator `from`): the reply never touches this node's private set
      this.transport.send(from, { inviteReply: { jobId: inv.jobId, accepted, reason: reason.slice(0, MAX_REASON_LENGTH), paramCount, code, noOptimizer } }, routing, from)
    }
    const refuse = (reason: string, offence?: WireError, code = ''): void => {
      log('invitation %s from %s refused: %s', inv.jobId.slice(0, MAX_JOB_ID_LENGTH), from, reason)
      this.init.onMembership?.({ kind: 'refused', jobId: inv.jobId.slice(0, MAX_JOB_ID_LENGTH), coordinator: from, code, reason: reason.slice(0, MAX_REASON_LENGTH) })
      if (offence !== undefined) this.charge(from, offence)
      reply(false, reason, 0, code)
    }
    if (inv.jobId.length === 0 || inv.jobId.length > MAX_JOB_ID_LENGTH) { refuse(`a job id must have 1 to ${MAX_JOB_ID_LENGTH} characters`, new WireError('TRAINING_SPEC_INVALID', 'training invitation with a bad job id')); return }
    if (this.workers.size + this.starting.size >= (this.init.maxJobs ?? 2)) { refuse('busy: too many training jobs'); return }
    let spec: TrainingSpec
    try {
      spec = decodeSpec(inv.spec)
    } catch (err) {
      // a spec that names a program, or breaks the schema, is no honest mistake of a dbc node
      const code = (err as TrainingError).code === 'TRAINING_SPEC_NAMES_PROGRAM' ? 'TRAINING_SPEC_NAMES_PROGRAM' : 'TRAINING_SPEC_INVALID'
      refuse((err as Error).message, new WireError(code, `training invitation refused: ${(err as Error).message}`))
      return
    }
    // the member's operator's routing wins over a remote coordinator's spec (review F5); this node's own job may lift it
    const routed = from === this.transport.self ? spec.routing : memberRouting(this.transport.overlay.node(), spec.routing)
    if (routed === 'refuse') { refuse('ROUTING_REFUSED: this node\'s operator set routing.mode: direct (connections only) and the job asks for routing: overlay; pick another member, or run the job with routing auto', undefined, 'ROUTING_REFUSED'); return }
    routing = routed
    const shards = inv.shards
    if (!Number.isInteger(shards) || shards < 1 || shards > 64 || inv.rank < 0 || inv.rank >= shards) {
      refuse(`rank ${inv.rank} of ${shards} shards is out of range (1 to 64 shards)`, new WireError('TRAINING_SPEC_INVALID', 'training invitation with a bad rank or shard count'))
      return
    }
    // an unknown trainer name, or a spec too big for the built-in trainer here, is an honest mistake (the submitter
    // picked the wrong peer, or wants a big model): no charge
    const refusal = refusalOf(spec, this.trainers, { ...BUILTIN_WORK_BUDGET, ...this.init.builtinWorkBudget })
    if (refusal !== undefined && this.init.createTrainer === undefined) { refuse(refusal); return }
    const builtin = spec.model.kind === 'mlp' && this.trainers.serving('mlp') === undefined
    if (builtin && [...this.builtinBy.values()].includes(from)) { refuse('busy: this node already runs a built-in training job for you (one at a time per coordinator)'); return }
    const verdict = this.init.accept?.(spec, from) ?? true
    if (verdict !== true) { refuse(typeof verdict === 'string' ? verdict : 'refused'); return }
    // a membership holds a slot like a grid task: a provider busy with tasks refuses, and tasks see it busy
    const busy = this.init.holdSlot?.(inv.jobId, spec)
    if (busy !== undefined) { refuse(`BUSY: ${busy}`, undefined, 'BUSY'); return }
    this.starting.add(inv.jobId)
    if (builtin) this.builtinBy.set(inv.jobId, from)
    let started = false
    try {
      // money before work (review H2): the rounds must be backed by an escrow this node can redeem from
      const unpaid = await this.init.admitPayment?.(inv, spec, from)
      if (unpaid !== undefined) { refuse(`${unpaid.code}: ${unpaid.reason}`, unpaid.charge === true ? new WireError(unpaid.code, `training invitation refused: ${unpaid.reason}`) : undefined, unpaid.code); return }
      if (this.stopped) throw new TrainingError('NODE_STOPPING', 'the node is stopping')
      const trainer = await this.createTrainer(spec, inv.rank, shards)
      try {
        if (this.stopped) throw new TrainingError('NODE_STOPPING', 'the node is stopping')
        const worker = this.track(new TrainingWorker({ transport: this.transport, jobId: inv.jobId, coordinator: from, spec, trainer, meter: this.init.meter, sign: this.init.sign, ...this.roundCheck(inv.jobId) }))
        await worker.start()
        started = true
        reply(true, '', trainer.paramCount, '', trainer.getOptimizerState === undefined || trainer.setOptimizerState === undefined)
        this.init.onMembership?.({ kind: 'joined', jobId: inv.jobId, coordinator: from, trainer: spec.model.kind === 'external' ? spec.model.trainer : builtin ? 'built-in' : spec.model.kind, fromRound: inv.fromRound })
        // a job under way (a late member, or a resumed job): its state first, checked against the members' digest
        // the donors' addresses as the coordinator knows them (only for the donors it names, at most 8 each)
        if (inv.fromRound > 0) await Promise.all((inv.donorAddrs ?? []).slice(0, 8).filter(a => inv.donors.includes(a.peer ?? '')).map(async a => { await this.transport.learnAddresses(a.peer ?? '', (a.addrs ?? []).slice(0, 8), from) }))
        if (inv.fromRound > 0) void worker.joinFrom(inv.donors.slice(0, 8), { fromRound: inv.fromRound, digest: inv.stateHash.length > 0 && inv.stateHash.length <= 64 ? Uint8Array.from(inv.stateHash) : undefined }).catch((err: Error) => { log('job %s: join failed: %s', inv.jobId, err.message) })
      } catch (err) {
        await trainer.close().catch(() => {})
        this.workers.delete(inv.jobId)
        throw err
      }
    } catch (err) {
      log.error('invitation for %s refused: %s', inv.jobId, (err as Error).message)
      refuse((err as Error).message)
    } finally {
      this.starting.delete(inv.jobId)
      if (!started) {
        this.builtinBy.delete(inv.jobId)
        if (!this.workers.has(inv.jobId)) this.init.release?.(inv.jobId)
      }
    }
  }

  private roundCheck (jobId: string): { admitRound?: (round: number) => Promise<{ code: string, reason: string } | undefined> } {
    const admit = this.init.admitRound
    return admit === undefined ? {} : { admitRound: async (round) => await admit(jobId, round) }
  }

  /** Charges the inviter (the daemon's peer score); never throws. */
  private charge (from: string, err: WireError): void {
    try {
      this.init.onBadInput?.(peerIdFromString(from), err)
    } catch (e) {
      log.error('could not charge %s: %s', from, (e as Error).message)
    }
  }

  private track (worker: TrainingWorker): TrainingWorker {
    this.workers.set(worker.jobId, worker)
    void worker.done.then(() => {
      this.init.onMembership?.({ kind: 'left', jobId: worker.jobId, coordinator: worker.coordinator, rounds: worker.rounds.length, refusedRounds: worker.refusedRounds })
      if (this.workers.get(worker.jobId) !== worker) return // replaced by a resumed job's worker
      this.workers.delete(worker.jobId)
      this.builtinBy.delete(worker.jobId)
      if (!this.starting.has(worker.jobId)) this.init.release?.(worker.jobId)
    })
    return worker
  }
}
