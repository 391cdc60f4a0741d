// A training frame larger than what the overlay's receiver holds for one peer (its chunk
// assembler's per-peer budget, 32 MiB: a model state of 40 MiB) crosses the overlay in pieces:
// each piece is one overlay frame of at most a quarter of that budget, sent only once the previous
// one was acked chunk by chunk (flow control), re-sent alone after a path loss (resumable). The
// receiver rebuilds the frame here. Pure (no clock, no IO). Every piece is a remote peer's input:
// a frame is taken only up to what that peer may send (large frames only from a job's members),
// reserved by its declared size per peer and in total, and an idle one expires.
import { encodePart, readPartHeader, splitParts, partLength, PART_HEADER_BYTES, PART_ID_BYTES } from '../core/routing/part-header.js'

/**
 * First byte of a piece: 0 is never the first byte of an encoded TrainingMessage (a protobuf
 * field tag is at least 0x08), so a piece cannot be taken for a message or the other way round.
 */
export const PIECE_MAGIC = 0x00
export const PIECE_VERSION = 1
/** Magic, version, 16-byte frame id, index, count, total bytes (big-endian u32s): the overlay chunks' header layout (part-header.ts). */
export const PIECE_HEADER_BYTES = PART_HEADER_BYTES
export const PIECE_ID_BYTES = PART_ID_BYTES
/** Pieces of one frame at most (a 64 MiB frame in 8 MiB pieces is 8). */
export const MAX_PIECES = 64
/** Incomplete frames one peer may have at once (a newer one evicts that peer's oldest). */
export const MAX_PARTIAL_PER_PEER = 2
/** Bytes all incomplete frames may reserve (two of the largest model states). */
export const MAX_PIECE_BYTES_TOTAL = 128 * 1024 * 1024
/** An incomplete frame with no new piece for this long is dropped. */
export const PIECE_TTL_MS = 2 * 60_000
/** Completed frame ids remembered (their late duplicate pieces are ignored, not a new frame). */
const MAX_DONE = 256

export interface Piece { id: Uint8Array, index: number, count: number, totalBytes: number, data: Uint8Array }

/** The size of the pieces a frame is cut into for a receiver that holds `budget` bytes per peer: a quarter of it (room beside task messages). */
export function pieceBytesFor (budget: number): number {
  return Math.max(1024, Math.floor(budget / 4) - PIECE_HEADER_BYTES)
}

/** Whether an overlay frame is a piece (else it is a whole TrainingMessage). */
export function isPiece (frame: Uint8Array): boolean {
  return frame.length > 0 && frame[0] === PIECE_MAGIC
}

export function encodePiece (p: Piece): Uint8Array {
  return encodePart(PIECE_MAGIC, { ...p, tag: PIECE_VERSION }, p.data)
}

/** `frame` cut into pieces of at most `pieceBytes` (equal lengths but the last, as decodePiece checks). */
export function splitFrame (id: Uint8Array, frame: Uint8Array, pieceBytes: number): Piece[] {
  return splitParts(frame, pieceBytes).map(p => ({ id, ...p, totalBytes: frame.length }))
}

export type PieceRefusal = 'PIECE_MALFORMED' | 'PIECE_TOO_LARGE' | 'PIECE_MISMATCH' | 'PIECE_TOTAL_LIMIT' | 'PIECE_NOT_MEMBER'

/** Parses a piece and checks its shape: known version, 2..MAX_PIECES pieces, exactly the length its index implies. */
export function decodePiece (bytes: Uint8Array): { ok: true, piece: Piece } | { ok: false, code: PieceRefusal, reason: string } {
  const h = readPartHeader(bytes, PIECE_MAGIC)
  if (h === undefined) return { ok: false, code: 'PIECE_MALFORMED', reason: 'not a piece (short or wrong magic)' }
  if (h.tag !== PIECE_VERSION) return { ok: false, code: 'PIECE_MALFORMED', reason: `unknown piece version ${h.tag}` }
  const { index, count, totalBytes, data } = h
  // one piece would have travelled as a whole frame; crumbs would multiply the receiver's work
  if (count < 2 || count > MAX_PIECES || index >= count || totalBytes < count) return { ok: false, code: 'PIECE_MALFORMED', reason: `piece ${index} of ${count} for ${totalBytes} bytes` }
  // every piece holds at least one byte (review F3): a shape whose last place lies past the frame is no splitFrame's
  if ((count - 1) * Math.ceil(totalBytes / count) >= totalBytes) return { ok: false, code: 'PIECE_MALFORMED', reason: `${count} pieces of ${totalBytes} bytes leave a piece empty` }
  const want = partLength(totalBytes, count, index)
  if (data.length !== want || want === 0) return { ok: false, code: 'PIECE_MALFORMED', reason: `piece ${index} holds ${data.length} bytes, its place needs ${want}` }
  return { ok: true, piece: { id: h.id, index, count, totalBytes, data } }
}

