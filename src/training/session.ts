// The submitter's side of a training job: invite the group, drive the round coordinator with
// real timers, relay progress (round, loss, accuracy), collect per-round metering and receipts,
// and fetch the final model. The daemon's `dbc job submit` calls runTrainingJob().
import { performance } from 'node:perf_hooks'
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { RoundCoordinator, type CoordinatorOutput } from '../core/training/coordinator.js'
import { encodeSpec, parseTrainingSpec, type TrainingSpec, type TrainingSpecInput } from './spec.js'
import { TrainingError, bytesToFloats, JOIN_LOAD_TIMEOUT_MS, MAX_SERVED_REPORTED } from './worker.js'
import { joinerRank, replacementsWanted, toHexString, fromHexString } from '../core/training/state.js'
import type { TrainingTransport, TrainingMessage } from './transport.js'
import type { dbc } from '../wire/gen/wire.js'
import { encodeModel } from './model-file.js'
import { JoinerWaits, MAX_INVITATIONS, MAX_JOIN_DONORS } from './joiners.js'
import { CheckpointKeeper } from './checkpoint-keeper.js'
import { cleanReason, describeRefusals, type InviteRefusal, type RoundMeterRecord, type TrainingCheckpoint, type TrainingProgress, type TrainingResult, type ResumePoint } from './session-types.js'

export { MODEL_FORMAT, encodeModel, decodeModel, type DecodedModel } from './model-file.js'
export { cleanReason, describeRefusals, type InviteRefusal, type RoundMeterRecord, type TrainingCheckpoint, type TrainingProgress, type TrainingResult, type ResumePoint } from './session-types.js'

export interface TrainingSessionInit {
  transport: TrainingTransport
  spec: TrainingSpecInput | TrainingSpec
  /** Peer ids of the group, in rank (shard) order; the scheduler's placement picks them. */
  peers: string[]
  jobId?: string
  inviteTimeoutMs?: number
  signal?: AbortSignal
  /** Resumes a job this node coordinated before a restart (same job id and spec). */
  resume?: ResumePoint
  /** Signs state digests with this node's key (a resumed job's members load its checkpoint from here). */
  sign?: (digest: Uint8Array) => Uint8Array
  /** Called with the checked state after each completed round the members agreed on. */
  checkpoint?: (c: TrainingCheckpoint) => void
  /** Peers that could join the job, none of `exclude`: the group grows back to spec.groupSize from these. */
  candidates?: (exclude: string[]) => Promise<string[]>
  /** How long an invited joiner has to load the state and ask to join, ms (default 60 s). */
  joinTimeoutMs?: number
  /** What an accepted joiner's load may take per donor it was given (default JOIN_LOAD_TIMEOUT_MS, the worker's). */
  joinLoadTimeoutMs?: number
  /** Who pays the rounds (escrow, payer, the payer's LeaseAuth over this node): sent with every invitation. */
  payment?: () => Promise<dbc.task.v1.IPaymentTerms | undefined>
}

/** Codes a member refuses a round with that may name the job's failure (src/jobs/payment-gate.ts admitRound). */
const ROUND_PAYMENT_CODES: ReadonlySet<string> = new Set(['PAYER_BEHIND', 'NO_ESCROW', 'ESCROW_TOO_SMALL', 'ESCROW_CLOSED', 'ESCROW_REFUNDED', 'ESCROW_WINDOW_SHORT'])

export interface TrainingSessionEvents {
  progress: [TrainingProgress]
  metered: [RoundMeterRecord]
}

