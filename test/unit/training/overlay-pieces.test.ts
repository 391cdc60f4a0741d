// A model state larger than the overlay receiver's per-peer budget (32 MiB) crosses the overlay
// in pieces (src/training/pieces.ts, overlay-frames.ts): each piece a quarter of the budget, the
// next sent once the previous was acked, a piece whose path was lost sent again alone (the ones
// delivered are not), rebuilt intact. The receiving side is bounded: a frame only up to what its
// sender may send (a stranger: small), reserved per peer and in total, idle ones expire, garbage
// charged. Per-job routing: an overlay job's frames never dial; a direct job's never take the overlay.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { PieceAssembler, decodePiece, encodePiece, splitFrame, pieceBytesFor, PIECE_HEADER_BYTES, MAX_PARTIAL_PER_PEER } from '../../../src/training/pieces.js'
import { SMALL_FRAME_BYTES } from '../../../src/net/guard/index.js'
import { EnvelopeHub, isolatedNode, received, until } from './overlay-hub.js'

const MiB = 1024 * 1024
const id = (n: number): Uint8Array => new Uint8Array(16).fill(n)
const frameOf = (n: number, seed = 7): Uint8Array => { const f = new Uint8Array(n); for (let i = 0; i < n; i++) f[i] = (i * 31 + seed) & 0xff; return f }
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

test('pieces: split into equal pieces of at most a quarter of the budget, rebuilt in any order, duplicates ignored', () => {
  const frame = frameOf(1000)
  const pieces = splitFrame(id(1), frame, 300)
  assert.is(pieces.length, 4)
  assert.ok(pieceBytesFor(32 * MiB) + PIECE_HEADER_BYTES <= 8 * MiB)
  const a = new PieceAssembler()
  const order = [2, 0, 3, 2, 1]
  const verdicts = order.map(i => a.accept(0, 'P', encodePiece(pieces[i]), 2000).type)
  assert.equal(verdicts, ['partial', 'partial', 'partial', 'duplicate', 'complete'])
  const done = a.accept(0, 'P', encodePiece(pieces[1]), 2000)
  assert.is(done.type, 'duplicate', 'a late copy of a completed frame starts nothing')
  assert.is(a.reserved, 0)
})

test('pieces: a stranger (small limit) reserves nothing; garbage, mismatches and crumbs are refused with a code', () => {
  const a = new PieceAssembler()
  const big = splitFrame(id(2), frameOf(40 * 1024), 16 * 1024)
  const v = a.accept(0, 'stranger', encodePiece(big[0]), SMALL_FRAME_BYTES / 2)
  assert.is(v.type, 'refused')
  assert.is(v.type === 'refused' && v.code, 'PIECE_TOO_LARGE')
  assert.is(a.reserved, 0, 'nothing reserved for a stranger')
  assert.is(decodePiece(new Uint8Array([0, 9, 1, 2])).ok, false)
  const one = encodePiece({ id: id(3), index: 0, count: 1, totalBytes: 4, data: new Uint8Array(4) })
  assert.is((a.accept(0, 'P', one, MiB) as { code?: string }).code, 'PIECE_MALFORMED', 'one piece would be a whole frame')
  const wrongLen = encodePiece({ id: id(4), index: 0, count: 2, totalBytes: 10, data: new Uint8Array(3) })
  assert.is((a.accept(0, 'P', wrongLen, MiB) as { code?: string }).code, 'PIECE_MALFORMED')
  const p = splitFrame(id(5), frameOf(100), 50)
  assert.is(a.accept(0, 'P', encodePiece(p[0]), MiB).type, 'partial')
  const liar = encodePiece({ ...p[1], totalBytes: 102, data: new Uint8Array(51) })
  assert.is((a.accept(0, 'P', liar, MiB) as { code?: string }).code, 'PIECE_MISMATCH')
})

