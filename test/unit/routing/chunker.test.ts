// The chunker (src/core/routing/chunker.ts) and the chunked messenger over a fake envelope link
// (src/net/overlay/chunk-messenger.ts): a message resumes after a path loss with only its missing
// chunks, the receiver's bounds hold, garbage chunks are refused with typed codes.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ChunkAssembler, OutgoingChunks, decodeChunk, encodeChunk, splitMessage, chunkLength, CHUNK_HEADER_BYTES, DEFAULT_CHUNK_BYTES, type Chunk } from '../../../src/core/routing/chunker.js'
import { ChunkMessenger, TASK_APP_CONTENT, DEFAULT_MAX_REPLY_BYTES, type EnvelopeLink } from '../../../src/net/overlay/chunk-messenger.js'
import { TASK_MAX_FRAME } from '../../../src/net/tasks.js'
import type { ReceivedMessage } from '../../../src/net/overlay/envelopes.js'

const id = (n: number): Uint8Array => new Uint8Array(16).fill(n)
const bytes = (n: number, seed = 1): Uint8Array => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff; return b }
const small = { maxChunkBytes: 1000 }

test('split → encode → decode → assemble: a message crosses in chunks, duplicates are dropped', () => {
  const payload = bytes(4500)
  const chunks = splitMessage('request', id(1), payload, 1000)
  assert.is(chunks.length, 5)
  assert.equal(chunks.map(c => c.data.length), [900, 900, 900, 900, 900], 'equal chunks (the count the total implies)')
  const a = new ChunkAssembler(small)
  const enc = chunks.map(encodeChunk)
  // out of order, with a duplicate
  for (const i of [3, 0, 4, 0, 1]) assert.ok(['partial', 'duplicate'].includes(a.accept(0, 'p', enc[i]).type))
  assert.equal(a.pending, { messages: 1, bytes: 4500 })
  const v = a.accept(0, 'p', enc[2])
  assert.is(v.type, 'complete')
  if (v.type === 'complete') { assert.equal(v.payload, payload); assert.is(v.kind, 'request') }
  assert.equal(a.pending, { messages: 0, bytes: 0 }, 'the reservation is released')
  assert.is(a.accept(1, 'p', enc[1]).type, 'duplicate', 'a late copy of a completed message is not a new message')
  assert.is(a.accept(1, 'other', enc[1]).type, 'partial', 'message ids are per sender')
  // an empty message is one empty chunk
  const e = splitMessage('response', id(2), new Uint8Array(0), 1000)
  assert.is(e.length, 1)
  const ev = a.accept(2, 'p', encodeChunk(e[0]))
  assert.ok(ev.type === 'complete' && ev.payload.length === 0)
})

test('garbage chunks are refused with typed codes', () => {
  const a = new ChunkAssembler(small, () => 10_000)
  const good = splitMessage('request', id(3), bytes(3000), 1000)
  const code = (b: Uint8Array): string | undefined => { const v = a.accept(0, 'p', b); return v.type === 'refused' ? v.code : v.type }
  assert.is(code(new Uint8Array(5)), 'CHUNK_MALFORMED', 'short')
  const wrongMagic = encodeChunk(good[0]); wrongMagic[0] = 0
  assert.is(code(wrongMagic), 'CHUNK_MALFORMED', 'magic')
  const wrongKind = encodeChunk(good[0]); wrongKind[1] = 99
  assert.is(code(wrongKind), 'CHUNK_MALFORMED', 'kind')
  const patch = (c: Chunk, o: Partial<Chunk>): Uint8Array => encodeChunk({ ...c, ...o })
  assert.is(code(patch(good[0], { index: 3 })), 'CHUNK_MALFORMED', 'index past count')
  assert.is(code(patch(good[0], { count: 30, totalBytes: 3000 })), 'CHUNK_SPLIT', 'crumbs: more chunks than our size needs (refused, not called malformed: the size is a local option)')
  assert.is(code(patch(good[0], { data: bytes(999) })), 'CHUNK_MALFORMED', 'a chunk longer than its place')
  assert.is(code(encodeChunk({ kind: 'request', id: id(4), index: 0, count: 11, totalBytes: 10_001, data: bytes(chunkLength(10_001, 11, 0)) })), 'CHUNK_TOO_LARGE', 'above the per-peer cap')
  // a chunk that disagrees with its message's first chunk
  assert.is(code(encodeChunk(good[0])), 'partial')
  assert.is(code(encodeChunk({ ...good[1], count: 4, totalBytes: 3100, data: bytes(chunkLength(3100, 4, 1)) })), 'CHUNK_MISMATCH')
  assert.ok(decodeChunk(encodeChunk(good[2]), 1000).ok)
  assert.is(encodeChunk(good[2]).length, CHUNK_HEADER_BYTES + 1000)
})

