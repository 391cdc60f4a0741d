// The header codec shared by overlay chunks (src/core/routing/chunker.ts) and training pieces
// (src/training/pieces.ts): both wire encodings pinned byte for byte (a peer of an older version
// reads them), the split both use, and the shared reader's refusals.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { encodeChunk, decodeChunk, splitMessage, chunkLength } from '../../../src/core/routing/chunker.js'
import { encodePiece, decodePiece, splitFrame } from '../../../src/training/pieces.js'
import { encodePart, readPartHeader, splitParts, partLength, PART_HEADER_BYTES } from '../../../src/core/routing/part-header.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const id = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i)

test('a chunk is pinned byte for byte: magic d7, kind, id, index, count, total (big-endian u32s), data', () => {
  const bytes = encodeChunk({ kind: 'frame', id, index: 2, count: 3, totalBytes: 0x01020304, data: new Uint8Array([0xee, 0xff]) })
  assert.is(hex(bytes), 'd7' + '06' + 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + '00000002' + '00000003' + '01020304' + 'eeff')
  const resp = encodeChunk({ kind: 'response', id, index: 0, count: 1, totalBytes: 1, data: new Uint8Array([7]) })
  assert.is(hex(resp), 'd702a0a1a2a3a4a5a6a7a8a9aaabacadaeaf00000000000000010000000107')
})

test('a piece is pinned byte for byte: magic 00, version 01, id, index, count, total (big-endian u32s), data', () => {
  const bytes = encodePiece({ id, index: 1, count: 2, totalBytes: 0x0a0b0c0d, data: new Uint8Array([1, 2, 3]) })
  assert.is(hex(bytes), '00' + '01' + 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf' + '00000001' + '00000002' + '0a0b0c0d' + '010203')
})

test('a short id is padded with zeros, a long one cut at 16 bytes (both codecs)', () => {
  const short = encodeChunk({ kind: 'request', id: new Uint8Array([9, 9]), index: 0, count: 1, totalBytes: 0, data: new Uint8Array(0) })
  assert.is(hex(short), 'd701' + '0909' + '00'.repeat(14) + '00000000' + '00000001' + '00000000')
  const long = encodePiece({ id: new Uint8Array(20).fill(5), index: 0, count: 2, totalBytes: 2, data: new Uint8Array([4]) })
  assert.is(hex(long), '0001' + '05'.repeat(16) + '00000000' + '00000002' + '00000002' + '04')
})

test('the shared codec writes and reads what both encode', () => {
  const data = new Uint8Array([5, 6, 7])
  const bytes = encodePart(0x42, { tag: 9, id, index: 4, count: 5, totalBytes: 15 }, data)
  assert.is(bytes.length, PART_HEADER_BYTES + 3)
  const h = readPartHeader(bytes, 0x42)
  assert.ok(h !== undefined)
  assert.equal({ ...h, id: hex(h.id), data: [...h.data] }, { tag: 9, id: hex(id), index: 4, count: 5, totalBytes: 15, data: [5, 6, 7] })
  // the id is a copy (a later change to the frame does not change it), data a view
  bytes[2] ^= 0xff
  assert.is(h.id[0], 0xa0)
  assert.is(readPartHeader(bytes, 0x43), undefined, 'wrong magic')
  assert.is(readPartHeader(bytes.subarray(0, PART_HEADER_BYTES - 1), 0x42), undefined, 'short')
  assert.ok(readPartHeader(bytes.subarray(0, PART_HEADER_BYTES), 0x42) !== undefined, 'a header with no data')
  // a header read from a view into a larger buffer (offsets kept)
  const big = new Uint8Array(10 + bytes.length); big.set(bytes, 10)
  assert.is(readPartHeader(big.subarray(10), 0x42)?.count, 5)
})

test('both decoders still read the pinned bytes and refuse another magic', () => {
  const c = decodeChunk(Buffer.from('d702a0a1a2a3a4a5a6a7a8a9aaabacadaeaf00000000000000010000000107', 'hex'))
  assert.ok(c.ok && c.chunk.kind === 'response' && c.chunk.totalBytes === 1 && c.chunk.data[0] === 7)
  const p = decodePiece(Buffer.from('0001a0a1a2a3a4a5a6a7a8a9aaabacadaeaf000000010000000200000005' + '0a0b', 'hex'))
  assert.ok(p.ok && p.piece.index === 1 && p.piece.totalBytes === 5 && hex(p.piece.data) === '0a0b')
  const asPiece = decodePiece(encodeChunk({ kind: 'request', id, index: 0, count: 2, totalBytes: 2, data: new Uint8Array([1]) }))
  assert.ok(!asPiece.ok && asPiece.code === 'PIECE_MALFORMED')
  const asChunk = decodeChunk(encodePiece({ id, index: 0, count: 2, totalBytes: 2, data: new Uint8Array([1]) }))
  assert.ok(!asChunk.ok && asChunk.code === 'CHUNK_MALFORMED')
})

test('the split: fewest parts of at most the size, equal but the last, the same for chunks and pieces', () => {
  for (const [total, max] of [[0, 4], [1, 4], [4, 4], [5, 4], [10, 3], [1000, 7], [1001, 1000]]) {
    const payload = Uint8Array.from({ length: total }, (_, i) => i & 0xff)
    const parts = splitParts(payload, max)
    assert.is(parts.length, Math.max(1, Math.ceil(total / max)), `${total}/${max}`)
    assert.equal(Buffer.concat(parts.map(p => p.data)), Buffer.from(payload))
    for (const p of parts) {
      assert.ok(p.data.length <= max)
      assert.is(p.data.length, partLength(total, parts.length, p.index))
      assert.is(partLength(total, parts.length, p.index), chunkLength(total, parts.length, p.index))
    }
    const chunks = splitMessage('frame', id, payload, max)
    assert.equal(chunks.map(c => [c.index, c.count, c.totalBytes, [...c.data]]), parts.map(p => [p.index, p.count, total, [...p.data]]))
    const pieces = splitFrame(id, payload, max)
    assert.equal(pieces.map(c => [c.index, c.count, c.totalBytes, [...c.data]]), parts.map(p => [p.index, p.count, total, [...p.data]]))
  }
})

test.run()