test('pieces: review F3/F4: a shape with an empty piece, a small frame in pieces, a non-member\'s pieces are refused, never thrown', () => {
  const a = new PieceAssembler()
  // piece 3 of 4 of a 5-byte frame: its place (6) lies past the frame, its length 0
  const empty = encodePiece({ id: id(6), index: 3, count: 4, totalBytes: 5, data: new Uint8Array(0) })
  let v: ReturnType<PieceAssembler['accept']> | undefined
  try { v = a.accept(0, 'P', empty, MiB) } catch (err) { assert.unreachable(`threw ${(err as Error).message}`) }
  assert.is(v?.type === 'refused' && v.code, 'PIECE_MALFORMED')
  assert.is(a.reserved, 0)
  assert.is(a.size, 0)
  const head = encodePiece({ id: id(6), index: 0, count: 4, totalBytes: 5, data: new Uint8Array(2) })
  assert.is((a.accept(0, 'P', head, MiB) as { code?: string }).code, 'PIECE_MALFORMED', 'any piece of that shape')
  // a frame one overlay frame carries is never pieced by an honest sender: charged (malformed)
  const small = encodePiece(splitFrame(id(7), frameOf(1000), 500)[0])
  assert.is((a.accept(0, 'P', small, MiB, 4096) as { code?: string }).code, 'PIECE_MALFORMED')
  // a peer allowed no more than one overlay frame (not a member): refused before anything is reserved
  const big = encodePiece(splitFrame(id(8), frameOf(10_000), 5000)[0])
  assert.is((a.accept(0, 'S', big, 4096, 4096) as { code?: string }).code, 'PIECE_NOT_MEMBER')
  assert.is(a.accept(0, 'M', big, MiB, 4096).type, 'partial', 'a member\'s large frame is taken')
  assert.is(a.reserved, 10_000)
})

test('pieces: bounded per peer (its own older frames make room) and in total; idle frames expire', () => {
  const a = new PieceAssembler({ maxBytesTotal: 3000, ttlMs: 1000 })
  const first = (n: number, peer: string, bytes = 1000): string => a.accept(0, peer, encodePiece(splitFrame(id(n), frameOf(bytes), bytes / 2)[0]), 5000).type
  assert.is(first(1, 'A'), 'partial')
  assert.is(first(2, 'A'), 'partial')
  assert.is(first(3, 'A'), 'partial', `a third frame of A evicts A's oldest (at most ${MAX_PARTIAL_PER_PEER})`)
  assert.is(a.stats.evicted, 1)
  assert.is(a.reserved, 2000)
  assert.is(first(4, 'B'), 'partial')
  assert.is(first(5, 'C'), 'refused', 'no room in all: another peer cannot evict A\'s or B\'s')
  assert.is(a.reserved, 3000)
  a.expire(1000)
  assert.is(a.reserved, 0)
  assert.is(a.stats.expired, 3)
})

test('a 40 MiB model state crosses the overlay (32 MiB per peer, 64 MiB in all) in pieces, intact, each acked before the next', async () => {
  const hub = new EnvelopeHub()
  const a = await isolatedNode(hub, 'A', { routing: 'overlay' })
  const b = await isolatedNode(hub, 'B', { routing: 'overlay', frameLimit: 64 * MiB })
  await a.transport.start(); await b.transport.start()
  const got = received(b.transport)
  // how much the receiver's chunk assembler held at most: one piece (plus one chunk) at a time
  let peak = 0
  hub.failing = () => { peak = Math.max(peak, b.messenger.assembler.pending.bytes); return false }
  const params = frameOf(40 * MiB, 3)
  try {
    a.transport.send(b.id.toString(), { stateResponse: { jobId: 'j', round: 5, params, optimizer: new Uint8Array(0), optimizerRound: 0 } })
    await until(() => got.length > 0, 'the state', 240_000)
    const s = got[0].msg.stateResponse
    assert.ok(s != null)
    assert.is(s.params.length, params.length)
    assert.is(sha(s.params), sha(params), 'intact')
    assert.is(a.transport.stats.piecesSent, 6, '40 MiB in pieces of under 8 MiB')
    assert.is(b.transport.stats.piecesReceived, 6)
    assert.is(a.transport.stats.pieceResends, 0)
    assert.is(a.transport.stats.dropped, 0)
    assert.is(a.transport.stats.routeLimited, 0)
    assert.ok(peak <= 8 * MiB, `the receiver's overlay budget held ${peak} bytes at most`)
    assert.is(b.transport.overlayFrames.pieces.reserved, 0, 'nothing left reserved')
    assert.match(a.transport.routes()[b.id.toString()].facts, /in 6 pieces/)
    assert.is(a.dials.length, 0, 'routing overlay: no dial')
  } finally {
    await a.transport.stop(); await b.transport.stop()
    a.messenger.close(); b.messenger.close()
  }
})