test('bounds: incomplete messages per peer, bytes per peer and in total; idle ones expire', () => {
  const a = new ChunkAssembler({ maxChunkBytes: 100, maxPartialPerPeer: 2, maxBytesPerPeer: 1000, maxBytesTotal: 2000, partialTtlMs: 1000 })
  const first = (n: number, total: number): Uint8Array => encodeChunk(splitMessage('request', id(n), bytes(total), 100)[0])
  const verdict = (peer: string, b: Uint8Array, now = 0): string => { const v = a.accept(now, peer, b); return v.type === 'refused' ? v.code : v.type }
  assert.is(verdict('p', first(1, 400)), 'partial')
  assert.is(verdict('p', first(2, 400)), 'partial')
  assert.is(verdict('p', first(3, 200)), 'CHUNK_PEER_LIMIT', 'a third incomplete message from one peer')
  assert.is(verdict('q', first(4, 900)), 'partial')
  assert.is(verdict('q', first(5, 200)), 'CHUNK_PEER_LIMIT', 'bytes per peer (declared totals are reserved)')
  assert.is(verdict('r', first(6, 400)), 'CHUNK_TOTAL_LIMIT', 'bytes in total')
  assert.equal(a.pending, { messages: 3, bytes: 1700 })
  // nothing new for a TTL: every incomplete message is dropped and its budget freed
  assert.is(verdict('r', first(6, 300), 1000), 'partial')
  assert.equal(a.pending, { messages: 1, bytes: 300 })
  assert.is(a.stats.expired, 3)
})

test('held bytes of completed messages count against the per-peer and total budgets until released', () => {
  const a = new ChunkAssembler({ maxChunkBytes: 100, maxBytesPerPeer: 1000, maxBytesTotal: 1500 })
  assert.ok(a.hold('p', 800))
  assert.not.ok(a.hold('p', 300), 'per peer')
  const first = (n: number, total: number): Uint8Array => encodeChunk(splitMessage('request', id(n), bytes(total), 100)[0])
  const v = a.accept(0, 'p', first(1, 300))
  assert.ok(v.type === 'refused' && v.code === 'CHUNK_PEER_LIMIT', 'an incomplete message does not fit beside held bytes')
  assert.ok(a.hold('q', 600))
  assert.not.ok(a.hold('r', 200), 'in total')
  assert.is(a.holding, 1400)
  assert.equal(a.pending, { messages: 0, bytes: 0 }, 'held bytes are not incomplete messages')
  a.release('p', 800)
  assert.is(a.accept(0, 'p', first(2, 300)).type, 'partial')
  a.release('q', 600)
  assert.is(a.holding, 0)
  assert.equal(a.pending, { messages: 1, bytes: 300 })
})

test('OutgoingChunks: a window at a time; after a failure only the unacked chunks go again', () => {
  const o = new OutgoingChunks(6, 3, 2)
  assert.equal(o.next(), [0, 1, 2])
  assert.equal(o.next(), [], 'the window is full')
  o.ack(0); o.ack(2)
  assert.ok(o.fail(1), 'one failure is retried')
  assert.equal(o.next(), [1, 3, 4])
  o.ack(1); o.ack(3); o.ack(4)
  assert.equal(o.missing(), [5])
  assert.equal(o.next(), [5])
  assert.ok(o.fail(5))
  assert.equal(o.next(), [5])
  assert.not.ok(o.fail(5), 'the second failure of one chunk fails the message')
  assert.is(o.sends, 8)
})

/** Two endpoints joined by a fake envelope link; `lose(chunkIndex)` decides which sends a lost path eats. */
function linkPair (lose: (from: string, payload: Uint8Array) => boolean = () => false): { a: EnvelopeLink, b: EnvelopeLink, delivered: Map<string, number> } {
  const subs = new Map<string, Set<(m: ReceivedMessage) => void>>([['A', new Set()], ['B', new Set()]])
  const delivered = new Map<string, number>()
  let n = 0
  const make = (self: string): EnvelopeLink => ({
    subscribe: fn => { subs.get(self)!.add(fn); return () => { subs.get(self)!.delete(fn) } },
    send: async (to, payload, opts) => {
      await new Promise(resolve => setImmediate(resolve))
      if (lose(self, payload)) throw Object.assign(new Error('every path failed'), { code: 'DELIVERY_FAILED' })
      const d = decodeChunk(payload)
      if (d.ok) { const k = `${d.chunk.kind}/${d.chunk.index}`; delivered.set(k, (delivered.get(k) ?? 0) + 1) }
      for (const fn of subs.get(to)!) fn({ sender: self, messageId: String(n++), contentType: opts.contentType ?? TASK_APP_CONTENT, sequence: 0, payload, via: 'R1' })
      return { via: 'R1' }
    }
  })
  return { a: make('A'), b: make('B'), delivered }
}

