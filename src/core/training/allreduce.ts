// Butterfly all-reduce as a sans-IO machine, one per peer (Hivemind's scheme): the vector is
// cut into one slice per member; in the scatter phase every peer sends slice j to member j;
// member j averages what it got (weighted) and, in the gather phase, sends the average back
// to everyone. Each peer sends 2·(n−1)/n of the vector per round, as a ring does, in two
// steps instead of 2·(n−1).
//
// Faults, decided per round and stated here:
//  - A peer whose scatter part has not reached an owner by the scatter deadline is left out
//    of that owner's average (the slice is averaged over those who arrived, by weight).
//  - A slice whose owner's gather has not arrived by the round deadline is NOT reassigned in
//    this round: each peer keeps its own local values for that slice. The coordinator drops
//    the silent peer from the next round's members, which re-splits the vector among the rest.
// Chunks for a later round are buffered (bounded) until that round starts; stale ones are dropped.
import { CODEC_IDS, codecKindFromId, decodeVector, encodeVector, type CodecSpec } from './codecs.js'

export const PHASE_SCATTER = 0
export const PHASE_GATHER = 1

export interface SliceChunk {
  round: number
  /** Index in `members` of the slice's owner. */
  slice: number
  phase: number
  codec: number
  /** Number of values encoded. */
  length: number
  data: Uint8Array
  /** Scatter: the sender's weight. Gather: the total weight averaged. */
  weight: number
}

export interface OutboundChunk { to: string, chunk: SliceChunk }

export interface AllReduceInit {
  self: string
  codec: CodecSpec
  /** Length of the vector averaged (fixed for the machine's life). */
  length: number
  /** Share of the round's deadline that the scatter phase may use (default 0.6). */
  scatterShare?: number
  /** Chunks of future rounds kept until those rounds start (default 64). */
  maxBufferedChunks?: number
}

export interface RoundOptions {
  /** Time from start() to the round deadline, ms. */
  deadlineMs: number
  /** This peer's weight in the average (e.g. samples seen); default 1. */
  weight?: number
}

export interface RoundResult {
  round: number
  /** Averaged where the slice came back; this peer's own values where it did not. */
  vector: Float32Array
  /** Owner indices whose averaged slice did not arrive. */
  missingSlices: number[]
  /** Members seen missing a deadline by this peer (their part or their slice). */
  dropped: string[]
  /** Members averaged into this peer's own slice (itself included). */
  contributors: string[]
  bytesSent: number
  bytesReceived: number
  durationMs: number
  timedOut: boolean
}

/** [start, end) of slice `i` when `length` values are cut into `n` slices. */
export function sliceRange (length: number, n: number, i: number): [number, number] {
  return [Math.floor((i * length) / n), Math.floor(((i + 1) * length) / n)]
}

interface ActiveRound {
  round: number
  members: string[]
  me: number
  startedAt: number
  scatterAt: number
  deadlineAt: number
  local: Float32Array
  result: Float32Array
  sum: Float64Array
  weightSum: number
  partsFrom: Set<string>
  sliceDone: boolean
  gathered: Set<number>
  bytesSent: number
  bytesReceived: number
}

export class AllReducePeer {
  readonly self: string
  readonly codec: CodecSpec
  readonly length: number
  private readonly scatterShare: number
  private readonly maxBuffered: number
  private active: ActiveRound | undefined
  private lastRound = -1
  private outbound: OutboundChunk[] = []
  private results: RoundResult[] = []
  private buffered: Array<{ from: string, chunk: SliceChunk }> = []
  /** Top-k error feedback, indexed by position in the full vector (explicit, exportable). */
  private residualScatter: Float32Array
  private residualGather: Float32Array
  /** Chunks refused: wrong round, non-member, bad size, duplicate, buffer full. */
  rejected = 0

  constructor (init: AllReduceInit) {
    this.self = init.self
    this.codec = init.codec
    this.length = init.length
    this.scatterShare = init.scatterShare ?? 0.6
    this.maxBuffered = init.maxBufferedChunks ?? 64
    this.residualScatter = new Float32Array(init.length)
    this.residualGather = new Float32Array(init.length)
  }

  get currentRound (): number | undefined { return this.active?.round }

  /** Begins `round` among `members` (same order on every peer) with this peer's vector. */
  start (now: number, round: number, members: string[], vector: Float32Array, opts: RoundOptions): void {
    if (vector.length !== this.length) throw new RangeError(`all-reduce: vector has ${vector.length} values, expected ${this.length}`)
    const me = members.indexOf(this.self)
    if (me < 0) throw new RangeError(`all-reduce: ${this.self} is not among the round's members`)
    if (round <= this.lastRound) throw new RangeError(`all-reduce: round ${round} is not after ${this.lastRound}`)
    if (this.active !== undefined) this.finish(now, true)
    const n = members.length
    const [lo, hi] = sliceRange(this.length, n, me)
    const weight = opts.weight ?? 1
    const a: ActiveRound = {
      round,
      members: [...members],
      me,
      startedAt: now,
      scatterAt: now + opts.deadlineMs * this.scatterShare,
      deadlineAt: now + opts.deadlineMs,
      local: vector,
      result: Float32Array.from(vector),
      sum: new Float64Array(hi - lo),
      weightSum: weight,
      partsFrom: new Set([this.self]),
      sliceDone: false,
      gathered: new Set([me]),
      bytesSent: 0,
      bytesReceived: 0
    }
    for (let i = lo; i < hi; i++) a.sum[i - lo] = vector[i] * weight
    this.active = a
    this.lastRound = round
    for (let j = 0; j < n; j++) {
      if (j === me) continue
      const [s, e] = sliceRange(this.length, n, j)
      const enc = encodeVector(this.codec, vector.subarray(s, e), this.residualScatter.subarray(s, e))
      if (enc.residual !== undefined) this.residualScatter.set(enc.residual, s)
      this.send(a, members[j], { round, slice: j, phase: PHASE_SCATTER, codec: CODEC_IDS[this.codec.kind], length: e - s, data: enc.data, weight })
    }
    const early = this.buffered.filter(b => b.chunk.round === round)
    this.buffered = this.buffered.filter(b => b.chunk.round > round)
    for (const b of early) this.handleChunk(now, b.from, b.chunk)
    this.progress(now)
  }