test('a path lost mid-state: only the failed piece goes again; the frame arrives intact', async () => {
  const hub = new EnvelopeHub()
  const a = await isolatedNode(hub, 'A', { routing: 'overlay', messenger: { maxChunkFailures: 2 } })
  const b = await isolatedNode(hub, 'B', { routing: 'overlay', frameLimit: 64 * MiB })
  await a.transport.start(); await b.transport.start()
  const got = received(b.transport)
  // ~45 chunks make a piece: the path is lost for 12 sends during the second piece (more than one send of its chunks can take)
  hub.failing = n => n >= 60 && n < 72
  const params = frameOf(36 * MiB, 9)
  try {
    a.transport.send(b.id.toString(), { stateResponse: { jobId: 'j', round: 1, params, optimizer: new Uint8Array(0), optimizerRound: 0 } })
    await until(() => got.length > 0, 'the state', 240_000)
    assert.is(sha(got[0].msg.stateResponse!.params), sha(params), 'intact')
    assert.ok(a.transport.stats.pieceResends >= 1, `resends: ${a.transport.stats.pieceResends}`)
    assert.is(a.transport.stats.piecesSent, 5)
    // resumable: the pieces delivered before the loss were not sent again (5 pieces of ~7.2 MiB in 192 KiB chunks)
    const chunksPerPiece = Math.ceil(params.length / 5 / (192 * 1024))
    assert.ok(hub.sends < 5 * chunksPerPiece + 2 * chunksPerPiece + 60, `${hub.sends} envelope sends`)
    assert.is(b.transport.overlayFrames.pieces.reserved, 0)
  } finally {
    await a.transport.stop(); await b.transport.stop()
    a.messenger.close(); b.messenger.close()
  }
})

test('a stranger\'s pieces reserve nothing at a member (large frames only from a job\'s members)', async () => {
  const hub = new EnvelopeHub()
  const stranger = await isolatedNode(hub, 'S', { routing: 'overlay' })
  const member = await isolatedNode(hub, 'M', { routing: 'overlay' }) // knows no job: SMALL_FRAME_BYTES for everyone
  await stranger.transport.start(); await member.transport.start()
  const got = received(member.transport)
  try {
    const piece = encodePiece(splitFrame(id(9), frameOf(100 * 1024), 20 * 1024)[0]) // declares 100 KiB: above a stranger's 64 KiB
    await stranger.messenger.sendFrame(member.id.toString(), piece)
    const big = encodePiece(splitFrame(id(8), frameOf(48 * MiB), 12 * MiB)[0])
    await stranger.messenger.sendFrame(member.id.toString(), big).catch(() => {})
    // review F4: one within a stranger's 64 KiB limit is refused too (a stranger never needs pieces), uncharged
    const within = encodePiece(splitFrame(id(7), frameOf(60 * 1024), 8 * 1024)[0])
    await stranger.messenger.sendFrame(member.id.toString(), within)
    await until(() => member.transport.stats.piecesRefused >= 2, 'the refusals')
    assert.is(member.transport.overlayFrames.pieces.size, 0, 'no partial frame for a stranger')
    assert.is(member.transport.overlayFrames.pieces.reserved, 0)
    assert.is(member.messenger.assembler.pending.bytes, 0, 'the overlay holds nothing either')
    assert.is(got.length, 0)
    assert.is(member.bad.length, 0, 'an over-limit frame is refused, not charged')
    await stranger.messenger.sendFrame(member.id.toString(), new Uint8Array([0, 1, 2, 3]))
    await until(() => member.bad.length > 0, 'the charge')
    assert.is(member.bad[0].code, 'TRAINING_MESSAGE_INVALID', 'a malformed piece is charged')
  } finally {
    await stranger.transport.stop(); await member.transport.stop()
    stranger.messenger.close(); member.messenger.close()
  }
})

