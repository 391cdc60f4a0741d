// The header of one part of a larger message, shared by the overlay's chunks (chunker.ts) and
// training pieces (src/training/pieces.ts): a magic byte, a tag byte (a chunk's kind, a piece's
// version), a 16-byte id, then index, count and total bytes as big-endian u32s, then the data.
// Each user keeps its own magic, tags, bounds and typed refusals; this file only writes and reads
// the bytes and cuts a payload into parts. Pure.

export const PART_ID_BYTES = 16
export const PART_HEADER_BYTES = 2 + PART_ID_BYTES + 12

export interface PartHeader {
  /** The byte after the magic: what it means is the user's (a kind, a version). */
  tag: number
  /** Written as its first 16 bytes, zero-padded. */
  id: Uint8Array
  index: number
  count: number
  totalBytes: number
}

export function encodePart (magic: number, h: PartHeader, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(PART_HEADER_BYTES + data.length)
  const v = new DataView(out.buffer)
  out[0] = magic
  out[1] = h.tag
  out.set(h.id.subarray(0, PART_ID_BYTES), 2)
  v.setUint32(18, h.index)
  v.setUint32(22, h.count)
  v.setUint32(26, h.totalBytes)
  out.set(data, PART_HEADER_BYTES)
  return out
}

/**
 * The header and data of `bytes`, or undefined when it is shorter than a header or does not start
 * with `magic`. The fields are read as they are: checking them is the caller's. The id is a copy,
 * the data a view into `bytes`.
 */
export function readPartHeader (bytes: Uint8Array, magic: number): (PartHeader & { data: Uint8Array }) | undefined {
  if (bytes.length < PART_HEADER_BYTES || bytes[0] !== magic) return undefined
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return { tag: bytes[1], id: bytes.slice(2, 2 + PART_ID_BYTES), index: v.getUint32(18), count: v.getUint32(22), totalBytes: v.getUint32(26), data: bytes.subarray(PART_HEADER_BYTES) }
}

/** Length of part `index` of a `totalBytes` message in `count` parts (all equal but the last). */
export function partLength (totalBytes: number, count: number, index: number): number {
  const per = Math.ceil(totalBytes / count)
  return Math.max(0, Math.min(per, totalBytes - index * per))
}

/** `payload` cut into the fewest parts of at most `maxPartBytes`, each `partLength` long (views, not copies). */
export function splitParts (payload: Uint8Array, maxPartBytes: number): Array<{ index: number, count: number, data: Uint8Array }> {
  const count = Math.max(1, Math.ceil(payload.length / maxPartBytes))
  const per = Math.ceil(payload.length / count)
  const out: Array<{ index: number, count: number, data: Uint8Array }> = []
  for (let i = 0; i < count; i++) out.push({ index: i, count, data: payload.subarray(i * per, Math.min(payload.length, (i + 1) * per)) })
  return out
}