test('a 1 MiB request crosses in chunks; a path lost mid-message costs only the chunks not yet acked', async () => {
  // chunks 2 and 3 of the request are lost once (their every path failed), then the path is back
  const lostOnce = new Set<number>()
  const { a, b, delivered } = linkPair((from, payload) => {
    const d = decodeChunk(payload)
    if (from !== 'A' || !d.ok || d.chunk.kind !== 'request' || ![2, 3].includes(d.chunk.index) || lostOnce.has(d.chunk.index)) return false
    lostOnce.add(d.chunk.index)
    return true
  })
  const input = bytes(1 << 20, 7)
  const server = new ChunkMessenger(b, { retryBackoffMs: 5, maxMessageBytes: () => 2 << 20, onRequest: async (_peer, p) => p.subarray(0, 10) })
  const client = new ChunkMessenger(a, { retryBackoffMs: 5 })
  const r = await client.request('B', input, { timeoutMs: 30_000 })
  assert.equal(r.payload, input.subarray(0, 10))
  assert.equal(r.relays, ['R1'])
  const count = splitMessage('request', id(0), input).length
  assert.ok(count >= 5, `1 MiB is ${count} chunks`)
  for (let i = 0; i < count; i++) assert.is(delivered.get(`request/${i}`), 1, `chunk ${i} arrived exactly once`)
  assert.is(client.stats.chunksSent, count + 2, 'only the two lost chunks were sent again')
  assert.is(client.stats.chunkResends, 2)
  assert.is(server.assembler.stats.completed, 1)
  client.close(); server.close()
})

test('error replies reject with their code; a message too large for the peer is refused, not assembled', async () => {
  const refused: string[] = []
  const { a, b } = linkPair()
  const server = new ChunkMessenger(b, {
    maxMessageBytes: () => 1000,
    onRefused: (_p, code) => refused.push(code),
    onRequest: async () => { throw Object.assign(new Error('no lease here'), { code: 'LEASE_UNKNOWN' }) }
  })
  const client = new ChunkMessenger(a)
  await client.request('B', bytes(10)).then(() => assert.unreachable('resolved'), (err: Error & { code?: string }) => { assert.is(err.code, 'LEASE_UNKNOWN') })
  await client.request('B', bytes(5000), { timeoutMs: 300 }).then(() => assert.unreachable('resolved'), (err: Error & { code?: string }) => { assert.is(err.code, 'OVERLAY_TIMEOUT') })
  assert.equal(refused, ['CHUNK_TOO_LARGE'])
  assert.equal(server.assembler.pending, { messages: 0, bytes: 0 })
  // a reply nobody asked for is refused (0 bytes allowed from a peer with no pending request)
  await server.send('A', 'response', id(9), bytes(10))
  assert.is(client.assembler.stats.refused, 1)
  client.close(); server.close()
})

test('requests being answered are bounded per peer: beyond, OVERLAY_BUSY (typed), and the slot frees when one is answered', async () => {
  const { a, b } = linkPair()
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let started = 0
  const server = new ChunkMessenger(b, { maxServingPerPeer: 2, maxMessageBytes: () => 1000, onRequest: async (_peer, p) => { started++; await gate; return p } })
  const client = new ChunkMessenger(a)
  const slow = [client.request('B', bytes(1, 1)), client.request('B', bytes(1, 2))]
  while (started < 2) await new Promise(resolve => setImmediate(resolve))
  await client.request('B', bytes(1, 3)).then(() => assert.unreachable('resolved'), (err: Error & { code?: string }) => { assert.is(err.code, 'OVERLAY_BUSY') })
  release()
  assert.equal((await Promise.all(slow)).map(r => r.payload[0]), [bytes(1, 1)[0], bytes(1, 2)[0]])
  assert.equal((await client.request('B', bytes(1, 4))).payload, bytes(1, 4))
  assert.is(started, 3)
  client.close(); server.close()
})