  handleChunk (now: number, from: string, chunk: SliceChunk): void {
    const a = this.active
    if (a === undefined || chunk.round > a.round) {
      if (chunk.round <= this.lastRound || this.buffered.length >= this.maxBuffered) { this.rejected++; return }
      this.buffered.push({ from, chunk })
      return
    }
    if (chunk.round < a.round) { this.rejected++; return }
    const sender = a.members.indexOf(from)
    const kind = codecKindFromId(chunk.codec)
    if (sender < 0 || sender === a.me || kind !== this.codec.kind) { this.rejected++; return }
    const [s, e] = sliceRange(this.length, a.members.length, chunk.phase === PHASE_SCATTER ? a.me : sender)
    if (chunk.length !== e - s) { this.rejected++; return }
    let values: Float32Array
    try {
      values = decodeVector(this.codec, chunk.data, chunk.length)
    } catch {
      this.rejected++
      return
    }
    a.bytesReceived += chunk.data.length
    if (chunk.phase === PHASE_SCATTER) {
      if (chunk.slice !== a.me || a.sliceDone || a.partsFrom.has(from) || !(chunk.weight > 0)) { this.rejected++; return }
      a.partsFrom.add(from)
      for (let i = 0; i < values.length; i++) a.sum[i] += values[i] * chunk.weight
      a.weightSum += chunk.weight
    } else if (chunk.phase === PHASE_GATHER) {
      if (chunk.slice !== sender || a.gathered.has(sender)) { this.rejected++; return }
      a.gathered.add(sender)
      a.result.set(values, s)
    } else {
      this.rejected++
      return
    }
    this.progress(now)
  }

  handleTimeout (now: number): void {
    this.progress(now)
  }

  nextTimeout (): number | undefined {
    const a = this.active
    if (a === undefined) return undefined
    return a.sliceDone ? a.deadlineAt : Math.min(a.scatterAt, a.deadlineAt)
  }

  pollOutbound (): OutboundChunk[] {
    const out = this.outbound
    this.outbound = []
    return out
  }

  pollResult (): RoundResult | undefined {
    return this.results.shift()
  }

  /** Error-feedback state, for a checkpoint (topk only; zeros otherwise). */
  exportResiduals (): { scatter: Float32Array, gather: Float32Array } {
    return { scatter: Float32Array.from(this.residualScatter), gather: Float32Array.from(this.residualGather) }
  }

  importResiduals (r: { scatter: Float32Array, gather: Float32Array }): void {
    if (r.scatter.length !== this.length || r.gather.length !== this.length) throw new RangeError('all-reduce: residual length mismatch')
    this.residualScatter = Float32Array.from(r.scatter)
    this.residualGather = Float32Array.from(r.gather)
  }

  private progress (now: number): void {
    const a = this.active
    if (a === undefined) return
    if (!a.sliceDone && (a.partsFrom.size === a.members.length || now >= a.scatterAt || now >= a.deadlineAt)) this.finishSlice(a)
    if (a.sliceDone && a.gathered.size === a.members.length) this.finish(now, false)
    else if (now >= a.deadlineAt) this.finish(now, true)
  }

  private finishSlice (a: ActiveRound): void {
    a.sliceDone = true
    const n = a.members.length
    const [s, e] = sliceRange(this.length, n, a.me)
    const avg = new Float32Array(e - s)
    for (let i = 0; i < avg.length; i++) avg[i] = a.sum[i] / a.weightSum
    const enc = encodeVector(this.codec, avg, this.residualGather.subarray(s, e))
    if (enc.residual !== undefined) this.residualGather.set(enc.residual, s)
    // The owner applies the decoded average too, so every member ends with the same slice.
    a.result.set(decodeVector(this.codec, enc.data, avg.length), s)
    for (let j = 0; j < n; j++) {
      if (j === a.me) continue
      this.send(a, a.members[j], { round: a.round, slice: a.me, phase: PHASE_GATHER, codec: CODEC_IDS[this.codec.kind], length: avg.length, data: enc.data, weight: a.weightSum })
    }
  }

  private finish (now: number, timedOut: boolean): void {
    const a = this.active
    if (a === undefined) return
    this.active = undefined
    const missingSlices: number[] = []
    const dropped = new Set<string>()
    for (let j = 0; j < a.members.length; j++) {
      if (!a.gathered.has(j)) { missingSlices.push(j); dropped.add(a.members[j]) }
      if (!a.partsFrom.has(a.members[j])) dropped.add(a.members[j])
    }
    this.results.push({
      round: a.round,
      vector: a.result,
      missingSlices,
      dropped: [...dropped],
      contributors: a.members.filter(m => a.partsFrom.has(m)),
      bytesSent: a.bytesSent,
      bytesReceived: a.bytesReceived,
      durationMs: now - a.startedAt,
      timedOut
    })
  }

  private send (a: ActiveRound, to: string, chunk: SliceChunk): void {
    a.bytesSent += chunk.data.length
    this.outbound.push({ to, chunk })
  }
}
