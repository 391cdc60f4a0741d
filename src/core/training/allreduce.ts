// Butterfly all-reduce as a sans-IO machine, one per peer (Hivemind's scheme): the vector is
// cut into one slice per member; in the scatter phase every peer sends slice j to member j;
// member j averages what it got (weighted) and, in the gather phase, sends the average back
// to everyone. Each peer sends 2·(n−1)/n of the vector per round, as a ring does, in two
// steps instead of 2·(n−1).
//
// Slices follow the members' bandwidths when the round is given them (partition.ts; the same
// bounds on every member), and travel in parts of at most `partValues` values: the owner adds
// each part to its sum as it arrives, and averages and sends a part back as soon as every member's
// copy of that part is in, so scatter and gather overlap instead of waiting on whole slices.
//
// Faults, decided per round and stated here:
//  - A part that has not reached its owner by the scatter deadline is left out of that part's
//    average (each part is averaged over the senders whose copy arrived, by weight).
//  - A part whose owner's gather has not arrived by the round deadline is NOT reassigned in
//    this round: each peer takes the round's fallback for it (the worker gives a zero update
//    and the last shared momentum, the same on every member, so the survivors stay in agreement;
//    without one, its own local values). The coordinator drops the silent peer from the next
//    round's members, which re-splits the vector among the rest.
// Chunks for a later round are buffered (bounded) until that round starts; stale ones are dropped.
import { CODEC_IDS, codecKindFromId, decodeVector, encodeVector, type CodecSpec } from './codecs.js'
import { boundsOf, equalSizes, partitionSizes, validBandwidths } from './partition.js'

export const PHASE_SCATTER = 0
export const PHASE_GATHER = 1
/** Values per part by default: 512 KiB of fp32, 1 MiB of dense top-k (a multiple of int8's 256-value blocks). */
export const DEFAULT_PART_VALUES = 128 * 1024

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
  /** First value of this part within the slice (a multiple of the part size; 0 for a one-part slice). */
  offset?: number
}

export interface OutboundChunk { to: string, chunk: SliceChunk }

export interface AllReduceInit {
  self: string
  codec: CodecSpec
  /** Length of the vector averaged (fixed for the machine's life). */
  length: number
  /** Share of the round's deadline that the scatter phase may use (default 0.6). */
  scatterShare?: number
  /** Chunks of future rounds kept until those rounds start (default 1024). */
  maxBufferedChunks?: number
  /** Bytes of future rounds' chunks kept at most (default 128 MiB). */
  maxBufferedBytes?: number
  /** Values per part (default DEFAULT_PART_VALUES); every member of a group must use the same. */
  partValues?: number
  /** Floor of a member's slice, as a share of the equal slice (see partition.ts). */
  minShare?: number
}

export interface RoundOptions {
  /** Time from start() to the round deadline, ms. */
  deadlineMs: number
  /** This peer's weight in the average (e.g. samples seen); default 1. */
  weight?: number
  /**
   * Measured bandwidth of each member (same order as members, any unit): slices proportional to
   * them. Absent or unusable (a missing or non-positive value): equal slices.
   */
  bandwidths?: number[]
  /**
   * The values a part takes where its owner's average never came back (same length as the
   * vector): give every member the same one (a zero update, the last shared state) and the
   * members still hold the same vector after a member went silent. Default: this peer's own.
   */
  fallback?: Float32Array
}

export interface RoundResult {
  round: number
  /** Averaged where the slice came back; the round's fallback (else this peer's own values) where it did not. */
  vector: Float32Array
  /** Owner indices whose averaged slice did not (entirely) arrive. */
  missingSlices: number[]
  /** Members seen missing a deadline by this peer (their part or their slice). */
  dropped: string[]
  /** Members averaged into every part of this peer's own slice (itself included). */
  contributors: string[]
  /** Values of each member's slice this round (the partition used). */
  sliceSizes: number[]
  bytesSent: number
  bytesReceived: number
  durationMs: number
  timedOut: boolean
}

