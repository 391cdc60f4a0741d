// The peer side of a training job: for each round the coordinator starts, run the local steps,
// then average the parameter delta (params − last averaged params) with the round's members
// through the all-reduce machine, and report loss, accuracy and metered compute time.
// Averaging deltas instead of raw parameters is what makes top-k and int8 work: a delta is
// small and sparse-ish, the parameters are not.
import { performance } from 'node:perf_hooks'
import { channel } from 'node:diagnostics_channel'
import { logger } from '@libp2p/logger'
import { AllReducePeer, type RoundResult, type SliceChunk } from '../core/training/allreduce.js'
import type { TrainingTransport, TrainingMessage } from './transport.js'
import type { Trainer } from './trainer.js'
import type { TrainingSpec } from './spec.js'
import { DbcError } from '../errors.js'
import { dbc } from '../wire/gen/wire.js'

const log = logger('dbc:training:worker')
const allReduceChannel = channel('dbc:training:allreduce')

/** What a peer metered for one round; `meter` may turn it into a signed receipt. */
export interface RoundMetering {
  jobId: string
  round: number
  peer: string
  coordinator: string
  /** Wall time of the local steps (the trainer's compute), ms. */
  computeMs: number
  /** Process CPU time over the local steps, ms. */
  cpuMs: number
  startedAt: number
  finishedAt: number
  bytesIn: number
  bytesOut: number
  samples: number
  /** Whether the trainer ran the steps on a GPU (the built-in one never does): only then GPU-seconds are billed. */
  usesGpu?: boolean
}

export interface TrainingWorkerInit {
  transport: TrainingTransport
  jobId: string
  coordinator: string
  spec: TrainingSpec
  trainer: Trainer
  /** Returns an encoded SignedReceipt for the round, or undefined to send none. */
  meter?: (m: RoundMetering) => Uint8Array | undefined
  /** Smallest time left for an all-reduce when local steps overran the deadline, ms. */
  minAllReduceMs?: number
  /** Stop when the coordinator has been silent this long, ms (default 10 min). */
  idleTimeoutMs?: number
}

export interface WorkerRoundEvent { round: number, loss: number, accuracy: number, computeMs: number, result: RoundResult }

export class TrainingError extends DbcError {
  override name = 'TrainingError'
}

export class TrainingWorker {
  readonly jobId: string
  readonly self: string
  private readonly init: TrainingWorkerInit
  private readonly machine: AllReducePeer
  private reference: Float32Array | undefined
  private lastRound = -1
  private chain: Promise<void> = Promise.resolve()
  private timer: NodeJS.Timeout | undefined
  private waitingResult: ((r: RoundResult) => void) | undefined
  private unlisten: (() => void) | undefined
  private stateWaiter: ((msg: dbc.training.v1.StateResponse) => void) | undefined
  private finished = false
  /** A joiner refreshes its state from a member at the start of its first round. */
  private refreshState = false
  private resolveDone!: () => void
  /** Resolves when the coordinator finished the job (or stop() was called). */
  readonly done: Promise<void>
  readonly rounds: WorkerRoundEvent[] = []

  constructor (init: TrainingWorkerInit) {
    this.init = init
    this.jobId = init.jobId
    this.self = init.transport.self
    this.machine = new AllReducePeer({ self: this.self, codec: init.spec.codec, length: init.trainer.paramCount })
    this.done = new Promise(resolve => { this.resolveDone = resolve })
  }

  private idleTimer: NodeJS.Timeout | undefined

