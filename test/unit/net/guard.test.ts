// The inbound guard with fake streams: stream caps per peer and protocol, buffer budgets per peer
// and per node (reserved at the prefix, released when read or when the stream ends), read and
// idle deadlines on an explicit clock, per-stream frame limits, the protocol context, the gate.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createInboundGuard, guardedHandle, installGuard, type InboundGuardInit } from '../../../src/net/guard/index.js'
import { FRAME_OVERHEAD_BYTES as O, type FramedStream } from '../../../src/net/framed.js'
import { encodeFrame, encodeFramePrefix } from '../../../src/wire/frame.js'
import { currentProtocolContext } from '../../../src/node/protocol-context.js'
import type { WireError } from '../../../src/errors.js'
import { FakeHost } from './fake-stream.js'

const P = '/test/1.0.0'

function setup (init: InboundGuardInit = {}, opts: { expectsRequest?: boolean, streamsPerPeer?: number, maxFrameBytes?: number | ((peer: string) => number) } = {}): {
  host: FakeHost, charges: string[], framed: Map<string, FramedStream[]>, clock: { t: number }, guard: ReturnType<typeof createInboundGuard>, contexts: Array<unknown>
} {
  const clock = { t: 1000 }
  const charges: string[] = []
  const framed = new Map<string, FramedStream[]>()
  const contexts: unknown[] = []
  const guard = createInboundGuard({ now: () => clock.t, sweepMs: 1e9, charge: (peer: PeerId, err: WireError) => { charges.push(`${peer.toString()} ${err.code}`) }, ...init })
  const host = new FakeHost()
  installGuard(host, guard)
  void guardedHandle(host as any, P, async (_s, _c, g) => {
    contexts.push(currentProtocolContext())
    const limit = opts.maxFrameBytes
    const f = g.open({ maxFrameBytes: typeof limit === 'function' ? () => limit(g.peer) : limit ?? 1 << 20 })
    framed.set(g.peer, [...(framed.get(g.peer) ?? []), f])
    // a handler that reads until the stream ends
    try { for (;;) { if (await f.read() === undefined) break } } catch {}
  }, { expectsRequest: opts.expectsRequest, streamsPerPeer: opts.streamsPerPeer })
  return { host, charges, framed, clock, guard, contexts }
}

test('streams beyond the per-peer cap of a protocol are reset and charged; other peers are not affected', async () => {
  const { host, charges, guard } = setup({}, { streamsPerPeer: 3 })
  const a = [0, 1, 2].map(() => host.open(P, 'A'))
  assert.is(guard.streamsOf('A', P), 3)
  const over = host.open(P, 'A')
  assert.is((over.stream.aborted as WireError | undefined)?.code, 'STREAM_LIMIT')
  assert.equal(charges, ['A STREAM_LIMIT'])
  const b = host.open(P, 'B')
  assert.is(b.stream.aborted, undefined)
  // a closed stream frees its place
  a[0].stream.end()
  assert.is(guard.streamsOf('A', P), 2)
  const again = host.open(P, 'A')
  assert.is(again.stream.aborted, undefined)
  assert.is(guard.stats.streamsRefused, 1)
})

test('the two relay versions share one per-peer stream budget: 4 in all, not 4 of each', async () => {
  const charges: string[] = []
  const guard = createInboundGuard({ now: () => 1000, sweepMs: 1e9, charge: (peer: PeerId, err: WireError) => { charges.push(`${peer.toString()} ${err.code}`) } })
  const host = new FakeHost()
  installGuard(host, guard)
  for (const v of ['/dbc/relay/1.0.0', '/dbc/relay/1.1.0']) void guardedHandle(host as any, v, async (_s, _c, g) => { const f = g.open({ maxFrameBytes: 1024 }); try { for (;;) { if (await f.read() === undefined) break } } catch {} })
  const old = [0, 1].map(() => host.open('/dbc/relay/1.0.0', 'A'))
  const cur = [0, 1].map(() => host.open('/dbc/relay/1.1.0', 'A'))
  for (const x of [...old, ...cur]) assert.is(x.stream.aborted, undefined)
  assert.is(guard.streamsOf('A', '/dbc/relay/1.1.0'), 4)
  const over = host.open('/dbc/relay/1.1.0', 'A')
  assert.is((over.stream.aborted as WireError | undefined)?.code, 'STREAM_LIMIT')
  assert.match((over.stream.aborted as Error).message, /all versions/)
  assert.is((host.open('/dbc/relay/1.0.0', 'A').stream.aborted as WireError | undefined)?.code, 'STREAM_LIMIT', 'nor a fifth of the other version')
  assert.equal(charges, ['A STREAM_LIMIT', 'A STREAM_LIMIT'])
  // a closed stream of either version frees a place for both
  old[0].stream.end()
  assert.is(host.open('/dbc/relay/1.1.0', 'A').stream.aborted, undefined)
  assert.is(host.open('/dbc/relay/1.0.0', 'B').stream.aborted, undefined, 'another peer has its own budget')
})

