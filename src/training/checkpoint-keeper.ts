// The coordinator's checkpoints of a training job (src/training/session.ts): after each round the
// members agreed on it fetches the state from one that reported the agreed digest, checks it (shape,
// digest, the donor's signature) and keeps it; a resumed job's members load it from here.
import { performance } from 'node:perf_hooks'
import { bytesToFloats, floatsToBytes } from './worker.js'
import { stateDigest, stateProblem, fromHexString, type TrainingState } from '../core/training/state.js'
import { verifyStateSignature } from './state-sign.js'
import { StateServeLog } from './state-serve.js'
import type { TrainingTransport } from './transport.js'
import type { TrainingCheckpoint } from './session-types.js'

export interface CheckpointKeeperInit {
  jobId: string
  transport: TrainingTransport
  /** Signs state digests with this node's key (a resumed job's members load its checkpoint from here). */
  sign?: (digest: Uint8Array) => Uint8Array
  /** Called with the checked state after each completed round the members agreed on. */
  checkpoint?: (c: TrainingCheckpoint) => void
  /** Each member's data shard (rank); only peers in it are answered. */
  ranks: ReadonlyMap<string, number>
  /** The number of shards the data set is cut into. */
  shards: () => number
  /** The group's members now. */
  members: () => string[]
}

export class CheckpointKeeper {
  /** When each member was last handed the checkpoint (a request is tiny, the answer the model). */
  private readonly served = new StateServeLog()
  private wanted: { round: number, digest: string, donors: string[] } | undefined
  private last: TrainingCheckpoint | undefined

  constructor (private readonly init: CheckpointKeeperInit, resumeFrom?: TrainingCheckpoint) {
    this.last = resumeFrom
  }

  /** The state this job would resume from now (the last checked checkpoint). */
  get latest (): TrainingCheckpoint | undefined { return this.last }

  /** After a round the members agreed on: fetch the state from one that reported the digest, to checkpoint it. */
  request (round: number, digest: string, agreedBy: string[]): void {
    if (this.init.checkpoint === undefined || agreedBy.length === 0) return
    this.wanted = { round, digest, donors: agreedBy }
    this.init.transport.send(agreedBy[0], { stateRequest: { jobId: this.init.jobId } })
  }

  /** A member's answer to `request`: kept when it is the state asked for, signed by its sender. */
  onState (from: string, msg: { round: number, params: Uint8Array, optimizer: Uint8Array, optimizerRound: number, signature: Uint8Array }): void {
    const want = this.wanted
    if (want === undefined || !want.donors.includes(from)) return
    this.wanted = undefined
    let state: TrainingState
    try {
      state = { jobId: this.init.jobId, round: msg.round, params: bytesToFloats(msg.params), optimizer: bytesToFloats(msg.optimizer ?? new Uint8Array()), optimizerRound: msg.optimizerRound ?? 0 }
    } catch {
      return
    }
    // the member may already be a round further: then this round is simply not checkpointed
    const problem = stateProblem(state, { params: state.params.length, optimizer: state.optimizer.length, round: want.round, digest: fromHexString(want.digest) })
    if (problem !== undefined || !verifyStateSignature(from, fromHexString(want.digest), msg.signature ?? new Uint8Array())) return
    const members = this.init.members()
    this.last = { ...state, digest: want.digest, members, ranks: Object.fromEntries(members.map(m => [m, this.init.ranks.get(m) ?? 0])), shards: this.init.shards() }
    this.init.checkpoint?.(this.last)
  }

  /** A resumed job's members load the checkpoint from here; only peers in the job are answered. */
  serve (from: string): void {
    const cp = this.last
    if (cp === undefined || !this.init.ranks.has(from) || this.init.sign === undefined) return
    if (!this.served.allow(from, cp.round, performance.now())) return // one copy at a time (state-serve.ts)
    const signature = this.init.sign(stateDigest(cp))
    this.init.transport.send(from, { stateResponse: { jobId: this.init.jobId, round: cp.round, params: floatsToBytes(cp.params), optimizer: floatsToBytes(cp.optimizer), optimizerRound: cp.optimizerRound, signature } })
  }
}