/** One training job driven from the submitter. Events: 'progress', 'metered'. */
export class TrainingSession extends EventEmitter<TrainingSessionEvents> {
  readonly jobId: string
  readonly spec: TrainingSpec
  private readonly init: TrainingSessionInit
  private coordinator: RoundCoordinator | undefined
  private timer: NodeJS.Timeout | undefined
  private readonly history: TrainingProgress[] = []
  private readonly metering: RoundMeterRecord[] = []
  private readonly receipts = new Map<string, Uint8Array>()
  /** The invited peers that did not join, with their reasons (filled once invitations are answered). */
  readonly refusals: InviteRefusal[] = []
  /** Members that refused a round of the running job (the latest per peer and code), also listed in `refusals`. */
  private readonly roundRefusals: InviteRefusal[] = []
  /** The payment terms sent with the invitations (read once, before the first). */
  private paymentTerms?: dbc.task.v1.IPaymentTerms
  /** Each member's data shard (rank; read by `dbc job explain`) and the number of shards the data set is cut into. */
  readonly ranks = new Map<string, number>()
  private shards = 0
  /** Members whose trainers keep no optimizer state (their InviteReply said so): rounds with them skip the momentum averaging. */
  private readonly noOptimizer = new Set<string>()
  /** Those of `members` whose invitation reply said they keep no optimizer state: a round with any of them averages no momentum (review s13 L8: the user sees who turned it off). */
  momentumOffBy (members: string[]): string[] { return members.filter(m => this.noOptimizer.has(m)) }
  /** The first invitations' timeouts still running (cleared when the run ends: a cancel while they are out). */
  private readonly inviteTimers = new Set<NodeJS.Timeout>()
  /**
   * Members dropped from a round (silent, or missed by the all-reduce) that are not back: each may
   * still run its worker and may come back with a late report (review s14 L6). They count as held
   * (PEERS_BUSY) and are told the job ended, like the live members, instead of idling out later.
   */
  private readonly droppedMembers = new Set<string>()
  /** Peers invited to join the running job and their waits (joiners.ts). */
  private readonly joiners: JoinerWaits
  /** Every peer that was ever in the group or invited (not asked again as a replacement). */
  private readonly tried = new Set<string>()
  private lookingForPeers = false
  /** The round the job resumed from (0 for a fresh job). */
  readonly resumedFrom: number
  /** The checked state of the last round the members agreed on (checkpoint-keeper.ts). */
  private readonly checkpoints: CheckpointKeeper

  constructor (init: TrainingSessionInit) {
    super()
    this.init = init
    this.spec = parseTrainingSpec(init.spec)
    this.jobId = init.jobId ?? randomBytes(8).toString('hex')
    this.checkpoints = new CheckpointKeeper({ jobId: this.jobId, transport: init.transport, sign: init.sign, checkpoint: init.checkpoint, ranks: this.ranks, shards: () => this.shards, members: () => this.coordinator?.currentMembers ?? [] }, init.resume?.checkpoint)
    this.resumedFrom = init.resume?.checkpoint?.round ?? 0
    this.joiners = new JoinerWaits({
      joinTimeoutMs: init.joinTimeoutMs ?? 60_000,
      joinLoadTimeoutMs: init.joinLoadTimeoutMs ?? JOIN_LOAD_TIMEOUT_MS,
      // a peer whose invitations brought no Join may be invited again, a bounded number of times
      onLapse: (peer, invitations) => {
        const c = this.coordinator
        if (invitations < MAX_INVITATIONS && c !== undefined && !(c.currentMembers.includes(peer) || c.joiningMembers.includes(peer))) this.tried.delete(peer)
      }
    })
    if (init.resume !== undefined) this.history.push(...init.resume.history.filter(h => h.round < this.resumedFrom))
    if (init.peers.length === 0) throw new TrainingError('NO_PEERS', 'a training job needs at least one peer', { hint: 'place the job on a group of compute peers first' })
  }