/** [start, end) of slice `i` when `length` values are cut into `n` equal slices. */
export function sliceRange (length: number, n: number, i: number): [number, number] {
  return [Math.floor((i * length) / n), Math.floor(((i + 1) * length) / n)]
}

/** Parts a slice of `size` values travels in (an empty slice still sends one empty part). */
export function partCount (size: number, partValues: number): number {
  return Math.max(1, Math.ceil(size / partValues))
}

interface ActiveRound {
  round: number
  members: string[]
  me: number
  bounds: number[]
  startedAt: number
  scatterAt: number
  deadlineAt: number
  result: Float32Array
  fallback?: Float32Array
  /** Own slice: weighted sums, and per part the weight summed, senders arrived, done. */
  sum: Float64Array
  partWeight: Float64Array
  partArrived: Uint16Array
  partDone: Uint8Array
  partsDone: number
  /** Scatter parts seen, [sender · ownParts + part]; parts per sender. */
  scatterSeen: Uint8Array
  scatterCount: Uint32Array
  /** Gather parts seen per owner, and count per owner. */
  gatherSeen: Uint8Array[]
  gatherCount: Uint32Array
  bytesSent: number
  bytesReceived: number
}

export class AllReducePeer {
  readonly self: string
  readonly codec: CodecSpec
  readonly length: number
  readonly partValues: number
  private readonly minShare?: number
  private readonly scatterShare: number
  private readonly maxBuffered: number
  private readonly maxBufferedBytes: number
  private active: ActiveRound | undefined
  private lastRound = -1
  private outbound: OutboundChunk[] = []
  private results: RoundResult[] = []
  private buffered: Array<{ from: string, chunk: SliceChunk }> = []
  private bufferedBytes = 0
  /** Top-k error feedback, indexed by position in the full vector (explicit, exportable). */
  private residualScatter: Float32Array
  private residualGather: Float32Array
  /** Chunks refused: wrong round, non-member, bad size, duplicate, buffer full. */
  rejected = 0

  constructor (init: AllReduceInit) {
    this.self = init.self
    this.codec = init.codec
    this.length = init.length
    this.partValues = Math.max(1, Math.floor(init.partValues ?? DEFAULT_PART_VALUES))
    this.minShare = init.minShare
    this.scatterShare = init.scatterShare ?? 0.6
    this.maxBuffered = init.maxBufferedChunks ?? 1024
    this.maxBufferedBytes = init.maxBufferedBytes ?? 128 * 2 ** 20
    this.residualScatter = new Float32Array(init.length)
    this.residualGather = new Float32Array(init.length)
  }

  get currentRound (): number | undefined { return this.active?.round }

  /** The slice sizes a round among `n` members with these bandwidths uses (what start() will cut). */
  sliceSizes (n: number, bandwidths?: number[]): number[] {
    return validBandwidths(bandwidths, n) ? partitionSizes(this.length, bandwidths!, { minShare: this.minShare }) : equalSizes(this.length, n)
  }

