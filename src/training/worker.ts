// The peer side of a training job: for each round the coordinator starts, run the local steps,
// then average the parameter delta (params − last averaged params) with the round's members
// through the all-reduce machine, and report loss, accuracy and metered compute time.
// Averaging deltas instead of raw parameters is what makes top-k and int8 work: a delta is
// small and sparse-ish, the parameters are not.
import { performance } from 'node:perf_hooks'
import { channel } from 'node:diagnostics_channel'
import { logger } from '@libp2p/logger'
import { AllReducePeer, type RoundResult, type SliceChunk } from '../core/training/allreduce.js'
import { BandwidthEstimate } from '../core/training/partition.js'
import { MAX_ROUNDS_SAT_OUT } from '../core/training/coordinator.js'
import { StateServeLog } from './state-serve.js'
import { AllReducePump, type AllReduceStart } from './allreduce-pump.js'
import { StateFetch } from './state-fetch.js'
import type { TrainingTransport, TrainingMessage, TrainingMessageInput } from './transport.js'
import { memberRouting, type TrainingRouting } from './overlay-route.js'
import type { Trainer } from './trainer.js'
import type { TrainingSpec } from './spec.js'
import { TrainingError, bytesToFloats, floatsToBytes, type RoundMetering } from './worker-types.js'
import { dbc } from '../wire/gen/wire.js'
import { averagesOptimizer, stateDigest, stateProblem, type TrainingState } from '../core/training/state.js'
import { verifyStateSignature } from './state-sign.js'
import { bytesEqual } from '../core/identity/index.js'

export { TrainingError, bytesToFloats, floatsToBytes, type RoundMetering } from './worker-types.js'

const log = logger('dbc:training:worker')
const allReduceChannel = channel('dbc:training:allreduce')

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
  /** Signs a state digest with this node's key (sent with every state it hands out). */
  sign?: (digest: Uint8Array) => Uint8Array
  /**
   * Asked before each round this peer is named in: a refusal (e.g. PAYER_BEHIND: the payer's
   * vouchers lag the rounds delivered by more than the credit) sits the round out and tells the
   * coordinator why, as an InviteReply with accepted false and the code.
   */
  admitRound?: (round: number) => Promise<{ code: string, reason: string } | undefined>
}

/** A state this worker adopted from another peer (for status and tests). */
export interface StateLoad { from: string, round: number, optimizerRound: number, optimizerNorm: number, at: number }

/** Peers the coordinator named as joining, remembered per job (each may ask for the state). */
const MAX_ADMITTED = 64
/** How long a joiner waits for the state from each donor it was given (TrainingService's invitations). */
export const JOIN_LOAD_TIMEOUT_MS = 30_000
/** Joiners one report names as served (RoundReport.serving); the coordinator reads as many. */
export const MAX_SERVED_REPORTED = 8

/** Chunks of the optimizer vector carry vector = 1 (SliceChunk.vector); parameter deltas 0. */
const VECTOR_PARAMS = 0
const VECTOR_OPTIMIZER = 1

export interface WorkerRoundEvent { round: number, loss: number, accuracy: number, computeMs: number, result: RoundResult }

export class TrainingWorker {
  readonly jobId: string
  readonly self: string
  private readonly init: TrainingWorkerInit
  private readonly machine: AllReducePeer
  /** This peer's send bandwidth (reported each round), and the members' bandwidths per round from RoundStart. */
  private readonly sendBandwidth = new BandwidthEstimate()
  private readonly roundBandwidths = new Map<number, number[]>()
  /** The optimizer's all-reduce (momentum averaging), when the trainer exposes its state. */
  private optMachine: AllReducePeer | undefined
  private reference: Float32Array | undefined
  private lastRound = -1
  /** The momentum as last averaged with the group (what a joiner is handed), and its round. */
  private optimizerShared: Float32Array = new Float32Array(0)
  private optimizerRound = 0
  /** Members of the last round this worker saw, and peers the coordinator said are joining: who may ask for state. */
  private lastMembers: string[] = []
  private readonly admitted = new Set<string>()
  /** Joiners this member sent the state to since its last report (RoundReport.serving: the coordinator's evidence that they load). */
  private readonly servedJoiners = new Set<string>()
  /** States adopted from other peers. */
  readonly loads: StateLoad[] = []
  private chain: Promise<void> = Promise.resolve()
  private readonly pump: AllReducePump
  private unlisten: (() => void) | undefined
  private readonly stateFetch: StateFetch
  private finished = false
  /** Aborted by stop(): a state load in progress ends and asks no more. */
  private readonly stopping = new AbortController()
  /** The coordinator's Finish arrived (the worker stops once the round in progress, if any, ends). */
  private finishReceived = false
  /** A joiner refreshes its state from a member at the start of its first round. */
  private refreshState = false
  /** When each peer was last handed this worker's state, and of which round. */
  private readonly served = new StateServeLog()
  /** Digest of the state this worker holds (after its last round or load): checked against each RoundStart's agreed one. */
  private heldDigest: Uint8Array | undefined
  /** The held state is a later round's, taken on a join unchecked (orLater): the first round that includes this peer checks it. */
  private heldUnchecked = false
  /** Rounds in a row sat out because no member's state could be loaded. */
  private failedRefreshes = 0
  private resolveDone!: () => void
  /** Resolves when the coordinator finished the job (or stop() was called). */
  readonly done: Promise<void>
  readonly rounds: WorkerRoundEvent[] = []
  /** Rounds this peer sat out because admitRound refused them (status, tests). */
  refusedRounds = 0

