// Messages larger than one sealed envelope travel as chunks: each chunk is its own envelope
// (acked on its own by the envelope layer), so a path lost mid-message costs only the chunks
// not yet acked. Pure: the header codec, the split, the sender's record of acked chunks and the
// receiver's bounded assembly (every chunk is a stranger's input: bounded per peer and in total,
// incomplete messages expire, a chunk that disagrees with its message is refused with a code).
import { toHex } from '../identity/index.js'
import { encodePart, readPartHeader, splitParts, partLength, PART_HEADER_BYTES, PART_ID_BYTES } from './part-header.js'

/** Chunk header (part-header.ts): magic, kind, 16-byte message id, index, count, total bytes (big-endian u32s). */
export const CHUNK_MAGIC = 0xd7
export const CHUNK_HEADER_BYTES = PART_HEADER_BYTES
export const MESSAGE_ID_BYTES = PART_ID_BYTES
/** What the task application's chunks carry at most (an envelope is 1 MiB; four chunks in flight fit a window). */
export const DEFAULT_CHUNK_BYTES = 192 * 1024

/** request → response/error; heartbeat and close are one-way (a lease's life); frame is a one-way training message. */
export type ChunkKind = 'request' | 'response' | 'error' | 'heartbeat' | 'close' | 'frame'
const KIND_CODE: Record<ChunkKind, number> = { request: 1, response: 2, error: 3, heartbeat: 4, close: 5, frame: 6 }
const KIND_OF: Record<number, ChunkKind> = { 1: 'request', 2: 'response', 3: 'error', 4: 'heartbeat', 5: 'close', 6: 'frame' }

export interface Chunk {
  kind: ChunkKind
  /** 16 bytes, chosen by the message's sender (a response carries its request's id). */
  id: Uint8Array
  index: number
  count: number
  totalBytes: number
  data: Uint8Array
}

/** CHUNK_SPLIT: a count other than our chunk size implies (the size is a local option: refused, not a proof of malice). */
export type ChunkRefusal = 'CHUNK_MALFORMED' | 'CHUNK_SPLIT' | 'CHUNK_TOO_LARGE' | 'CHUNK_MISMATCH' | 'CHUNK_PEER_LIMIT' | 'CHUNK_TOTAL_LIMIT'

export function encodeChunk (c: Chunk): Uint8Array {
  return encodePart(CHUNK_MAGIC, { ...c, tag: KIND_CODE[c.kind] }, c.data)
}

/** Length of chunk `index` of a `totalBytes` message in `count` chunks (all equal but the last). */
export const chunkLength = partLength

/**
 * Parses and checks a chunk's shape: known kind, index < count, the count the total implies for
 * chunks of at most `maxChunkBytes`, and exactly the length its index implies.
 */
export function decodeChunk (bytes: Uint8Array, maxChunkBytes = DEFAULT_CHUNK_BYTES): { ok: true, chunk: Chunk } | { ok: false, code: ChunkRefusal, reason: string } {
  const h = readPartHeader(bytes, CHUNK_MAGIC)
  if (h === undefined) return { ok: false, code: 'CHUNK_MALFORMED', reason: 'not a chunk (short or wrong magic)' }
  const kind = KIND_OF[h.tag]
  if (kind === undefined) return { ok: false, code: 'CHUNK_MALFORMED', reason: `unknown chunk kind ${h.tag}` }
  const { index, count, totalBytes, data } = h
  if (count === 0 || index >= count) return { ok: false, code: 'CHUNK_MALFORMED', reason: `chunk ${index} of ${count}` }
  // the fewest chunks of at most maxChunkBytes: a sender may not split into crumbs (count bounds the receiver's work)
  const expectedCount = Math.max(1, Math.ceil(totalBytes / maxChunkBytes))
  if (count !== expectedCount) return { ok: false, code: 'CHUNK_SPLIT', reason: `${count} chunks for ${totalBytes} bytes (expected ${expectedCount})` }
  if (data.length !== chunkLength(totalBytes, count, index)) return { ok: false, code: 'CHUNK_MALFORMED', reason: `chunk ${index} holds ${data.length} bytes, its place needs ${chunkLength(totalBytes, count, index)}` }
  return { ok: true, chunk: { kind, id: h.id, index, count, totalBytes, data } }
}

/** A message cut into chunks for sending (count as decodeChunk expects it). */
export function splitMessage (kind: ChunkKind, id: Uint8Array, payload: Uint8Array, maxChunkBytes = DEFAULT_CHUNK_BYTES): Chunk[] {
  return splitParts(payload, maxChunkBytes).map(p => ({ kind, id, ...p, totalBytes: payload.length }))
}

