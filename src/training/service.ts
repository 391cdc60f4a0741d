// The compute peer's side: accept training invitations on /dbc/allreduce/1.0.0 and run a
// TrainingWorker per job with a trainer built from the job's spec (the built-in MLP, or an
// external trainer process). The daemon starts one TrainingService per node.
import { logger } from '@libp2p/logger'
import type { PeerId } from '@libp2p/interface'
import type { WireError } from '../errors.js'
import { TrainingTransport, type TrainingHost, type TrainingMessage } from './transport.js'
import { TrainingWorker, type RoundMetering } from './worker.js'
import { decodeSpec, type TrainingSpec } from './spec.js'
import { createMlpTrainer, type Trainer } from './trainer.js'
import { ExternalTrainer } from './external.js'

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
  /** A peer sent bytes that break /dbc/allreduce (the daemon's peer score). */
  onBadInput?: (peer: PeerId, err: WireError) => void
}

export async function defaultTrainerFactory (spec: TrainingSpec, rank: number, shards: number): Promise<Trainer> {
  if (spec.model.kind === 'external') return await ExternalTrainer.fromSpec(spec.model, { rank, shards, spec })
  return createMlpTrainer(spec, rank, shards)
}

export class TrainingService {
  readonly transport: TrainingTransport
  readonly workers = new Map<string, TrainingWorker>()
  private readonly init: TrainingServiceInit
  private unlisten: (() => void) | undefined

  constructor (host: TrainingHost | TrainingTransport, init: TrainingServiceInit = {}) {
    this.transport = host instanceof TrainingTransport ? host : new TrainingTransport(host, { onBadInput: init.onBadInput })
    this.init = init
  }

  async start (): Promise<void> {
    await this.transport.start()
    this.unlisten = this.transport.listen((from, msg) => { void this.onMessage(from, msg) })
  }

  async stop (): Promise<void> {
    this.unlisten?.()
    await Promise.all([...this.workers.values()].map(async w => { await w.stop() }))
    this.workers.clear()
    await this.transport.stop()
  }

  /**
   * Joins a running job as a late or replacement peer: builds the trainer, loads the current
   * parameters from `donor` (a member), and asks the coordinator for a place next round.
   */
  async join (opts: { jobId: string, coordinator: string, donor: string, spec: TrainingSpec, rank: number, shards: number, signal?: AbortSignal }): Promise<TrainingWorker> {
    const trainer = await (this.init.createTrainer ?? defaultTrainerFactory)(opts.spec, opts.rank, opts.shards)
    const worker = this.track(new TrainingWorker({ transport: this.transport, jobId: opts.jobId, coordinator: opts.coordinator, spec: opts.spec, trainer, meter: this.init.meter }))
    await worker.start()
    await worker.joinFrom(opts.donor, { signal: opts.signal })
    return worker
  }

  private async onMessage (from: string, msg: TrainingMessage): Promise<void> {
    const inv = msg.invite
    if (inv == null || this.workers.has(inv.jobId)) return
    const reply = (accepted: boolean, reason = '', paramCount = 0): void => {
      this.transport.send(from, { inviteReply: { jobId: inv.jobId, accepted, reason, paramCount } })
    }
    try {
      if (this.workers.size >= (this.init.maxJobs ?? 2)) { reply(false, 'busy: too many training jobs'); return }
      const spec = decodeSpec(inv.spec)
      const verdict = this.init.accept?.(spec, from) ?? true
      if (verdict !== true) { reply(false, typeof verdict === 'string' ? verdict : 'refused'); return }
      const trainer = await (this.init.createTrainer ?? defaultTrainerFactory)(spec, inv.rank, Math.max(1, inv.shards))
      const worker = this.track(new TrainingWorker({ transport: this.transport, jobId: inv.jobId, coordinator: from, spec, trainer, meter: this.init.meter }))
      await worker.start()
      reply(true, '', trainer.paramCount)
    } catch (err) {
      log.error('invitation for %s refused: %s', inv.jobId, (err as Error).message)
      reply(false, (err as Error).message)
    }
  }

  private track (worker: TrainingWorker): TrainingWorker {
    this.workers.set(worker.jobId, worker)
    void worker.done.then(() => { this.workers.delete(worker.jobId) })
    return worker
  }
}