test('the handler runs inside the protocol context naming the protocol and the peer', async () => {
  const { host, contexts } = setup()
  host.open(P, 'A')
  await new Promise(resolve => setImmediate(resolve))
  assert.equal(contexts, [{ protocol: P, peer: 'A' }])
})

test('a frame is reserved from its prefix against the peer budget; over it the stream is reset and the peer charged', async () => {
  const { host, charges, guard } = setup({ peerBufferBytes: 1000, nodeBufferBytes: 10_000 })
  const s1 = host.open(P, 'A')
  const s2 = host.open(P, 'A')
  await new Promise(resolve => setImmediate(resolve))
  s1.stream.deliver(encodeFramePrefix(600))
  assert.is(guard.bufferedBytes('A'), 600 + O, 'a frame counts its length and the per-frame overhead')
  assert.is(guard.bufferedBytes(), 600 + O)
  s2.stream.deliver(encodeFramePrefix(600)) // 1,328 > 1,000: refused before any byte of it is buffered
  assert.is((s2.stream.aborted as WireError | undefined)?.code, 'BUFFER_LIMIT')
  assert.equal(charges, ['A BUFFER_LIMIT'])
  assert.is(guard.bufferedBytes('A'), 600 + O)
  // the first frame completes and is read: its bytes come back
  s1.stream.deliver(new Uint8Array(600))
  await new Promise(resolve => setImmediate(resolve))
  assert.is(guard.bufferedBytes('A'), 0)
  assert.is(guard.bufferedBytes(), 0)
})

test('the node budget refuses a frame; the peer is charged only beyond its fair share', async () => {
  const { host, charges, guard } = setup({ peerBufferBytes: 10_000, nodeBufferBytes: 1000, fairShareBytes: 700 })
  const a = host.open(P, 'A')
  const b = host.open(P, 'B')
  const b2 = host.open(P, 'B')
  await new Promise(resolve => setImmediate(resolve))
  a.stream.deliver(encodeFramePrefix(800))
  b.stream.deliver(encodeFramePrefix(300)) // node over budget, B holds little: refused, not charged
  assert.is((b.stream.aborted as WireError | undefined)?.code, 'BUFFER_LIMIT')
  assert.equal(charges, [])
  a.stream.end() // A leaves: its reservation is released with its stream
  assert.is(guard.bufferedBytes(), 0)
  b2.stream.deliver(encodeFramePrefix(900))
  assert.is(b2.stream.aborted, undefined)
  assert.is(guard.bufferedBytes('B'), 900 + O)
})

test('a node-budget refusal does not charge a peer for a frame its stream allows, even above the fair share', async () => {
  // M is a member allowed 1,500-byte frames (a model state above the fair share); X is allowed 400
  const { host, charges } = setup({ peerBufferBytes: 10_000, nodeBufferBytes: 2000, fairShareBytes: 700 }, { maxFrameBytes: (peer) => peer === 'M' ? 1500 : 400 })
  const xs = [0, 1, 2, 3].map(() => host.open(P, 'X'))
  const m = host.open(P, 'M')
  await new Promise(resolve => setImmediate(resolve))
  for (const x of xs.slice(0, 3)) x.stream.deliver(encodeFramePrefix(400)) // X holds 3 × 464 = 1,392
  m.stream.deliver(encodeFramePrefix(1000)) // 1,392 + 1,064 > 2,000: refused
  assert.is((m.stream.aborted as WireError | undefined)?.code, 'BUFFER_LIMIT')
  assert.equal(charges, [], 'M held no more than the frame it is allowed')
  xs[3].stream.deliver(encodeFramePrefix(400)) // 1,392 + 464 = 1,856: fits
  assert.is(xs[3].stream.aborted, undefined)
  const x5 = host.open(P, 'X')
  await new Promise(resolve => setImmediate(resolve))
  x5.stream.deliver(encodeFramePrefix(400)) // X would hold 2,320 > max(700, 464): charged
  assert.is((x5.stream.aborted as WireError | undefined)?.code, 'BUFFER_LIMIT')
  assert.equal(charges, ['X BUFFER_LIMIT'])
})

test('frames decoded but not read stay counted until the reader takes them', async () => {
  const clock = { t: 0 }
  const guard = createInboundGuard({ now: () => clock.t, sweepMs: 1e9 })
  const host = new FakeHost()
  installGuard(host, guard)
  let f: FramedStream | undefined
  void guardedHandle(host as any, P, (_s, _c, g) => { f = g.open({ maxFrameBytes: 1000 }) })
  const s = host.open(P, 'A')
  s.stream.deliver(new Uint8Array([...encodeFrame(new Uint8Array(100)), ...encodeFrame(new Uint8Array(50))]))
  assert.is(guard.bufferedBytes('A'), 150 + 2 * O)
  await f!.read()
  assert.is(guard.bufferedBytes('A'), 50 + O)
  await f!.read()
  assert.is(guard.bufferedBytes('A'), 0)
})

