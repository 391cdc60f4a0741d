// The round coordinator of a training job (runs on the submitter): it fixes each round's
// members and deadline so every peer slices the vector the same way, collects round reports
// (loss, accuracy, compute time for receipts), drops members that went silent and admits
// late or replacement peers (which first load the current state from a member).
// Sans-IO: inputs are handle*(now, ...), outputs are drained with poll(), timers via nextTimeout().
import { agreedDigest } from './state.js'
import { DEFAULT_DEADLINE_POLICY, INITIAL_DEADLINE_STATE, observeRoundTime, roundDeadline, type DeadlinePolicy, type DeadlineState } from './deadline.js'

export interface CoordinatorInit {
  /** Initial members, in slice order. */
  members: string[]
  rounds: number
  /** Fewer live members than this fails the job (default 1). */
  minMembers?: number
  deadline?: Partial<DeadlinePolicy>
  /** Extra wait for reports after a round's deadline, ms (default 1000). */
  reportGraceMs?: number
  /** First round to run (a resumed job starts after its last completed round; default 0). */
  startRound?: number
  /** Digest (hex) of the state the first round starts from, when known (a resumed job's checkpoint). */
  startDigest?: string
}

export interface RoundReport {
  round: number
  loss: number
  /** NaN when this peer did not evaluate in this round. */
  accuracy: number
  /** Compute time this peer spent on the round's local steps, ms (what gets receipted). */
  computeMs: number
  samples: number
  /** The peer's all-reduce hit its deadline (a member or slice was missing). */
  timedOut: boolean
  /** Members this peer saw missing in the all-reduce. */
  dropped: string[]
  bytesSent: number
  /** Digest (hex) of the peer's state after the round (src/core/training/state.ts); absent from old peers. */
  stateDigest?: string
  /** The peer's measured send bandwidth, bytes/s (0 or absent: not measured yet). */
  bandwidth?: number
}

export type CoordinatorOutput =
  | { kind: 'roundStart', to: string[], round: number, members: string[], deadlineMs: number, stateDigest?: string, bandwidths?: number[] }
  | { kind: 'metered', peer: string, round: number, computeMs: number, samples: number }
  | { kind: 'progress', round: number, members: string[], loss: number, accuracy: number, roundMs: number, deadlineMs: number, dropped: string[], bytesSent: number, stateDigest?: string, agreedBy: string[], bandwidths?: number[] }
  | { kind: 'finish', to: string[], round: number, modelFrom: string }
  | { kind: 'failed', reason: string }

interface OpenRound {
  round: number
  members: string[]
  startedAt: number
  deadlineMs: number
  closesAt: number
  reports: Map<string, RoundReport>
}

/** Rounds in a row a member may sit out (it could not load the state) and still be kept for the next. */
export const MAX_ROUNDS_SAT_OUT = 8
/** Peers whose sat-out rounds are remembered (the oldest fall out). */
const MAX_SAT_OUT_PEERS = 1024

export class RoundCoordinator {
  private readonly policy: DeadlinePolicy
  private readonly rounds: number
  private readonly minMembers: number
  private readonly graceMs: number
  private members: string[]
  private readonly joining: string[] = []
  /** Rounds in a row each member sat out and asked to stay (kept after it is let go: bounded, MAX_SAT_OUT_PEERS). */
  private readonly satOut = new Map<string, number>()
  private deadline: DeadlineState = INITIAL_DEADLINE_STATE
  private open: OpenRound | undefined
  private nextRound = 0
  private outputs: CoordinatorOutput[] = []
  private ended = false
  /** The agreed digest of the state the next round starts from (undefined: none agreed). */
  private digest: string | undefined
  /** Each member's last reported send bandwidth (bytes/s): the next round's slices follow them. */
  private readonly bandwidth = new Map<string, number>()

  constructor (init: CoordinatorInit) {
    if (init.members.length === 0) throw new RangeError('coordinator: a training job needs at least one member')
    this.members = [...init.members]
    this.rounds = init.rounds
    this.minMembers = init.minMembers ?? 1
    this.graceMs = init.reportGraceMs ?? 1000
    this.policy = { ...DEFAULT_DEADLINE_POLICY, ...init.deadline }
    this.nextRound = init.startRound ?? 0
    this.digest = init.startDigest
  }

  get currentMembers (): string[] { return [...this.members] }
  get done (): boolean { return this.ended }
  /** Peers admitted for the next round. */
  get joiningMembers (): string[] { return [...this.joining] }
  /** The next round to start (the rounds folded into the agreed state). */
  get upcomingRound (): number { return this.open?.round ?? this.nextRound }
  /** The agreed digest of the state after the last closed round (hex), if the members agreed. */
  get agreedStateDigest (): string | undefined { return this.digest }
  /** The deadline the next round will get (for display and tests). */
  get nextDeadlineMs (): number { return roundDeadline(this.deadline, this.policy) }

  start (now: number): void {
    this.beginRound(now)
  }