/**
 * The sender's record of one message's chunks: which are acked, which are in flight; after a
 * failed send only the chunks never acked go again. `next()` hands out up to `window` at once.
 */
export class OutgoingChunks {
  private readonly acked: boolean[]
  private readonly inFlight = new Set<number>()
  private readonly failures: number[]
  sends = 0

  constructor (readonly count: number, private readonly window = 4, private readonly maxFailuresPerChunk = 3) {
    this.acked = new Array<boolean>(count).fill(false)
    this.failures = new Array<number>(count).fill(0)
  }

  /** Chunks to send now (not acked, not in flight), within the window. */
  next (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.count && this.inFlight.size < this.window; i++) {
      if (this.acked[i] || this.inFlight.has(i)) continue
      this.inFlight.add(i); this.sends++; out.push(i)
    }
    return out
  }

  ack (i: number): void { this.inFlight.delete(i); if (i >= 0 && i < this.count) this.acked[i] = true }

  /** A send of chunk `i` failed (every path); false when it failed too often: the message fails. */
  fail (i: number): boolean {
    this.inFlight.delete(i)
    if (i < 0 || i >= this.count) return true
    return ++this.failures[i] < this.maxFailuresPerChunk
  }

  get done (): boolean { return this.acked.every(Boolean) }
  get ackedCount (): number { return this.acked.filter(Boolean).length }
  /** Chunks never acked (what a resume sends). */
  missing (): number[] { return this.acked.flatMap((a, i) => a ? [] : [i]) }
}

export interface AssemblerLimits {
  /** Largest chunk (the split size both sides agree on). */
  maxChunkBytes: number
  /** Incomplete messages one peer may have at once. */
  maxPartialPerPeer: number
  /** Bytes one peer's incomplete messages may reserve (their declared totals). */
  maxBytesPerPeer: number
  /** Bytes all incomplete messages may reserve. */
  maxBytesTotal: number
  /** An incomplete message with no new chunk for this long is dropped. */
  partialTtlMs: number
  /** How long a completed message id is remembered (its late copies are duplicates, not a new message). */
  doneTtlMs: number
  /** Completed ids remembered at most. */
  maxDone: number
}

export const DEFAULT_ASSEMBLER_LIMITS: AssemblerLimits = {
  maxChunkBytes: DEFAULT_CHUNK_BYTES,
  maxPartialPerPeer: 16,
  maxBytesPerPeer: 32 * 1024 * 1024,
  maxBytesTotal: 64 * 1024 * 1024,
  partialTtlMs: 60_000,
  doneTtlMs: 5 * 60_000,
  maxDone: 16_384
}

export type AssemblyVerdict =
  | { type: 'partial', have: number, count: number }
  | { type: 'complete', kind: ChunkKind, id: Uint8Array, payload: Uint8Array }
  | { type: 'duplicate' }
  | { type: 'refused', code: ChunkRefusal, reason: string }

interface PartialMessage {
  peer: string
  kind: ChunkKind
  count: number
  totalBytes: number
  parts: Array<Uint8Array | undefined>
  have: number
  lastAt: number
}


/**
 * The receiver's assembly of chunked messages from many peers. A message reserves its declared
 * size at its first chunk (so a peer cannot make us hold more than its budget by declaring small
 * and sending large: every chunk's length is fixed by the header); `maxMessageBytes(peer, kind)`
 * is the caller's per-peer cap (a lease holder may send its announced input size, a stranger a
 * small request).
 */
export class ChunkAssembler {
  readonly limits: AssemblerLimits
  private readonly partial = new Map<string, PartialMessage>()
  private readonly done = new Map<string, number>()
  private readonly perPeer = new Map<string, { count: number, bytes: number }>()
  private reserved = 0
  /** Bytes of completed messages still being handled (part of `reserved`). */
  private held = 0
  readonly stats = { completed: 0, refused: 0, expired: 0, duplicates: 0 }

  constructor (limits: Partial<AssemblerLimits> = {}, private readonly maxMessageBytes: (peer: string, kind: ChunkKind) => number = () => Infinity) {
    this.limits = { ...DEFAULT_ASSEMBLER_LIMITS, ...limits }
  }

  /**
   * Charges `bytes` of a completed message still being handled (a request being served) to
   * `peer`'s and the total budget, so served requests cannot hold more than incomplete ones may;
   * false (nothing charged) when either budget has no room. `release` gives them back.
   */
  hold (peer: string, bytes: number): boolean {
    const mine = this.perPeer.get(peer) ?? { count: 0, bytes: 0 }
    if (mine.bytes + bytes > this.limits.maxBytesPerPeer || this.reserved + bytes > this.limits.maxBytesTotal) return false
    this.perPeer.set(peer, { count: mine.count, bytes: mine.bytes + bytes })
    this.reserved += bytes
    this.held += bytes
    return true
  }