interface Partial { peer: string, count: number, totalBytes: number, buf: Uint8Array, got: Set<number>, lastAt: number }

export type PieceVerdict =
  | { type: 'partial' }
  | { type: 'duplicate' }
  | { type: 'complete', frame: Uint8Array }
  | { type: 'refused', code: PieceRefusal, reason: string }

/**
 * Rebuilds frames from pieces. The first piece of a frame reserves its declared size, which must
 * fit what the peer may send (`maxBytes(peer)`: large only for a job's members) and the total
 * budget; the buffer is allocated then, and each piece is copied into its place.
 */
export class PieceAssembler {
  private readonly partials = new Map<string, Partial>()
  private readonly done = new Set<string>()
  private reservedBytes = 0
  readonly stats = { completed: 0, refused: 0, expired: 0, duplicates: 0, evicted: 0 }

  constructor (private readonly limits: { maxBytesTotal: number, ttlMs: number } = { maxBytesTotal: MAX_PIECE_BYTES_TOTAL, ttlMs: PIECE_TTL_MS }) {}

  get reserved (): number { return this.reservedBytes }
  get size (): number { return this.partials.size }

  /** `wholeBytes`: what one overlay frame carries here; a frame that small is never pieced by an honest sender (review F4). */
  accept (now: number, peer: string, bytes: Uint8Array, maxBytes: number, wholeBytes = 0): PieceVerdict {
    this.expire(now)
    const d = decodePiece(bytes)
    if (!d.ok) return this.refuse(d.code, d.reason)
    const p = d.piece
    // a peer allowed no more than one overlay frame (not a job's member) never needs pieces: nothing reserved for it
    if (maxBytes <= wholeBytes) return this.refuse('PIECE_NOT_MEMBER', `this peer may send ${maxBytes} bytes, which one overlay frame (${wholeBytes}) carries whole`)
    if (p.totalBytes <= wholeBytes) return this.refuse('PIECE_MALFORMED', `a frame of ${p.totalBytes} bytes fits one overlay frame (${wholeBytes}): never sent in pieces`)
    const key = `${peer}\n${hex(p.id)}`
    if (this.done.has(key)) { this.stats.duplicates++; return { type: 'duplicate' } }
    let f = this.partials.get(key)
    if (f === undefined) {
      if (p.totalBytes > maxBytes) return this.refuse('PIECE_TOO_LARGE', `a frame of ${p.totalBytes} bytes; this peer may send ${maxBytes}`)
      // the peer's own older frames make room (it re-sends a frame under a new id only after giving the old one up)
      const mine = [...this.partials.entries()].filter(([, x]) => x.peer === peer)
      let mineBytes = mine.reduce((s, [, x]) => s + x.totalBytes, 0)
      while (mine.length > 0 && (mine.length >= MAX_PARTIAL_PER_PEER || mineBytes + p.totalBytes > maxBytes)) {
        const [k, old] = mine.shift()!
        this.drop(k, old); this.stats.evicted++; mineBytes -= old.totalBytes
      }
      if (this.reservedBytes + p.totalBytes > this.limits.maxBytesTotal) return this.refuse('PIECE_TOTAL_LIMIT', `incomplete frames hold ${this.reservedBytes} bytes; no room for ${p.totalBytes} more`)
      f = { peer, count: p.count, totalBytes: p.totalBytes, buf: new Uint8Array(p.totalBytes), got: new Set(), lastAt: now }
      this.partials.set(key, f)
      this.reservedBytes += p.totalBytes
    } else if (f.count !== p.count || f.totalBytes !== p.totalBytes) {
      return this.refuse('PIECE_MISMATCH', `piece ${p.index} says ${p.count} pieces / ${p.totalBytes} bytes; its frame has ${f.count} / ${f.totalBytes}`)
    }
    f.lastAt = now
    if (f.got.has(p.index)) { this.stats.duplicates++; return { type: 'duplicate' } }
    f.buf.set(p.data, p.index * Math.ceil(f.totalBytes / f.count))
    f.got.add(p.index)
    if (f.got.size < f.count) return { type: 'partial' }
    this.drop(key, f)
    this.done.add(key)
    if (this.done.size > MAX_DONE) this.done.delete(this.done.values().next().value as string)
    this.stats.completed++
    return { type: 'complete', frame: f.buf }
  }

  /** Drops incomplete frames idle past the TTL. */
  expire (now: number): void {
    for (const [k, f] of this.partials) if (now - f.lastAt >= this.limits.ttlMs) { this.drop(k, f); this.stats.expired++ }
  }

  /** Forgets everything (the transport stopped). */
  clear (): void { this.partials.clear(); this.done.clear(); this.reservedBytes = 0 }

  private drop (key: string, f: Partial): void {
    if (this.partials.delete(key)) this.reservedBytes -= f.totalBytes
  }

  private refuse (code: PieceRefusal, reason: string): PieceVerdict {
    this.stats.refused++
    return { type: 'refused', code, reason }
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