  async run (): Promise<TrainingResult> {
    const { transport, signal } = this.init
    signal?.throwIfAborted()
    // the job's frames follow its spec's routing (overlay: none on a connection; direct: none over the overlay),
    // else the node's: recorded either way, as a job this node coordinates (the only kind that touches the private set)
    transport.jobRoutes.set(this.jobId, this.spec.routing ?? transport.overlay.mode())
    const pending = new Map<string, (msg: TrainingMessage) => void>()
    let finalModel: ((m: { from: string, params: Uint8Array }) => void) | undefined
    const unlisten = transport.listen((from, msg) => {
      if (msg.inviteReply != null && msg.inviteReply.jobId === this.jobId) {
        // a member whose trainer keeps no optimizer state: no round with it averages the momentum
        if (msg.inviteReply.accepted && msg.inviteReply.noOptimizer === true && this.ranks.has(from) && this.noOptimizer.size < 1024) this.noOptimizer.add(from)
        const answer = pending.get(from)
        if (answer !== undefined) answer(msg)
        else if (msg.inviteReply.accepted) this.joiners.accepted(from, this.coordinator?.currentMembers.length ?? 1, this.history.length > 0 ? this.history[this.history.length - 1].deadlineMs : 0)
        else if (this.ranks.has(from)) this.memberRefused(from, msg.inviteReply)
      }
      else if (msg.report != null && msg.report.jobId === this.jobId) {
        const r = msg.report
        if (r.receipt != null && r.receipt.length > 0) this.receipts.set(`${from}/${r.round}`, r.receipt)
        if (r.reportsServing === true && this.ranks.has(from)) this.joiners.reportsServing(from)
        for (const p of r.serving.slice(0, MAX_SERVED_REPORTED)) this.joiners.served(p, from)
        this.coordinator?.handleReport(performance.now(), from, { round: r.round, loss: r.loss, accuracy: r.accuracy, computeMs: r.computeMs, samples: r.samples, timedOut: r.timedOut, dropped: r.dropped, bytesSent: r.bytesSent, stateDigest: r.stateHash?.length > 0 ? toHexString(r.stateHash) : undefined, bandwidth: r.bandwidth })
        this.pump()
      } else if (msg.join != null && msg.join.jobId === this.jobId) {
        // only peers this coordinator invited (or that were members) are admitted
        if (!this.joiners.has(from) && !this.ranks.has(from)) return
        this.joiners.joined(from)
        this.coordinator?.handleJoin(performance.now(), from)
      } else if (msg.stateResponse != null && msg.stateResponse.jobId === this.jobId && msg.stateResponse.final) {
        finalModel?.({ from, params: msg.stateResponse.params })
      } else if (msg.stateResponse != null && msg.stateResponse.jobId === this.jobId) {
        this.checkpoints.onState(from, msg.stateResponse)
      } else if (msg.stateRequest != null && msg.stateRequest.jobId === this.jobId) {
        this.checkpoints.serve(from)
      }
    })
    try {
      // a cancel (or the node's stop) while the invitations are out ends the job now: the peers invited are told
      const members = await raceAbort(this.invite(pending), signal, () => { this.stopPeers('cancelled by the submitter') })
      const minPeers = this.spec.minPeers ?? Math.max(1, Math.ceil(this.init.peers.length / 2))
      if (members.length < minPeers) {
        const why = describeRefusals(this.refusals)
        if (members.length === 0) throw new TrainingError('INVITES_REFUSED', `all invited peers refused: ${why}`, { hint: 'pick peers that offer what the spec needs (model.trainer names one of a provider\'s `trainers:`)', data: { refusals: this.refusals } })
        throw new TrainingError('GROUP_TOO_SMALL', `only ${members.length} of ${this.init.peers.length} peers accepted the job, it needs ${minPeers}; refused: ${why}`, { hint: 'place the job on more peers or lower minPeers', data: { refusals: this.refusals } })
      }
      const outcome = await new Promise<{ params: Uint8Array, members: string[] }>((resolve, reject) => {
        const onAbort = (): void => { this.stopPeers('cancelled by the submitter'); reject(signal?.reason ?? new Error('aborted')) }
        signal?.addEventListener('abort', onAbort, { once: true })
        if (signal?.aborted === true) onAbort()
        this.onOutput = (o) => {
          if (o.kind === 'failed') {
            this.stopPeers(o.reason)
            // members that refused rounds (PAYER_BEHIND: the payer's vouchers lag their work) say why the group shrank
            const last = this.roundRefusals.length > 0 ? this.roundRefusals[this.roundRefusals.length - 1] : undefined
            // only a payment code names the failure: a member must not pick the job's code (NODE_STOPPING keeps a job running)
            if (last?.code !== undefined && ROUND_PAYMENT_CODES.has(last.code)) reject(new TrainingError(last.code, `${o.reason}; members refused rounds: ${describeRefusals(this.roundRefusals)}`, { hint: last.code === 'PAYER_BEHIND' ? 'the members were not paid for their rounds: check the payer (vouchers, escrow) and run the job again' : 'check why the members refused', data: { refusals: this.refusals } }))
            else reject(new TrainingError('TRAINING_FAILED', o.reason, { hint: 'check the peers; a job fails when too few of them stay alive' }))
          }
          if (o.kind === 'finish') {
            // Two members send the model, so one dying at the very end does not lose the job;
            // after an fp32/int8/... round every member holds the same parameters.
            const senders = [o.modelFrom, ...o.to.filter(p => p !== o.modelFrom)].slice(0, 2)
            const timer = setTimeout(() => { reject(new TrainingError('MODEL_TIMEOUT', `no final model from ${senders.join(' or ')} within 30 s`, { hint: 'the job\'s last members stopped answering; run it again' })) }, 30_000)
            finalModel = ({ from, params }) => {
              if (!senders.includes(from)) return
              clearTimeout(timer)
              finalModel = undefined
              resolve({ params, members: o.to })
            }
            for (const p of o.to) transport.send(p, { finish: { jobId: this.jobId, round: o.round, sendModel: senders.includes(p) } })
            // members dropped on the way (not back) stop their workers now, not when they idle out
            for (const p of this.droppedMembers) if (!o.to.includes(p)) transport.send(p, { finish: { jobId: this.jobId, round: o.round, sendModel: false } })
          }
        }
        this.coordinator = new RoundCoordinator({ members, rounds: this.spec.rounds, minMembers: minPeers, deadline: this.spec.deadline, startRound: this.resumedFrom, startDigest: this.checkpoints.latest?.digest })
        this.coordinator.start(performance.now())
        this.pump()
      })
      const params = bytesToFloats(outcome.params)
      const lastEval = [...this.history].reverse().find(h => Number.isFinite(h.accuracy))
      return {
        jobId: this.jobId,
        spec: this.spec,
        params,
        model: encodeModel(this.spec, params),
        accuracy: lastEval?.accuracy ?? NaN,
        history: this.history,
        metering: this.metering,
        members: outcome.members
      }
    } finally {
      unlisten()
      // frames already queued keep their routing
      transport.jobRoutes.delete(this.jobId)
      if (this.timer !== undefined) clearTimeout(this.timer)
      this.joiners.clear()
      // invitations a cancel left unanswered: no refusal added to the ended job, no timer left (review s14 L2)
      for (const t of this.inviteTimers) clearTimeout(t)
      this.inviteTimers.clear()
      this.onOutput = undefined
    }
  }