  release (peer: string, bytes: number): void {
    this.reserved -= bytes
    this.held -= bytes
    this.unreserve(peer, 0, bytes)
  }

  /** Takes one chunk's bytes from `peer` at `now`. */
  accept (now: number, peer: string, bytes: Uint8Array): AssemblyVerdict {
    this.expire(now)
    const d = decodeChunk(bytes, this.limits.maxChunkBytes)
    if (!d.ok) return this.refuse(d.code, d.reason)
    const c = d.chunk
    const key = `${peer}\n${toHex(c.id)}\n${c.kind}`
    if (this.done.has(key)) { this.stats.duplicates++; return { type: 'duplicate' } }
    let p = this.partial.get(key)
    if (p === undefined) {
      const cap = this.maxMessageBytes(peer, c.kind)
      if (c.totalBytes > cap) return this.refuse('CHUNK_TOO_LARGE', `a message of ${c.totalBytes} bytes is above the ${cap} bytes this peer may send`)
      if (c.count === 1) return this.complete(now, key, c.kind, c.id, c.data.slice())
      const mine = this.perPeer.get(peer) ?? { count: 0, bytes: 0 }
      if (mine.count >= this.limits.maxPartialPerPeer || mine.bytes + c.totalBytes > this.limits.maxBytesPerPeer) return this.refuse('CHUNK_PEER_LIMIT', `this peer already has ${mine.count} incomplete messages (${mine.bytes} bytes)`)
      if (this.reserved + c.totalBytes > this.limits.maxBytesTotal) return this.refuse('CHUNK_TOTAL_LIMIT', `incomplete messages hold ${this.reserved} bytes; no room for ${c.totalBytes} more`)
      p = { peer, kind: c.kind, count: c.count, totalBytes: c.totalBytes, parts: new Array(c.count), have: 0, lastAt: now }
      this.partial.set(key, p)
      this.perPeer.set(peer, { count: mine.count + 1, bytes: mine.bytes + c.totalBytes })
      this.reserved += c.totalBytes
    }
    if (p.count !== c.count || p.totalBytes !== c.totalBytes) return this.refuse('CHUNK_MISMATCH', `chunk says ${c.count} chunks / ${c.totalBytes} bytes, its message ${p.count} / ${p.totalBytes}`)
    p.lastAt = now
    if (p.parts[c.index] !== undefined) { this.stats.duplicates++; return { type: 'duplicate' } }
    p.parts[c.index] = c.data.slice()
    p.have++
    if (p.have < p.count) return { type: 'partial', have: p.have, count: p.count }
    this.drop(key, p)
    const payload = new Uint8Array(p.totalBytes)
    let off = 0
    for (const part of p.parts) { payload.set(part as Uint8Array, off); off += (part as Uint8Array).length }
    return this.complete(now, key, c.kind, c.id, payload)
  }

  /** Drops incomplete messages idle past their TTL and forgets old completed ids. */
  expire (now: number): void {
    for (const [key, p] of this.partial) {
      if (now - p.lastAt >= this.limits.partialTtlMs) { this.drop(key, p); this.stats.expired++ }
    }
    for (const [key, at] of this.done) {
      if (now - at < this.limits.doneTtlMs && this.done.size <= this.limits.maxDone) break
      this.done.delete(key)
    }
  }

  /** Bytes reserved by incomplete messages (all peers) and their number. */
  get pending (): { messages: number, bytes: number } { return { messages: this.partial.size, bytes: this.reserved - this.held } }

  /** Bytes of completed messages still being handled (`hold`). */
  get holding (): number { return this.held }

  private complete (now: number, key: string, kind: ChunkKind, id: Uint8Array, payload: Uint8Array): AssemblyVerdict {
    this.done.set(key, now)
    if (this.done.size > this.limits.maxDone) this.done.delete(this.done.keys().next().value as string)
    this.stats.completed++
    return { type: 'complete', kind, id, payload }
  }

  private drop (key: string, p: PartialMessage): void {
    this.partial.delete(key)
    this.reserved -= p.totalBytes
    this.unreserve(p.peer, 1, p.totalBytes)
  }

  private unreserve (peer: string, count: number, bytes: number): void {
    const mine = this.perPeer.get(peer)
    if (mine === undefined) return
    const left = { count: mine.count - count, bytes: mine.bytes - bytes }
    if (left.count <= 0 && left.bytes <= 0) this.perPeer.delete(peer)
    else this.perPeer.set(peer, left)
  }

  private refuse (code: ChunkRefusal, reason: string): AssemblyVerdict {
    this.stats.refused++
    return { type: 'refused', code, reason }
  }
}