  /** Begins `round` among `members` (same order on every peer) with this peer's vector. */
  start (now: number, round: number, members: string[], vector: Float32Array, opts: RoundOptions): void {
    if (vector.length !== this.length) throw new RangeError(`all-reduce: vector has ${vector.length} values, expected ${this.length}`)
    if (opts.fallback !== undefined && opts.fallback.length !== this.length) throw new RangeError(`all-reduce: fallback has ${opts.fallback.length} values, expected ${this.length}`)
    const me = members.indexOf(this.self)
    if (me < 0) throw new RangeError(`all-reduce: ${this.self} is not among the round's members`)
    if (round <= this.lastRound) throw new RangeError(`all-reduce: round ${round} is not after ${this.lastRound}`)
    if (this.active !== undefined) this.finish(now, true)
    const n = members.length
    const bounds = boundsOf(this.sliceSizes(n, opts.bandwidths))
    const lo = bounds[me]
    const hi = bounds[me + 1]
    const own = partCount(hi - lo, this.partValues)
    const weight = opts.weight ?? 1
    const a: ActiveRound = {
      round,
      members: [...members],
      me,
      bounds,
      startedAt: now,
      scatterAt: now + opts.deadlineMs * this.scatterShare,
      deadlineAt: now + opts.deadlineMs,
      result: Float32Array.from(vector),
      fallback: opts.fallback,
      sum: new Float64Array(hi - lo),
      partWeight: new Float64Array(own).fill(weight),
      partArrived: new Uint16Array(own).fill(1),
      partDone: new Uint8Array(own),
      partsDone: 0,
      scatterSeen: new Uint8Array(n * own),
      scatterCount: new Uint32Array(n),
      gatherSeen: Array.from({ length: n }, (_, j) => new Uint8Array(partCount(bounds[j + 1] - bounds[j], this.partValues))),
      gatherCount: new Uint32Array(n),
      bytesSent: 0,
      bytesReceived: 0
    }
    a.scatterCount[me] = own
    for (let i = lo; i < hi; i++) a.sum[i - lo] = vector[i] * weight
    this.active = a
    this.lastRound = round
    const codec = CODEC_IDS[this.codec.kind]
    for (let j = 0; j < n; j++) {
      if (j === me) continue
      const s = bounds[j]
      const size = bounds[j + 1] - s
      for (let p = 0; p < partCount(size, this.partValues); p++) {
        const off = p * this.partValues
        const len = Math.min(this.partValues, size - off)
        const enc = encodeVector(this.codec, vector.subarray(s + off, s + off + len), this.residualScatter.subarray(s + off, s + off + len))
        if (enc.residual !== undefined) this.residualScatter.set(enc.residual, s + off)
        this.send(a, members[j], { round, slice: j, phase: PHASE_SCATTER, codec, length: len, data: enc.data, weight, offset: off })
      }
    }
    const early = this.buffered.filter(b => b.chunk.round === round)
    this.buffered = this.buffered.filter(b => b.chunk.round > round)
    this.bufferedBytes = this.buffered.reduce((t, b) => t + b.chunk.data.length, 0)
    for (const b of early) this.handleChunk(now, b.from, b.chunk)
    for (let p = 0; p < own; p++) if (a.partDone[p] === 0 && a.partArrived[p] === n) this.finishPart(a, p)
    this.progress(now)
  }