  /** The state this job would resume from now (the last checked checkpoint). */
  get checkpointState (): TrainingCheckpoint | undefined { return this.checkpoints.latest }

  /**
   * Invites `peer` into the running job: it loads the state of the next round from the members
   * (checked against their agreed digest) and is admitted from the round after its Join.
   */
  addMember (peer: string): boolean {
    const c = this.coordinator
    if (c === undefined || c.done || this.joiners.has(peer) || c.currentMembers.includes(peer) || c.joiningMembers.includes(peer)) return false
    const digest = c.agreedStateDigest
    const fromRound = c.upcomingRound
    const donors = c.currentMembers
    if (digest === undefined || fromRound === 0 || donors.length === 0) return false
    this.tried.add(peer)
    const rank = this.ranks.get(peer) ?? joinerRank(this.shards, [...this.ranks.entries()].filter(([p]) => donors.includes(p)).map(([, r]) => r))
    this.ranks.set(peer, rank)
    // the donors answer this peer's StateRequest only once told it is joining
    for (const d of donors) this.init.transport.send(d, { join: { jobId: this.jobId, peer } })
    // an invitation that brings no Join in time (lost, refused as busy, a trainer that took too long)
    // may be sent again later, a bounded number of times (joiners.ts)
    // with the donors' addresses (we hold connections to our members): a joiner that knows none of
    // them dials them at once, instead of asking for the state over the overlay while they open
    const named = donors.slice(0, MAX_JOIN_DONORS)
    this.joiners.invited(peer, named)
    const transport = this.init.transport
    // (none in a routing: overlay job: no frame of it uses a connection; review s13 L2)
    const overlayOnly = this.spec.routing === 'overlay'
    void Promise.all(named.map(async d => ({ peer: d, addrs: overlayOnly ? [] : await transport.addressesOf(d) }))).then(donorAddrs => {
      if (c.done || !this.joiners.has(peer)) return
      transport.send(peer, { invite: { jobId: this.jobId, spec: encodeSpec(this.spec), rank, shards: this.shards, fromRound, stateHash: fromHexString(digest), donors: named, donorAddrs, ...(this.paymentTerms !== undefined ? { payment: this.paymentTerms } : {}) } })
    })
    return true
  }