test('bytes of requests being served are budgeted: beyond the per-peer bytes, OVERLAY_BUSY until a handler settles', async () => {
  const { a, b } = linkPair()
  let release: () => void = () => {}
  const gate = new Promise<void>(resolve => { release = resolve })
  let started = 0
  const refused: string[] = []
  const server = new ChunkMessenger(b, { chunkBytes: 1000, limits: { maxBytesPerPeer: 4500 }, onRefused: (_p, code) => refused.push(code), maxMessageBytes: () => 5000, onRequest: async (_peer, p) => { started++; await gate; return p.subarray(0, 1) } })
  const client = new ChunkMessenger(a, { chunkBytes: 1000 })
  const slow = client.request('B', bytes(4000, 1))
  while (started < 1) await new Promise(resolve => setImmediate(resolve))
  assert.is(server.assembler.holding, 4000, 'the request being served holds its bytes')
  // a chunked request is refused at its first chunk (its reservation does not fit beside the held bytes)
  await client.request('B', bytes(2000, 2), { timeoutMs: 300 }).then(() => assert.unreachable('resolved'), (err: Error & { code?: string }) => { assert.is(err.code, 'OVERLAY_TIMEOUT') })
  assert.ok(refused.length > 0 && refused.every(c => c === 'CHUNK_PEER_LIMIT'), refused.join())
  await client.request('B', bytes(900, 3)).then(() => assert.unreachable('resolved'), (err: Error & { code?: string }) => { assert.is(err.code, 'OVERLAY_BUSY', 'a one-chunk request too') })
  release()
  assert.equal((await slow).payload, bytes(4000, 1).subarray(0, 1))
  assert.is(server.assembler.holding, 0, 'released when the handler settled')
  assert.equal((await client.request('B', bytes(2000, 4))).payload, bytes(2000, 4).subarray(0, 1))
  client.close(); server.close()
})

test('a reply is capped at the task frame cap (16 MiB), not the per-peer budget', async () => {
  const { a, b } = linkPair()
  const refused: string[] = []
  const client = new ChunkMessenger(a, { onRefused: (_p, code) => refused.push(code) })
  const server = new ChunkMessenger(b, { maxMessageBytes: () => 1000, onRequest: async () => await new Promise<Uint8Array>(() => {}) })
  const pending = client.request('B', bytes(10), { timeoutMs: 60_000 }).catch(() => {})
  while (server.assembler.stats.completed < 1) await new Promise(resolve => setImmediate(resolve))
  // the first chunk of a 17 MiB "reply" (the old cap, 48 MiB, took it in)
  const total = 17 * 1024 * 1024
  const count = Math.ceil(total / DEFAULT_CHUNK_BYTES)
  await b.send('A', encodeChunk({ kind: 'response', id: id(7), index: 0, count, totalBytes: total, data: bytes(chunkLength(total, count, 0)) }), { contentType: TASK_APP_CONTENT })
  assert.equal(refused, ['CHUNK_TOO_LARGE'])
  assert.is(DEFAULT_MAX_REPLY_BYTES, TASK_MAX_FRAME)
  client.close(); server.close()
  await pending
})

test('incomplete messages expire on a timer, with no new chunk to trigger it', async () => {
  const { a, b } = linkPair()
  const server = new ChunkMessenger(b, { chunkBytes: 1000, limits: { partialTtlMs: 40 }, maxMessageBytes: () => 5000, onRequest: async (_peer, p) => p })
  await a.send('B', encodeChunk(splitMessage('request', id(8), bytes(3000), 1000)[0]), { contentType: TASK_APP_CONTENT })
  assert.equal(server.assembler.pending, { messages: 1, bytes: 3000 })
  const end = Date.now() + 20_000
  while (server.assembler.pending.messages > 0 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
  assert.equal(server.assembler.pending, { messages: 0, bytes: 0 })
  assert.is(server.assembler.stats.expired, 1)
  server.close()
})

test('a message fails when one chunk keeps failing (no endless retries)', async () => {
  const { a, b } = linkPair((from, payload) => { const d = decodeChunk(payload); return from === 'A' && d.ok && d.chunk.index === 1 })
  const server = new ChunkMessenger(b, { maxMessageBytes: () => 1 << 20, onRequest: async (_peer, p) => p })
  const client = new ChunkMessenger(a, { retryBackoffMs: 1, maxChunkFailures: 3 })
  await client.request('B', bytes(500_000)).then(() => assert.unreachable('resolved'), (err: Error & { code?: string }) => { assert.is(err.code, 'DELIVERY_FAILED') })
  client.close(); server.close()
})

test.run()