test('per-job routing: an overlay job never dials, a direct job never takes the overlay, the node\'s auto stays the default', async () => {
  const hub = new EnvelopeHub()
  const calls: string[] = []
  const privacy = { overlayOnly: (p: string, job?: string) => { calls.push(`private ${p.slice(-4)} ${job ?? '-'}`) }, connectionWanted: (p: string) => { calls.push(`wanted ${p.slice(-4)}`) }, jobEnded: (job: string) => { calls.push(`ended ${job}`) } }
  const a = await isolatedNode(hub, 'A', { routing: 'auto', privacy, waitMs: 300 })
  const b = await isolatedNode(hub, 'B', { routing: 'auto' })
  await a.transport.start(); await b.transport.start()
  const got = received(b.transport)
  const to = b.id.toString()
  try {
    a.transport.jobRoutes.set('ov', 'overlay')
    a.transport.send(to, { stateRequest: { jobId: 'ov' } })
    await until(() => got.length === 1, 'the overlay job\'s frame')
    assert.is(a.dials.length, 0, 'no dial for an overlay job')
    assert.is(a.transport.stats.overlayFramesSent, 1)
    assert.match(a.transport.routes()[to].facts, /routing: overlay \(this job/)
    assert.equal(calls, [`private ${to.slice(-4)} ov`], 'the overlay job\'s peer is kept off connections')
    a.transport.jobRoutes.delete('ov')
    assert.equal(calls.at(-1), 'ended ov', 'until the job ends here')

    // a direct job: the dial fails and the frame is dropped, never sent over the overlay
    a.transport.jobRoutes.set('dj', 'direct')
    a.transport.send(to, { stateRequest: { jobId: 'dj' } })
    await until(() => a.transport.stats.dropped === 1, 'the direct frame dropped')
    assert.ok(a.dials.length >= 1, 'a direct job dials')
    assert.is(a.transport.stats.overlayFramesSent, 1, 'nothing more over the overlay')
    assert.is(calls.at(-1), `wanted ${to.slice(-4)}`)

    a.transport.jobRoutes.delete('dj')
    const before = calls.length

    // a job without its own routing: the node's auto (the dial fails, the overlay carries it)
    a.transport.send(to, { stateRequest: { jobId: 'plain' } })
    await until(() => got.length === 2, 'the auto job\'s frame')
    assert.is(got[1].msg.stateRequest?.jobId, 'plain')
    assert.is(a.transport.stats.overlayFramesSent, 2)

    // review F0/F1: a remote coordinator's overlay job (even one reusing a local job's id), and an
    // invitation reply under an explicit routing, route their own frames only: the private set is never touched
    const remote = '12D3KooWRemoteCoordinator'
    a.transport.jobRoutes.set('ov', 'overlay', remote)
    a.transport.send(to, { stateRequest: { jobId: 'ov' } }, undefined, remote)
    await until(() => got.length === 3, 'the remote overlay job\'s frame')
    assert.is(a.transport.stats.overlayFramesSent, 3, 'its frame took the overlay')
    assert.is(a.transport.jobRoutes.get('ov'), undefined, 'a remote job never sets the route of this node\'s job of the same id')
    a.transport.send(to, { inviteReply: { jobId: 'dj2', accepted: false, reason: 'no', paramCount: 0, code: '' } }, 'direct', remote)
    a.transport.jobRoutes.delete('ov', remote)
    assert.equal(calls.slice(before), [], 'no private-set call for a remote job or an invitation reply')
  } finally {
    await a.transport.stop(); await b.transport.stop()
    a.messenger.close(); b.messenger.close()
  }
})

test.run()