  /** The group lost members (or started short): invite peers until it is back at its configured size. */
  private growBack (): void {
    const c = this.coordinator
    const find = this.init.candidates
    if (c === undefined || c.done || find === undefined || this.lookingForPeers || c.agreedStateDigest === undefined) return
    const wanted = replacementsWanted(this.spec.groupSize, c.currentMembers.length, c.joiningMembers.length + this.joiners.size)
    if (wanted === 0) return
    this.lookingForPeers = true
    void find([...this.tried, ...c.currentMembers]).then(peers => {
      for (const p of peers.filter(p => !this.tried.has(p)).slice(0, wanted)) this.addMember(p)
    }, () => {}).finally(() => { this.lookingForPeers = false })
  }

  private onOutput: ((o: CoordinatorOutput) => void) | undefined

  /**
   * A member refused a round (an InviteReply with accepted false mid-job, e.g. PAYER_BEHIND): shown
   * in the job's refusals, the latest per peer and code (bounded: a member cannot grow the list).
   */
  private memberRefused (from: string, reply: { code?: string, reason?: string }): void {
    const code = reply.code ?? ''
    const r: InviteRefusal = { peer: from, reason: cleanReason(reply.reason ?? ''), ...(/^[A-Z_]{1,40}$/.test(code) ? { code } : {}) }
    for (const list of [this.roundRefusals, this.refusals]) {
      const i = list.findIndex(x => x.peer === r.peer && x.code === r.code)
      if (i >= 0) list.splice(i, 1)
      if (list.length >= 256) list.shift()
      list.push(r)
    }
  }

  /** The peers this job holds now: its members, those joining and those invited (before the group forms: the peers it was placed on). */
  heldPeers (): string[] {
    const c = this.coordinator
    return c === undefined ? [...this.init.peers] : [...new Set([...c.currentMembers, ...c.joiningMembers, ...this.joiners.peers(), ...this.droppedMembers])]
  }

  /** Tells every peer still in the job to stop (failure or cancel). */
  private stopPeers (reason: string): void {
    const members = this.coordinator?.currentMembers ?? this.init.peers
    for (const p of new Set([...members, ...this.droppedMembers])) this.init.transport.send(p, { finish: { jobId: this.jobId, round: 0, sendModel: false, reason } })
  }