  /**
   * A late or replacement peer that has loaded the state asks to join; it enters next round. A
   * member of the open round that has not reported asks again when it sits the round out (it could
   * not load the state in time): it stays in for the next round instead of being dropped as silent.
   */
  handleJoin (_now: number, peer: string): void {
    if (this.ended || this.joining.includes(peer)) return
    // let go after sitting out too many rounds: a Join after the drop does not start the count over
    if ((this.satOut.get(peer) ?? 0) >= MAX_ROUNDS_SAT_OUT && !this.members.includes(peer)) return
    if (this.members.includes(peer)) {
      if (this.open === undefined || !this.open.members.includes(peer) || this.open.reports.has(peer)) return
      // each round it sits out waits for the deadline: a member that never takes part is let go
      const n = (this.satOut.get(peer) ?? 0) + 1
      if (n > MAX_ROUNDS_SAT_OUT) return
      this.satOut.delete(peer)
      if (this.satOut.size >= MAX_SAT_OUT_PEERS) this.satOut.delete(this.satOut.keys().next().value as string)
      this.satOut.set(peer, n)
    }
    this.joining.push(peer)
  }

  handleReport (now: number, from: string, report: RoundReport): void {
    const r = this.open
    if (r === undefined || report.round !== r.round) {
      // A straggler's report for an earlier round: it is alive, let it back in next round.
      if (!this.ended && report.round < this.nextRound && !this.members.includes(from)) this.handleJoin(now, from)
      return
    }
    if (!r.members.includes(from) || r.reports.has(from)) return
    r.reports.set(from, report)
    this.satOut.delete(from)
    if (report.bandwidth !== undefined && Number.isFinite(report.bandwidth) && report.bandwidth > 0) this.bandwidth.set(from, report.bandwidth)
    this.outputs.push({ kind: 'metered', peer: from, round: r.round, computeMs: report.computeMs, samples: report.samples })
    if (r.reports.size === r.members.length) this.closeRound(now)
  }

  handleTimeout (now: number): void {
    if (this.open !== undefined && now >= this.open.closesAt) this.closeRound(now)
  }

  nextTimeout (): number | undefined {
    return this.open?.closesAt
  }

  poll (): CoordinatorOutput[] {
    const out = this.outputs
    this.outputs = []
    return out
  }

  private beginRound (now: number): void {
    const deadlineMs = roundDeadline(this.deadline, this.policy)
    for (const p of this.joining.splice(0)) if (!this.members.includes(p)) this.members.push(p)
    const round = this.nextRound++
    this.open = { round, members: [...this.members], startedAt: now, deadlineMs, closesAt: now + deadlineMs + this.graceMs, reports: new Map() }
    // slices follow bandwidths only once every member has measured one (equal slices until then)
    const bandwidths = this.members.map(m => this.bandwidth.get(m) ?? 0)
    this.outputs.push({ kind: 'roundStart', to: [...this.members], round, members: [...this.members], deadlineMs, ...(this.digest !== undefined ? { stateDigest: this.digest } : {}), ...(bandwidths.every(b => b > 0) ? { bandwidths } : {}) })
  }

  private closeRound (now: number): void {
    const r = this.open
    if (r === undefined) return
    this.open = undefined
    const reports = [...r.reports.values()]
    const all = reports.length === r.members.length
    this.digest = agreedDigest(reports.map(x => x.stateDigest), r.members.length)
    const agreedBy = this.digest === undefined ? [] : [...r.reports.entries()].filter(([, x]) => x.stateDigest === this.digest).map(([p]) => p)
    // Only rounds that finished on their own teach the deadline: a round that waited out a
    // dead peer would otherwise stretch every later deadline.
    if (all && reports.every(x => !x.timedOut)) this.deadline = observeRoundTime(this.deadline, now - r.startedAt, this.policy)
    const silent = r.members.filter(m => !r.reports.has(m))
    // a member's word on who its all-reduce missed: only the round's members (a report may carry any strings: review s13 M3)
    const droppedInAllReduce = new Set(reports.flatMap(x => x.dropped.slice(0, r.members.length)).filter(p => r.members.includes(p)))
    this.members = this.members.filter(m => !silent.includes(m))
    let samples = 0
    let loss = 0
    let accSum = 0
    let accN = 0
    for (const x of reports) {
      samples += x.samples
      loss += x.loss * x.samples
      if (Number.isFinite(x.accuracy)) { accSum += x.accuracy; accN++ }
    }
    this.outputs.push({
      kind: 'progress',
      round: r.round,
      members: r.members,
      loss: samples > 0 ? loss / samples : NaN,
      accuracy: accN > 0 ? accSum / accN : NaN,
      roundMs: now - r.startedAt,
      deadlineMs: r.deadlineMs,
      dropped: [...new Set([...silent, ...droppedInAllReduce])],
      bytesSent: reports.reduce((a, x) => a + x.bytesSent, 0),
      ...(this.digest !== undefined ? { stateDigest: this.digest } : {}),
      agreedBy,
      bandwidths: r.members.map(m => this.bandwidth.get(m) ?? 0)
    })
    if (this.members.length + this.joining.length < this.minMembers) {
      this.ended = true
      this.outputs.push({ kind: 'failed', reason: `only ${this.members.length} live member(s) left after round ${r.round}, the job needs ${this.minMembers}` })
      return
    }
    if (r.round + 1 >= this.rounds) {
      this.ended = true
      const live = this.members.length > 0 ? this.members : this.joining
      this.outputs.push({ kind: 'finish', to: [...live], round: r.round, modelFrom: live[0] })
      return
    }
    this.beginRound(now)
  }
}