  constructor (init: TrainingWorkerInit) {
    this.init = init
    this.jobId = init.jobId
    this.self = init.transport.self
    this.machine = new AllReducePeer({ self: this.self, codec: init.spec.codec, length: init.trainer.paramCount })
    this.done = new Promise(resolve => { this.resolveDone = resolve })
    this.stateFetch = new StateFetch(this.jobId, (to, msg) => { this.send(to, msg) })
    // what a machine produced goes to its member, tagged with the vector it averages
    this.pump = new AllReducePump((machine, to, chunk) => {
      this.send(to, { slice: { jobId: this.jobId, ...chunk, vector: machine === this.optMachine ? VECTOR_OPTIMIZER : VECTOR_PARAMS } })
    }, init.minAllReduceMs ?? 200)
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
    if (this.init.trainer.getOptimizerState !== undefined && this.init.trainer.setOptimizerState !== undefined) {
      const n = (await this.init.trainer.getOptimizerState()).length
      this.optMachine = new AllReducePeer({ self: this.self, codec: this.init.spec.codec, length: n })
    }
    this.unlisten = this.init.transport.listen((from, msg) => { this.onMessage(from, msg) })
    // the job's frames follow its spec's routing (overlay: none on a connection; direct: none over the overlay),
    // bounded by this node's operator's routing when another node coordinates (review F5); keyed by coordinator
    // (a job this node coordinates: its session holds the route)
    if (this.init.coordinator !== this.init.transport.self) this.init.transport.jobRoutes.set(this.jobId, this.routing, this.init.coordinator)
    this.touchCoordinator()
  }

  /** How this member's frames of the job travel: a remote job's routing within the operator's (memberRouting; a conflict was refused at the invitation, 'direct' here). */
  private get routing (): TrainingRouting | undefined {
    const t = this.init.transport
    const r = memberRouting(t.overlay.node(), this.init.spec.routing)
    return r === 'refuse' ? 'direct' : r
  }

  /** A frame of this job, routed as the job's (coordinator, id) route says: a remote job's never touches the node's private set. */
  private send (to: string, msg: TrainingMessageInput): void { this.init.transport.send(to, msg, undefined, this.init.coordinator) }

  /** Told to finish by its coordinator (or stopped): the job is over, `done` resolves once the worker has stopped. */
  get finishing (): boolean { return this.finishReceived || this.finished }

  /** The coordinator of the job (the peer whose RoundStarts this worker follows). */
  get coordinator (): string { return this.init.coordinator }

  /** The round this worker's state has folded in (the next round it would run). */
  get round (): number { return this.lastRound + 1 }

  /**
   * For a late or replacement peer, or every member of a resumed job: loads the state of round
   * `fromRound` (parameters, optimizer state, round number) from the first of `donors` whose
   * signed state matches `digest` (the digest the coordinator's members agreed on), then asks the
   * coordinator to be admitted from the next round. No round runs before the load ends. When no
   * donor's state matches (they moved on to a later round), the state is loaded again, checked
   * against the RoundStart's digest, when the first round that includes this peer starts.
   */
  async joinFrom (donors: string[], opts: { fromRound?: number, digest?: Uint8Array, signal?: AbortSignal, timeoutMs?: number } = {}): Promise<number> {
    const load = (async (): Promise<number> => {
      for (const donor of donors.filter(d => d !== this.self).slice(0, 8)) {
        if (this.finished) return -1
        try {
          // a later round's state too: the group moves on while a joiner sets up its trainer (rounds
          // of 0.5 s, a setup of 3 s: every donor's state was refused as too new, whole states sent
          // for nothing); its digest is checked against the first RoundStart it takes part in
          return await this.loadState(donor, { round: opts.fromRound, digest: opts.digest, orLater: true }, opts.timeoutMs ?? JOIN_LOAD_TIMEOUT_MS, opts.signal)
        } catch (err) {
          log('job %s: state from %s refused: %s', this.jobId, donor, (err as Error).message)
        }
      }
      this.refreshState = true
      return -1
    })()
    this.chain = this.chain.then(async () => { await load.catch(() => {}) })
    const folded = await load
    if (!this.finished) this.send(this.init.coordinator, { join: { jobId: this.jobId } })
    return folded
  }