  private async invite (pending: Map<string, (msg: TrainingMessage) => void>): Promise<string[]> {
    this.paymentTerms = await this.init.payment?.()
    const payment = this.paymentTerms !== undefined ? { payment: this.paymentTerms } : {}
    const { transport, peers } = this.init
    const spec = encodeSpec(this.spec)
    const cp = this.checkpoints.latest
    // a resumed job keeps each member's shard; its members load the checkpoint from this node
    this.shards = cp?.shards ?? peers.length
    peers.forEach((p, i) => { this.ranks.set(p, cp?.ranks[p] ?? i); this.tried.add(p) })
    const resume = cp !== undefined ? { fromRound: cp.round, stateHash: fromHexString(cp.digest), donors: [transport.self] } : {}
    const timeoutMs = this.init.inviteTimeoutMs ?? 30_000
    const replies = await Promise.all(peers.map(async (peer, rank) => await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => {
        this.inviteTimers.delete(timer)
        pending.delete(peer)
        this.refusals.push({ peer, reason: `no answer within ${Math.round(timeoutMs / 1000)} s` })
        resolve(false)
      }, timeoutMs)
      this.inviteTimers.add(timer)
      pending.set(peer, (msg) => {
        clearTimeout(timer)
        this.inviteTimers.delete(timer)
        pending.delete(peer)
        const accepted = msg.inviteReply?.accepted === true
        const code = msg.inviteReply?.code ?? ''
        if (!accepted) this.refusals.push({ peer, reason: cleanReason(msg.inviteReply?.reason ?? ''), ...(/^[A-Z_]{1,40}$/.test(code) ? { code } : {}) })
        resolve(accepted)
      })
      transport.send(peer, { invite: { jobId: this.jobId, spec, rank: this.ranks.get(peer) ?? rank, shards: this.shards, ...resume, ...payment } })
    })))
    return peers.filter((_, i) => replies[i])
  }

  private pump (): void {
    const c = this.coordinator
    if (c === undefined) return
    for (const o of c.poll()) {
      switch (o.kind) {
        case 'roundStart': {
          const { transport } = this.init
          // Members reach each other by peer id; tell them the addresses we know, so a group
          // works without a DHT lookup (and before one has converged).
          // (none in a routing: overlay job: no frame of it uses a connection; review s13 L2)
          const overlayOnly = this.spec.routing === 'overlay'
          void Promise.all(o.members.map(async m => ({ peer: m, addrs: overlayOnly ? [] : await transport.addressesOf(m) }))).then(addrs => {
            const stateHash = o.stateDigest !== undefined ? fromHexString(o.stateDigest) : undefined
            const optimizerSkip = o.members.some(m => this.noOptimizer.has(m))
            for (const p of o.to) transport.send(p, { roundStart: { jobId: this.jobId, round: o.round, members: o.members, deadlineMs: o.deadlineMs, addrs, ...(stateHash !== undefined ? { stateHash } : {}), ...(o.bandwidths !== undefined ? { bandwidths: o.bandwidths } : {}), ...(optimizerSkip ? { optimizerSkip } : {}) } })
          })
          break
        }
        case 'metered': {
          const rec: RoundMeterRecord = { peer: o.peer, round: o.round, computeMs: o.computeMs, samples: o.samples, receipt: this.receipts.get(`${o.peer}/${o.round}`) }
          this.metering.push(rec)
          this.emit('metered', rec)
          break
        }
        case 'progress': {
          const { kind: _k, ...p } = o
          this.history.push(p)
          // who is out now and may still run its worker (a member back in the group is not)
          for (const d of o.dropped) if (this.ranks.has(d)) this.droppedMembers.add(d)
          for (const m of c.currentMembers) this.droppedMembers.delete(m)
          for (const m of c.joiningMembers) this.droppedMembers.delete(m)
          // once replacements brought the group back to its size, a dropped member is not waited for:
          // told the job is over for it (its worker stops, its slot frees) and no longer held (review16a L5)
          if (this.droppedMembers.size > 0 && c.currentMembers.length + c.joiningMembers.length >= this.spec.groupSize) {
            for (const d of this.droppedMembers) this.init.transport.send(d, { finish: { jobId: this.jobId, round: o.round, sendModel: false, reason: 'replaced in the group' } })
            this.droppedMembers.clear()
          }
          if (o.stateDigest !== undefined && !c.done) this.checkpoints.request(o.round + 1, o.stateDigest, o.agreedBy)
          this.emit('progress', p)
          this.growBack()
          break
        }
        default:
          this.onOutput?.(o)
      }
    }
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const next = c.nextTimeout()
    if (next !== undefined && !c.done) {
      this.timer = setTimeout(() => { c.handleTimeout(performance.now()); this.pump() }, Math.max(0, next - performance.now()) + 1)
    }
  }
}

/** Runs a training job to the end. `onProgress` sees every round (round, loss, accuracy). */
export async function runTrainingJob (init: TrainingSessionInit & { onProgress?: (p: TrainingProgress) => void, onMetered?: (m: RoundMeterRecord) => void }): Promise<TrainingResult> {
  const session = new TrainingSession(init)
  if (init.onProgress !== undefined) session.on('progress', init.onProgress)
  if (init.onMetered !== undefined) session.on('metered', init.onMetered)
  return await session.run()
}

/** `work`, or the signal's reason once it aborts first (`onAbort` runs then); an aborted signal rejects at once. */
async function raceAbort<T> (work: Promise<T>, signal: AbortSignal | undefined, onAbort: () => void): Promise<T> {
  if (signal === undefined) return await work
  return await new Promise<T>((resolve, reject) => {
    const abort = (): void => { onAbort(); reject(signal.reason) }
    if (signal.aborted) { abort(); return }
    signal.addEventListener('abort', abort, { once: true })
    work.then(resolve, reject).finally(() => { signal.removeEventListener('abort', abort) })
  })
}