  handleChunk (now: number, from: string, chunk: SliceChunk): void {
    const a = this.active
    if (a === undefined || chunk.round > a.round) {
      if (chunk.round <= this.lastRound || this.buffered.length >= this.maxBuffered || this.bufferedBytes + chunk.data.length > this.maxBufferedBytes) { this.rejected++; return }
      this.buffered.push({ from, chunk })
      this.bufferedBytes += chunk.data.length
      return
    }
    if (chunk.round < a.round) { this.rejected++; return }
    const sender = a.members.indexOf(from)
    const kind = codecKindFromId(chunk.codec)
    if (sender < 0 || sender === a.me || kind !== this.codec.kind) { this.rejected++; return }
    const owner = chunk.phase === PHASE_SCATTER ? a.me : sender
    const s = a.bounds[owner]
    const size = a.bounds[owner + 1] - s
    const offset = chunk.offset ?? 0
    const part = offset / this.partValues
    if (!Number.isInteger(part) || part >= partCount(size, this.partValues) || chunk.length !== Math.min(this.partValues, size - offset)) { this.rejected++; return }
    let values: Float32Array
    try {
      values = decodeVector(this.codec, chunk.data, chunk.length)
    } catch {
      this.rejected++
      return
    }
    if (chunk.phase === PHASE_SCATTER) {
      const own = a.partDone.length
      if (chunk.slice !== a.me || a.partDone[part] === 1 || a.scatterSeen[sender * own + part] === 1 || !(chunk.weight > 0)) { this.rejected++; return }
      a.bytesReceived += chunk.data.length
      a.scatterSeen[sender * own + part] = 1
      a.scatterCount[sender]++
      for (let i = 0; i < values.length; i++) a.sum[offset + i] += values[i] * chunk.weight
      a.partWeight[part] += chunk.weight
      if (++a.partArrived[part] === a.members.length) this.finishPart(a, part)
    } else if (chunk.phase === PHASE_GATHER) {
      if (chunk.slice !== sender || a.gatherSeen[sender][part] === 1) { this.rejected++; return }
      a.bytesReceived += chunk.data.length
      a.gatherSeen[sender][part] = 1
      a.gatherCount[sender]++
      a.result.set(values, s + offset)
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
    return a.partsDone === a.partDone.length ? a.deadlineAt : Math.min(a.scatterAt, a.deadlineAt)
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
    if (a.partsDone < a.partDone.length && (now >= a.scatterAt || now >= a.deadlineAt)) {
      for (let p = 0; p < a.partDone.length; p++) if (a.partDone[p] === 0) this.finishPart(a, p)
    }
    let complete = a.partsDone === a.partDone.length
    for (let j = 0; complete && j < a.members.length; j++) complete = a.gatherCount[j] === a.gatherSeen[j].length
    if (complete) this.finish(now, false)
    else if (now >= a.deadlineAt) this.finish(now, true)
  }

  /** Averages one part of this peer's slice over the copies that arrived and sends it back to everyone. */
  private finishPart (a: ActiveRound, p: number): void {
    a.partDone[p] = 1
    a.partsDone++
    const s = a.bounds[a.me]
    const off = p * this.partValues
    const len = Math.min(this.partValues, a.sum.length - off)
    const avg = new Float32Array(len)
    for (let i = 0; i < len; i++) avg[i] = a.sum[off + i] / a.partWeight[p]
    const enc = encodeVector(this.codec, avg, this.residualGather.subarray(s + off, s + off + len))
    if (enc.residual !== undefined) this.residualGather.set(enc.residual, s + off)
    // The owner applies the decoded average too, so every member ends with the same slice.
    a.result.set(decodeVector(this.codec, enc.data, len), s + off)
    a.gatherSeen[a.me][p] = 1
    a.gatherCount[a.me]++
    for (let j = 0; j < a.members.length; j++) {
      if (j === a.me) continue
      this.send(a, a.members[j], { round: a.round, slice: a.me, phase: PHASE_GATHER, codec: CODEC_IDS[this.codec.kind], length: len, data: enc.data, weight: a.partWeight[p], offset: off })
    }
  }

  private finish (now: number, timedOut: boolean): void {
    const a = this.active
    if (a === undefined) return
    this.active = undefined
    const missingSlices: number[] = []
    const dropped = new Set<string>()
    const own = a.partDone.length
    for (let j = 0; j < a.members.length; j++) {
      if (a.gatherCount[j] < a.gatherSeen[j].length) {
        missingSlices.push(j)
        dropped.add(a.members[j])
        if (a.fallback !== undefined) {
          for (let p = 0; p < a.gatherSeen[j].length; p++) {
            if (a.gatherSeen[j][p] === 1) continue
            const lo = a.bounds[j] + p * this.partValues
            const hi = Math.min(a.bounds[j + 1], lo + this.partValues)
            a.result.set(a.fallback.subarray(lo, hi), lo)
          }
        }
      }
      if (a.scatterCount[j] < own) dropped.add(a.members[j])
    }
    this.results.push({
      round: a.round,
      vector: a.result,
      missingSlices,
      dropped: [...dropped],
      contributors: a.members.filter((_, j) => a.scatterCount[j] === own),
      sliceSizes: a.bounds.slice(1).map((b, j) => b - a.bounds[j]),
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