test('a partial frame past its read deadline is reset and charged (a 1-byte prefix too); a complete one is not', async () => {
  const { host, charges, clock, guard } = setup({ frameDeadlineMs: 10_000, frameMinBytesPerSec: 1000 })
  const slow = host.open(P, 'A')
  const prefixOnly = host.open(P, 'B')
  const fine = host.open(P, 'C')
  await new Promise(resolve => setImmediate(resolve))
  slow.stream.deliver(encodeFramePrefix(5000)) // deadline: 10 s + 5,000 B at 1,000 B/s = 15 s
  slow.stream.deliver(new Uint8Array(4999))
  prefixOnly.stream.deliver(new Uint8Array([0x80])) // an incomplete varint: deadline 10 s
  fine.stream.deliver(encodeFrame(new Uint8Array(10)))
  clock.t += 10_001
  guard.sweep()
  assert.is((prefixOnly.stream.aborted as WireError | undefined)?.code, 'READ_DEADLINE')
  assert.is(slow.stream.aborted, undefined)
  clock.t += 5000
  guard.sweep()
  assert.is((slow.stream.aborted as WireError | undefined)?.code, 'READ_DEADLINE')
  assert.is(fine.stream.aborted, undefined)
  assert.equal(charges.sort(), ['A READ_DEADLINE', 'B READ_DEADLINE'])
  assert.is(guard.bufferedBytes(), 0)
})

test('a stream that expects a request and sends nothing is reset after the idle deadline', async () => {
  const { host, charges, clock, guard } = setup({ idleDeadlineMs: 5000 }, { expectsRequest: true })
  const idle = host.open(P, 'A')
  const talks = host.open(P, 'B')
  await new Promise(resolve => setImmediate(resolve))
  talks.stream.deliver(encodeFrame(new Uint8Array(3)))
  clock.t += 5001
  guard.sweep()
  assert.is((idle.stream.aborted as WireError | undefined)?.code, 'IDLE_DEADLINE')
  assert.is(talks.stream.aborted, undefined)
  assert.equal(charges, ['A IDLE_DEADLINE'])
})

test('the frame limit is asked at each prefix: a large frame is refused before a lease and accepted after', async () => {
  const leased = new Set<string>()
  const { host, framed } = setup({}, { maxFrameBytes: (peer) => leased.has(peer) ? 100_000 : 1000 })
  const before = host.open(P, 'A')
  await new Promise(resolve => setImmediate(resolve))
  before.stream.deliver(encodeFramePrefix(50_000))
  await new Promise(resolve => setImmediate(resolve))
  // refused at the prefix: the handler's read got FRAME_TOO_LARGE (it answers and charges itself)
  assert.is(framed.get('A')![0].midFrame, false)
  leased.add('A')
  host.open(P, 'A').stream.deliver(encodeFramePrefix(50_000))
  assert.is(framed.get('A')![1].midFrame, true)
})

test('the connection gater refuses banned peers, and new identities from an address past its burst', () => {
  const banned = new Set(['X'])
  const guard = createInboundGuard({ identityGate: { burst: 2, refillMs: 60_000 }, isBanned: p => banned.has(p), now: () => 0 })
  const gater = guard.connectionGater()
  const conn = (ip: string): { remoteAddr: ReturnType<typeof multiaddr> } => ({ remoteAddr: multiaddr(`/ip4/${ip}/tcp/1234`) })
  const id = (s: string): PeerId => ({ toString: () => s }) as unknown as PeerId
  assert.is(gater.denyInboundEncryptedConnection(id('X'), conn('10.0.0.1')), true)
  assert.is(gater.denyInboundEncryptedConnection(id('a'), conn('10.0.0.1')), false)
  assert.is(gater.denyInboundEncryptedConnection(id('b'), conn('10.0.0.1')), false)
  assert.is(gater.denyInboundEncryptedConnection(id('c'), conn('10.0.0.1')), true)
  assert.is(gater.denyInboundEncryptedConnection(id('a'), conn('10.0.0.1')), false, 'a known identity still passes')
  assert.is(gater.denyInboundEncryptedConnection(id('c'), conn('10.0.0.2')), false, 'another address has its own bucket')
  assert.is(guard.stats.identitiesRefused, 1)
})

test('guard status lists the registered protocols', () => {
  const { guard } = setup()
  assert.equal(guard.protocols, [P])
  assert.equal((guard.status() as { protocols: string[] }).protocols, [P])
})

test.run()