  /** Fetches, checks and adopts a peer's state; returns the rounds folded into it. */
  /**
   * `orLater`: a state of a later round than `expect.round` is taken too (signed by its donor; the
   * digest the members agreed on is known only for `expect.round`): runRound loads the agreed state
   * before a round whose RoundStart digest differs, so an unchecked state is never trained on.
   */
  private async loadState (donor: string, expect: { round?: number, digest?: Uint8Array, orLater?: boolean }, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    const msg = await this.stateFetch.fetch(donor, expect.round, timeoutMs, signal === undefined ? [this.stopping.signal] : [this.stopping.signal, signal])
    const state: TrainingState = { jobId: this.jobId, round: msg.round, params: bytesToFloats(msg.params), optimizer: bytesToFloats(msg.optimizer ?? new Uint8Array()), optimizerRound: msg.optimizerRound ?? 0 }
    const later = expect.orLater === true && expect.round !== undefined && state.round > expect.round
    const problem = stateProblem(state, { params: this.init.trainer.paramCount, optimizer: this.optMachine?.length ?? 0, ...(later ? {} : { round: expect.round, digest: expect.digest }) })
    if (problem !== undefined) throw new TrainingError('STATE_REJECTED', `state from ${donor}: ${problem}`)
    const digest = stateDigest(state)
    if (!verifyStateSignature(donor, digest, msg.signature ?? new Uint8Array())) throw new TrainingError('STATE_REJECTED', `state from ${donor} is not signed by it`)
    await this.init.trainer.setParams(state.params)
    if (state.optimizer.length > 0) await this.init.trainer.setOptimizerState?.(state.optimizer)
    this.reference = Float32Array.from(state.params)
    this.optimizerShared = state.optimizer
    this.optimizerRound = state.optimizerRound
    this.lastRound = state.round - 1
    this.heldDigest = digest
    this.heldUnchecked = later
    let norm = 0
    for (const v of state.optimizer) norm += v * v
    this.loads.push({ from: donor, round: state.round, optimizerRound: state.optimizerRound, optimizerNorm: Math.sqrt(norm), at: Date.now() })
    return state.round
  }

  /** This worker's state as handed to a joiner or the coordinator, signed when it can sign. */
  private stateMessage (final = false): dbc.training.v1.IStateResponse | undefined {
    if (this.reference === undefined) return undefined
    const state: TrainingState = { jobId: this.jobId, round: this.lastRound + 1, params: this.reference, optimizer: this.optimizerShared, optimizerRound: this.optimizerRound }
    const signature = this.init.sign?.(stateDigest(state))
    return { jobId: this.jobId, round: state.round, params: floatsToBytes(state.params), optimizer: floatsToBytes(state.optimizer), optimizerRound: state.optimizerRound, final, ...(signature !== undefined ? { signature } : {}) }
  }