  /** A worker whose coordinator went silent (crashed submitter) must not hold a slot forever. */
  private touchCoordinator (): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer)
    if (this.finished) return
    this.idleTimer = setTimeout(() => {
      log('job %s: coordinator silent for too long, leaving', this.jobId)
      void this.stop()
    }, this.init.idleTimeoutMs ?? 600_000)
    this.idleTimer.unref()
  }

  /** The parameters after the last round this peer averaged (its copy of the shared model). */
  get parameters (): Float32Array | undefined { return this.reference === undefined ? undefined : Float32Array.from(this.reference) }

  /** Listens for the job's messages; the model's current parameters become the reference. */
  async start (): Promise<void> {
    this.reference = await this.init.trainer.getParams()
    this.unlisten = this.init.transport.listen((from, msg) => { this.onMessage(from, msg) })
    this.touchCoordinator()
  }

  /**
   * For a late or replacement peer: loads the current parameters from a member, then asks the
   * coordinator to be admitted from the next round on. The state is fetched again from a
   * member when the first round that includes this peer starts, so rounds the group finished
   * in between are not lost. Returns the number of rounds folded into the loaded state.
   */
  async joinFrom (donor: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
    const folded = await this.loadState(donor, 30_000, opts.signal)
    this.refreshState = true
    this.init.transport.send(this.init.coordinator, { join: { jobId: this.jobId } })
    return folded
  }

  /** Fetches and adopts a member's parameters; returns the rounds folded into them. */
  private async loadState (donor: string, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    const state = await new Promise<dbc.training.v1.StateResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stateWaiter = undefined
        reject(new TrainingError('STATE_TIMEOUT', `no state from ${donor} within ${Math.round(timeoutMs)} ms`, { hint: 'pick another member of the job as donor' }))
      }, timeoutMs)
      signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal?.reason) }, { once: true })
      this.stateWaiter = (m) => { clearTimeout(timer); resolve(m) }
      this.init.transport.send(donor, { stateRequest: { jobId: this.jobId } })
    })
    const params = bytesToFloats(state.params)
    if (params.length !== this.init.trainer.paramCount) throw new TrainingError('STATE_MISMATCH', `state from ${donor} has ${params.length} parameters, the model ${this.init.trainer.paramCount}`)
    await this.init.trainer.setParams(params)
    this.reference = params
    this.lastRound = state.round - 1
    return state.round
  }

  async stop (): Promise<void> {
    if (this.finished) return await this.done
    this.finished = true
    this.unlisten?.()
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer)
    // A round in progress ends at its own pace (it checks `finished`); a pending result is cut.
    this.waitingResult = undefined
    await this.init.trainer.close()
    this.resolveDone()
  }

  private onMessage (from: string, msg: TrainingMessage): void {
    if (this.finished) return
    if (from === this.init.coordinator) this.touchCoordinator()
    if (msg.slice != null && msg.slice.jobId === this.jobId) {
      const s = msg.slice
      const chunk: SliceChunk = { round: s.round, slice: s.slice, phase: s.phase, codec: s.codec, length: s.length, data: s.data, weight: s.weight }
      this.machine.handleChunk(performance.now(), from, chunk)
      this.pumpMachine()
    } else if (msg.roundStart != null && msg.roundStart.jobId === this.jobId && from === this.init.coordinator) {
      const rs = msg.roundStart
      const deadlineAt = performance.now() + rs.deadlineMs
      const learned = Promise.all(rs.addrs.slice(0, rs.members.length).map(async a => { await this.init.transport.learnAddresses(a.peer ?? '', a.addrs ?? []) }))
      this.chain = this.chain.then(async () => { await learned; await this.runRound(rs.round, rs.members, deadlineAt) }).catch(err => {
        log.error('round %d failed: %s', rs.round, (err as Error).message)
      })
    } else if (msg.stateRequest != null && msg.stateRequest.jobId === this.jobId) {
      if (this.reference !== undefined) this.init.transport.send(from, { stateResponse: { jobId: this.jobId, round: this.lastRound + 1, params: floatsToBytes(this.reference) } })
    } else if (msg.stateResponse != null && msg.stateResponse.jobId === this.jobId && this.stateWaiter !== undefined) {
      const w = this.stateWaiter
      this.stateWaiter = undefined
      w(msg.stateResponse)
    } else if (msg.finish != null && msg.finish.jobId === this.jobId && from === this.init.coordinator) {
      const sendModel = msg.finish.sendModel
      this.chain = this.chain.then(async () => {
        if (sendModel && this.reference !== undefined) {
          this.init.transport.send(from, { stateResponse: { jobId: this.jobId, round: this.lastRound + 1, params: floatsToBytes(this.reference), final: true } })
        }
        await this.stop()
      })
    }
  }

  private async runRound (round: number, members: string[], deadlineAt: number): Promise<void> {
    if (this.finished || round <= this.lastRound) return
    // Left out of a round (a straggler the coordinator dropped, then let back in): the others'
    // average of the missed rounds is not here, so load the state before taking part again.
    if (round > this.lastRound + 1) this.refreshState = true
    if (!members.includes(this.self)) return
    const { trainer, spec } = this.init
    if (this.refreshState) {
      this.refreshState = false
      const donor = members.find(m => m !== this.self)
      if (donor !== undefined) {
        const folded = await this.loadState(donor, Math.max(200, (deadlineAt - performance.now()) / 2))
        if (folded > round) return // the group finished this round without us; join the next
      }
    }
    const startedAt = Date.now()
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const step = await trainer.step(spec.localSteps)
    const computeMs = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const finishedAt = Date.now()
    const params = await trainer.getParams()
    const reference = this.reference ?? params
    const delta = new Float32Array(params.length)
    for (let i = 0; i < delta.length; i++) delta[i] = params[i] - reference[i]
    const now = performance.now()
    const result = await new Promise<RoundResult>(resolve => {
      this.waitingResult = resolve
      this.machine.start(now, round, members, delta, { deadlineMs: Math.max(this.init.minAllReduceMs ?? 200, deadlineAt - now), weight: step.samples })
      this.pumpMachine()
    })
    for (let i = 0; i < reference.length; i++) reference[i] += result.vector[i]
    this.reference = reference
    this.lastRound = round
    await trainer.setParams(reference)
    const evalEvery = spec.evalEvery
    const isLast = round === spec.rounds - 1
    const evaluates = members[0] === this.self && (isLast || (evalEvery > 0 && (round + 1) % evalEvery === 0))
    const accuracy = evaluates ? (await trainer.evaluate()).accuracy : NaN
    this.rounds.push({ round, loss: step.loss, accuracy, computeMs, result })
    allReduceChannel.publish(result) // the node's metrics (src/node/metrics) observe each all-reduce
    const receipt = this.init.meter?.({
      jobId: this.jobId,
      round,
      peer: this.self,
      coordinator: this.init.coordinator,
      computeMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      startedAt,
      finishedAt,
      bytesIn: result.bytesReceived,
      bytesOut: result.bytesSent,
      samples: step.samples,
      usesGpu: trainer.usesGpu === true
    })
    this.init.transport.send(this.init.coordinator, {
      report: {
        jobId: this.jobId,
        round,
        loss: step.loss,
        accuracy,
        computeMs,
        samples: step.samples,
        timedOut: result.timedOut,
        dropped: result.dropped,
        bytesSent: result.bytesSent,
        ...(receipt !== undefined ? { receipt } : {})
      }
    })
  }

  /** Sends what the machine produced, delivers a finished round, re-arms the deadline timer. */
  private pumpMachine (): void {
    for (const o of this.machine.pollOutbound()) {
      this.init.transport.send(o.to, { slice: { jobId: this.jobId, ...o.chunk } })
    }
    const r = this.machine.pollResult()
    if (r !== undefined && this.waitingResult !== undefined) {
      const w = this.waitingResult
      this.waitingResult = undefined
      w(r)
    }
    if (this.timer !== undefined) { clearTimeout(this.timer); this.timer = undefined }
    const next = this.machine.nextTimeout()
    if (next !== undefined && !this.finished) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.machine.handleTimeout(performance.now())
        this.pumpMachine()
      }, Math.max(0, next - performance.now()) + 1)
    }
  }
}

export function floatsToBytes (v: Float32Array): Uint8Array {
  // float32 little-endian (every platform Node runs on is little-endian)
  return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength))
}

export function bytesToFloats (b: Uint8Array): Float32Array {
  if (b.byteLength % 4 !== 0) throw new TrainingError('BAD_PARAMS', `${b.byteLength} bytes is not a whole number of float32 values`)
  const copy = new Uint8Array(b.byteLength)
  copy.set(b)
  return new Float32Array(copy.buffer)
}
