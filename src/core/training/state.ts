// A training job's state as it travels between peers (a joiner, a resumed job, the submitter's
// checkpoint): the digest every member reports after each round, the rule that turns those
// reports into the one hash a joiner checks a transfer against, and the checks on a transfer.
// After an all-reduce every member holds the same parameters (the owner of a slice applies the
// decoded average too) and, after an optimizer-averaging round, the same momentum: so honest
// members report the same digest, and a lying donor is caught by comparing with the majority.
import { sha256 } from '@noble/hashes/sha2.js'

const DOMAIN = new TextEncoder().encode('dbc-training-state-v1\0')

export interface TrainingState {
  jobId: string
  /** Rounds folded into `params` (the next round to run). */
  round: number
  params: Float32Array
  /** The optimizer state (momentum) as of the last averaging; empty when none. */
  optimizer: Float32Array
  /** Rounds folded into `optimizer` (0: never averaged). */
  optimizerRound: number
}

/** SHA-256 over the domain, job id, rounds and both vectors (float32 little-endian). */
export function stateDigest (s: TrainingState): Uint8Array {
  const h = sha256.create()
  h.update(DOMAIN)
  const id = new TextEncoder().encode(s.jobId)
  const head = new Uint8Array(12)
  const view = new DataView(head.buffer)
  view.setUint32(0, id.length, true)
  view.setUint32(4, s.round, true)
  view.setUint32(8, s.optimizerRound, true)
  h.update(head)
  h.update(id)
  h.update(new Uint8Array(s.params.buffer, s.params.byteOffset, s.params.byteLength))
  h.update(new Uint8Array(s.optimizer.buffer, s.optimizer.byteOffset, s.optimizer.byteLength))
  return h.digest()
}

/**
 * The digest a strict majority of a round's reporters agree on (hex), or undefined: a round
 * whose all-reduce timed out for some leaves their states apart, and no transfer is checked
 * against a hash only some of them hold.
 */
export function agreedDigest (reported: ReadonlyArray<string | undefined>, members: number): string | undefined {
  const counts = new Map<string, number>()
  for (const h of reported) if (h !== undefined && h.length > 0) counts.set(h, (counts.get(h) ?? 0) + 1)
  for (const [h, n] of counts) if (n * 2 > members) return h
  return undefined
}

/** Whether the optimizer state is averaged at the end of `round` (every N rounds; 0 = never). */
export function averagesOptimizer (round: number, every: number): boolean {
  return every > 0 && (round + 1) % every === 0
}

/** Why a received state may not be adopted (undefined: it may). Sizes first: a frame is hostile. */
export function stateProblem (s: TrainingState, expect: { params: number, optimizer: number, round?: number, digest?: Uint8Array }): string | undefined {
  if (s.params.length !== expect.params) return `${s.params.length} parameters, the model has ${expect.params}`
  if (s.optimizer.length !== 0 && s.optimizer.length !== expect.optimizer) return `${s.optimizer.length} optimizer values, the trainer has ${expect.optimizer}`
  if (expect.round !== undefined && s.round !== expect.round) return `state of round ${s.round}, expected ${expect.round}`
  if (s.optimizerRound > s.round) return `optimizer of round ${s.optimizerRound} is newer than the state (${s.round})`
  for (const v of [s.params, s.optimizer]) for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return 'a value is not finite'
  if (expect.digest !== undefined && !bytesEq(stateDigest(s), expect.digest)) return 'digest differs from the one the members agreed on'
  return undefined
}

/**
 * The data shard for a peer joining a group cut into `shards`: a shard no live member trains on
 * (a dropped member's), else the least used one (a member beyond the initial group shares one).
 */
export function joinerRank (shards: number, ranksInUse: readonly number[]): number {
  const use = new Array<number>(shards).fill(0)
  for (const r of ranksInUse) if (r >= 0 && r < shards) use[r]++
  let best = 0
  for (let r = 1; r < shards; r++) if (use[r] < use[best]) best = r
  return best
}

/** Peers to invite so that live + joining reaches the configured group size. */
export function replacementsWanted (groupSize: number, live: number, joining: number): number {
  return Math.max(0, groupSize - live - joining)
}

export function toHexString (b: Uint8Array): string {
  let s = ''
  for (const x of b) s += x.toString(16).padStart(2, '0')
  return s
}

export function fromHexString (s: string): Uint8Array {
  const out = new Uint8Array(s.length >>> 1)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16)
  return out
}

function bytesEq (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i]
  return d === 0
}
