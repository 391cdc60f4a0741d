// What a training job's coordinator reports: its rounds' progress, the checkpoints it keeps to
// resume, the members' metering, the result, and peers' refusals as shown to people.
import type { TrainingSpec } from './spec.js'
import type { TrainingState } from '../core/training/state.js'

export interface TrainingProgress {
  round: number
  members: string[]
  loss: number
  /** NaN in rounds without an evaluation. */
  accuracy: number
  roundMs: number
  deadlineMs: number
  dropped: string[]
  /** Bytes all members sent in this round's all-reduce. */
  bytesSent: number
  /** Digest (hex) of the state after the round that a majority of its members reported. */
  stateDigest?: string
  /** The members that reported that digest (they hold the very same parameters and averaged momentum). */
  agreedBy?: string[]
}

/** The state after a completed round, as the submitter keeps it to resume the job. */
export interface TrainingCheckpoint extends TrainingState {
  /** Hex digest the members agreed on (stateDigest of this state). */
  digest: string
  /** The members of the round and each one's data shard. */
  members: string[]
  ranks: Record<string, number>
  shards: number
}

/** Where a resumed job starts: its last checkpoint (undefined: from round 0 with the same group). */
export interface ResumePoint { checkpoint?: TrainingCheckpoint, history: TrainingProgress[] }

export interface RoundMeterRecord { peer: string, round: number, computeMs: number, samples: number, receipt?: Uint8Array }

export interface TrainingResult {
  jobId: string
  spec: TrainingSpec
  /** Final parameters (flat float32). */
  params: Float32Array
  /** The final model as bytes for `dbc job results` (see encodeModel). */
  model: Uint8Array
  /** Test accuracy of the last evaluated round. */
  accuracy: number
  history: TrainingProgress[]
  metering: RoundMeterRecord[]
  members: string[]
}

/** A peer that did not join the job, and why (its own words, cleaned; or a timeout). */
export interface InviteRefusal { peer: string, reason: string, code?: string }

/** A remote peer's refusal reason as shown to people: one line, printable, bounded. */
export function cleanReason (reason: string): string {
  // control characters and bidi overrides: a stranger must not be able to drive a terminal
  const line = reason.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]+/g, ' ').trim()
  return (line.length > 300 ? line.slice(0, 300) + '…' : line) || 'refused (no reason given)'
}

/** "12D3KooWAbCd…: reason; …" (peer ids shortened to stay readable). */
export function describeRefusals (refusals: InviteRefusal[]): string {
  return refusals.map(r => `${r.peer.length > 16 ? r.peer.slice(0, 16) + '…' : r.peer}: ${r.reason}`).join('; ')
}