  async stop (): Promise<void> {
    if (this.finished) return await this.done
    this.finished = true
    this.stopping.abort(new TrainingError('STOPPED', 'the training worker stopped'))
    this.unlisten?.()
    // A round in progress ends at its own pace (it checks `finished`); a pending result is cut.
    this.pump.stop()
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer)
    await this.init.trainer.close()
    // frames already queued keep their routing; a later message of this job follows the node's
    if (this.init.coordinator !== this.init.transport.self) this.init.transport.jobRoutes.delete(this.jobId, this.init.coordinator)
    this.resolveDone()
  }

  private onMessage (from: string, msg: TrainingMessage): void {
    if (this.finished) return
    if (from === this.init.coordinator) this.touchCoordinator()
    if (msg.slice != null && msg.slice.jobId === this.jobId) {
      const s = msg.slice
      const chunk: SliceChunk = { round: s.round, slice: s.slice, phase: s.phase, codec: s.codec, length: s.length, data: s.data, weight: s.weight, offset: s.offset }
      const machine = s.vector === VECTOR_OPTIMIZER ? this.optMachine : s.vector === VECTOR_PARAMS ? this.machine : undefined
      if (machine === undefined) return
      this.pump.chunk(machine, from, chunk)
    } else if (msg.roundStart != null && msg.roundStart.jobId === this.jobId && from === this.init.coordinator) {
      const rs = msg.roundStart
      if (rs.bandwidths.length > 0 && this.roundBandwidths.size < 16) this.roundBandwidths.set(rs.round, rs.bandwidths.slice(0, rs.members.length))
      this.lastMembers = rs.members.slice(0, 128)
      const digest = rs.stateHash?.length > 0 ? Uint8Array.from(rs.stateHash) : undefined
      const deadlineAt = performance.now() + rs.deadlineMs
      const learned = Promise.all(rs.addrs.slice(0, rs.members.length).map(async a => { await this.init.transport.learnAddresses(a.peer ?? '', a.addrs ?? [], from) }))
      this.chain = this.chain.then(async () => { await learned; await this.runRound(rs.round, rs.members, deadlineAt, digest, rs.optimizerSkip === true) }).catch(err => {
        log.error('round %d failed: %s', rs.round, (err as Error).message)
      })
    } else if (msg.stateRequest != null && msg.stateRequest.jobId === this.jobId) {
      // only the coordinator, the round's members and peers the coordinator named may read the state
      if (from !== this.init.coordinator && !this.lastMembers.includes(from) && !this.admitted.has(from)) { log('job %s: state request from %s, not a member: ignored', this.jobId, from); return }
      // one copy of a round's state per peer per STATE_SERVE_GAP_MS: a request is a few bytes, the
      // answer the whole model (a peer asking again and again must not make us queue copy after copy)
      if (!this.served.allow(from, this.lastRound, performance.now())) { log('job %s: state request from %s answered a moment ago: ignored', this.jobId, from); return }
      const state = this.stateMessage()
      if (state !== undefined) this.send(from, { stateResponse: state })
      if (state !== undefined && this.admitted.has(from) && this.servedJoiners.size < MAX_SERVED_REPORTED) this.servedJoiners.add(from)
    } else if (msg.join != null && msg.join.jobId === this.jobId && from === this.init.coordinator && (msg.join.peer ?? '') !== '') {
      if (this.admitted.size >= MAX_ADMITTED) this.admitted.delete(this.admitted.values().next().value as string)
      this.admitted.add(msg.join.peer)
    } else if (msg.stateResponse != null && msg.stateResponse.jobId === this.jobId) {
      this.stateFetch.deliver(from, msg.stateResponse)
    } else if (msg.finish != null && msg.finish.jobId === this.jobId && from === this.init.coordinator) {
      const sendModel = msg.finish.sendModel
      this.finishReceived = true
      this.chain = this.chain.then(async () => {
        const state = sendModel ? this.stateMessage(true) : undefined
        if (state !== undefined) this.send(from, { stateResponse: state })
        await this.stop()
      })
    }
  }

  private async runRound (round: number, members: string[], deadlineAt: number, digest?: Uint8Array, optimizerSkip = false): Promise<void> {
    for (const r of this.roundBandwidths.keys()) if (r < round) this.roundBandwidths.delete(r)
    // a round that includes this peer before the round of a state it took unchecked (a donor that named
    // a round the group has not reached): not "done already" (it would sit out every round): load its state
    if (this.heldUnchecked && round <= this.lastRound && members.includes(this.self)) { this.lastRound = round - 1; this.refreshState = true }
    if (this.finished || round <= this.lastRound) return
    // Left out of a round (a straggler the coordinator dropped, then let back in): the others'
    // average of the missed rounds is not here, so load the state before taking part again.
    if (round > this.lastRound + 1) this.refreshState = true
    // A member whose state is not the one the round's members agreed on (its all-reduce reached
    // nobody: it applied its own average, the others the fallback) loads the agreed state first.
    if (digest !== undefined && this.heldDigest !== undefined && round === this.lastRound + 1 && !bytesEqual(digest, this.heldDigest)) {
      if (!this.refreshState) log('job %s: state before round %d differs from the agreed one: loading it from a member', this.jobId, round)
      this.refreshState = true
    }
    if (!members.includes(this.self)) return
    const refused = await this.init.admitRound?.(round).catch((err: Error) => ({ code: 'ROUND_REFUSED', reason: err.message }))
    if (refused !== undefined && !this.finished) {
      log('job %s: round %d refused: %s: %s', this.jobId, round, refused.code, refused.reason)
      this.send(this.init.coordinator, { inviteReply: { jobId: this.jobId, accepted: false, code: refused.code, reason: `round ${round}: ${refused.code}: ${refused.reason}`.slice(0, 500), paramCount: 0 } })
      this.refusedRounds++
      return
    }
    if (this.finished) return
    const { trainer, spec } = this.init
    if (this.refreshState) {
      this.refreshState = false
      // the state the round starts from, checked against the digest its members agreed on
      let folded = -1
      for (const donor of members.filter(m => m !== this.self).slice(0, 3)) {
        try {
          folded = await this.loadState(donor, { round, digest }, Math.max(200, (deadlineAt - performance.now()) / 2))
          break
        } catch (err) {
          log('job %s: state for round %d from %s refused: %s', this.jobId, round, donor, (err as Error).message)
        }
      }
      if (folded !== round) {
        // sit this round out and ask to be in the next one: the coordinator drops a member that
        // stays silent, and a dropped member gets no RoundStart to try again from (a bounded number
        // of tries: donors that never answer must not stall the group's rounds for ever)
        this.refreshState = true
        if (++this.failedRefreshes <= MAX_ROUNDS_SAT_OUT) this.send(this.init.coordinator, { join: { jobId: this.jobId } })
        return
      }
      this.failedRefreshes = 0
    }
    this.heldUnchecked = false // trained on: checked against the round's digest, or loaded for it
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
    const sent0 = { ...this.init.transport.stats }
    // a part whose owner goes silent: no update there, on every member alike (they stay in agreement)
    const result = await this.allReduce(this.machine, { round, members, vector: delta, deadlineAt, weight: step.samples, fallback: new Float32Array(delta.length) })
    this.sendBandwidth.observe(this.init.transport.stats.bytesSent - sent0.bytesSent, this.init.transport.stats.sendBusyMs - sent0.sendBusyMs)
    for (let i = 0; i < reference.length; i++) reference[i] += result.vector[i]
    this.reference = reference
    this.lastRound = round
    await trainer.setParams(reference)
    // the optimizer's all-reduce can miss a member the parameters' did not: the round reports both
    let optimizerDropped: string[] = []
    let optimizerTimedOut = false
    if (this.optMachine !== undefined && !optimizerSkip && averagesOptimizer(round, spec.averageOptimizerEvery)) {
      // the momentum, averaged like the parameters: members' optimizers stay together, and a joiner gets the group's
      const local = await trainer.getOptimizerState!()
      // a slice whose owner went silent keeps the last averaged momentum; before the first averaging
      // there is none: zeros (a fresh optimizer's), the same on every survivor (review s11 L2)
      const shared = this.optimizerShared.length === local.length ? this.optimizerShared : new Float32Array(local.length)
      const averaged = await this.allReduce(this.optMachine, { round, members, vector: local, deadlineAt, weight: step.samples, fallback: shared })
      await trainer.setOptimizerState!(averaged.vector)
      optimizerDropped = averaged.dropped
      optimizerTimedOut = averaged.timedOut
      this.optimizerShared = Float32Array.from(averaged.vector)
      this.optimizerRound = round + 1
    }
    const stateHash = stateDigest({ jobId: this.jobId, round: round + 1, params: reference, optimizer: this.optimizerShared, optimizerRound: this.optimizerRound })
    this.heldDigest = stateHash
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
      usesGpu: trainer.usesGpu === true,
      gpus: spec.gpu?.count ?? 0
    })
    this.send(this.init.coordinator, {
      report: {
        jobId: this.jobId,
        round,
        loss: step.loss,
        accuracy,
        computeMs,
        samples: step.samples,
        timedOut: result.timedOut || optimizerTimedOut,
        dropped: optimizerDropped.length === 0 ? result.dropped : [...new Set([...result.dropped, ...optimizerDropped])],
        bytesSent: result.bytesSent,
        stateHash,
        bandwidth: this.sendBandwidth.value ?? 0,
        ...(receipt !== undefined ? { receipt } : {}),
        serving: [...this.servedJoiners],
        reportsServing: true
      }
    })
    this.servedJoiners.clear()
  }

  /** Averages a vector with the round's members through `machine` (allreduce-pump.ts). */
  private async allReduce (machine: AllReducePeer, start: Omit<AllReduceStart, 'bandwidths'>): Promise<RoundResult> {
    return await this.pump.run(machine, { ...start, bandwidths: this.roundBandwidths.get(start.round) })
  }
}
