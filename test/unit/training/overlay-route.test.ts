// Training over the overlay (src/training/overlay-route.ts, transport.ts): when no connection
// opens to a peer, its frames travel as chunked one-way frames over sealed envelopes (here an
// in-memory envelope hub standing in for the relays); a peer whose frames reach us that way is
// answered the same way without a dial; frames keep the members-only size caps; routing 'direct'
// never takes the overlay, 'overlay' never dials. A whole training job (coordinator + two members,
// no connection possible between any of them) completes every round with every member.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TrainingService } from '../../../src/training/service.js'
import { runTrainingJob } from '../../../src/training/session.js'
import { OverlayFallbacks, OverlayRoute, OVERLAY_STICKY_MS, OVERLAY_STICKY_MAX_MS } from '../../../src/training/overlay-route.js'
import { SMALL_FRAME_BYTES } from '../../../src/net/guard/index.js'
import { EnvelopeHub, isolatedNode, received, until } from './overlay-hub.js'

test('OverlayFallbacks: sticky after a failed connection, one background try when it lapses, doubling on each failed try', () => {
  let now = 0
  const f = new OverlayFallbacks(() => now)
  assert.equal(f.choose('p'), { overlay: false, probe: false }, 'unknown: a connection')
  f.fellBack('p', 'no route')
  assert.equal(f.choose('p'), { overlay: true, why: 'no route', probe: false })
  now = OVERLAY_STICKY_MS
  assert.equal(f.choose('p'), { overlay: true, why: 'no route', probe: true }, 'lapsed: keep the overlay, try a connection in the background')
  assert.is(f.choose('p').probe, false, 'one try at a time')
  f.probeFailed('p', 'still no route')
  now += 2 * OVERLAY_STICKY_MS - 1
  assert.is(f.choose('p').probe, false, 'twice as long before the next try')
  now += 1
  assert.is(f.choose('p').probe, true)
  for (let i = 0; i < 10; i++) f.probeFailed('p', 'x')
  now += OVERLAY_STICKY_MAX_MS
  assert.is(f.choose('p').probe, true, 'capped at the max')
  f.connected('p')
  assert.equal(f.choose('p'), { overlay: false, probe: false }, 'a connection opened: frames take it')
  f.heardVia('q')
  assert.ok(f.choose('q').overlay, 'a peer that reached us over the overlay is answered that way')
  f.dialing('r')
  now += 10 * OVERLAY_STICKY_MAX_MS
  assert.equal(f.choose('r'), { overlay: true, why: 'a connection is slow to open; it is used once it does', probe: false }, 'while a slow dial runs: the overlay, no second try')
  f.heardVia('r')
  assert.match(f.choose('r').why ?? '', /slow to open/, 'a frame over the overlay does not replace the dial under way')
  f.fellBack('r', 'timed out')
  now += OVERLAY_STICKY_MS - 1
  assert.equal(f.choose('r'), { overlay: true, why: 'timed out', probe: false }, 'the failed dial: sticky from then')
})

test('a peer answered over the overlay because it came that way takes the connection it opened since; one our dial failed to stays on the overlay', () => {
  const open = new Set<string>()
  const link = { maxFrameBytes: 65_536 } as any
  const r = new OverlayRoute({ link: () => link, connectedNow: p => open.has(p), connect: async () => await new Promise(() => {}) })
  r.fallbacks.heardVia('joiner')
  assert.ok(r.why('joiner', 'auto')?.startsWith('fallback: it reached us through the overlay'), 'no connection yet: the way it came')
  open.add('joiner') // its dial to us opened
  assert.is(r.why('joiner', 'auto'), undefined, 'a connection now: frames take it')
  assert.not.ok(r.fallbacks.has('joiner'))
  r.fallbacks.fellBack('far', 'no route')
  open.add('far')
  assert.is(r.why('far', 'auto'), 'fallback: no route', 'our own dial failed: sticky as before')
})

test('no connection opens: frames go over the overlay (a large one chunked), the answer comes back without a dial, routes say overlay', async () => {
  const hub = new EnvelopeHub()
  const a = await isolatedNode(hub, 'a', { frameLimit: 4 << 20 })
  const b = await isolatedNode(hub, 'b', { frameLimit: 4 << 20 })
  await a.transport.start(); await b.transport.start()
  try {
    const atB = received(b.transport); const atA = received(a.transport)
    const data = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff)
    a.transport.send(b.id.toString(), { join: { jobId: 'job-1' } })
    a.transport.send(b.id.toString(), { slice: { jobId: 'job-1', round: 0, slice: 1, phase: 0, codec: 0, length: data.length / 4, data, weight: 1 } })
    await until(() => atB.length === 2, 'both frames at b')
    assert.equal(atB.map(m => m.from), [a.id.toString(), a.id.toString()])
    assert.ok(atB[0].msg.join != null, 'in order: the join first')
    assert.equal(Buffer.compare(Buffer.from(atB[1].msg.slice!.data), Buffer.from(data)), 0, 'the 1 MiB slice arrived whole')
    assert.ok(a.messenger.stats.chunksSent >= 7, `the slice crossed in chunks (${a.messenger.stats.chunksSent} chunk sends)`)
    assert.equal(a.dials, [b.id.toString(), b.id.toString()], 'one failed connection attempt (and its one retry), then the overlay: no dial per frame')
    // b answers over the overlay at once: a reached it that way and b holds no connection to a
    b.transport.send(a.id.toString(), { report: { jobId: 'job-1', round: 0 } })
    await until(() => atA.length === 1, 'the answer at a')
    assert.equal(b.dials, [], 'b never dialled a')
    const r = a.transport.routes()[b.id.toString()]
    assert.is(r.kind, 'overlay', r.facts)
    assert.equal(r.relays, ['R1'])
    assert.match(r.facts, /no direct or relayed connection opened/)
    assert.is(r.frames.overlay, 2)
    assert.is(r.bytes.overlay, a.transport.stats.bytesSent)
    assert.is(a.transport.stats.overlayFramesSent, 2)
    assert.is(b.transport.stats.overlayFramesReceived, 2)
    assert.is(a.transport.stats.dropped, 0)
  } finally {
    await a.transport.stop(); await b.transport.stop(); a.messenger.close(); b.messenger.close()
  }
})

test('a connection slow to open: frames take the overlay meanwhile, and stay there once it fails', async () => {
  const hub = new EnvelopeHub()
  const a = await isolatedNode(hub, 'a', { dialMs: 400, waitMs: 50 })
  const b = await isolatedNode(hub, 'b')
  await a.transport.start(); await b.transport.start()
  try {
    const atB = received(b.transport)
    a.transport.send(b.id.toString(), { join: { jobId: 'j' } })
    await until(() => atB.length === 1, 'the first frame, over the overlay while the dial hangs')
    assert.equal(a.dials, [b.id.toString()], 'the dial is still under way')
    assert.match(a.transport.routes()[b.id.toString()].facts, /slow to open/)
    a.transport.send(b.id.toString(), { join: { jobId: 'j' } })
    await until(() => atB.length === 2, 'the second frame')
    await until(() => a.transport.overlay.fallbacks.choose(b.id.toString()).why?.includes('no direct or relayed connection') === true, 'the failed dial')
    assert.is(a.dials.length, 2, 'one attempt and its retry, not one per frame')
    a.transport.send(b.id.toString(), { join: { jobId: 'j' } })
    await until(() => atB.length === 3, 'the third frame')
    assert.is(a.dials.length, 2, 'sticky: no new dial')
  } finally {
    await a.transport.stop(); await b.transport.stop(); a.messenger.close(); b.messenger.close()
  }
})

test('frames over the overlay keep the stream\'s caps: a stranger\'s large frame is refused, garbage is charged, a frame above the overlay budget is held nowhere', async () => {
  const hub = new EnvelopeHub()
  const a = await isolatedNode(hub, 'a', { frameLimit: 64 << 20 })
  const b = await isolatedNode(hub, 'b') // b learned of no job: a is a stranger to it
  await a.transport.start(); await b.transport.start()
  try {
    const atB = received(b.transport)
    const big = new Uint8Array(SMALL_FRAME_BYTES + 1024)
    await a.messenger.sendFrame(b.id.toString(), big) // acked by the envelope layer, refused by the application
    await until(() => b.messenger.stats.refused > 0, 'the refusal')
    assert.is(atB.length, 0, 'nothing reached the listeners')
    assert.is(b.messenger.assembler.pending.bytes, 0, 'nothing held for it')
    await a.messenger.sendFrame(b.id.toString(), new Uint8Array([0xff, 0xff, 0xff, 0x0f]))
    await until(() => b.bad.length === 1, 'the charge')
    assert.is(b.bad[0].code, 'TRAINING_MESSAGE_INVALID')
    // a frame above the overlay budget goes in pieces (overlay-pieces.test.ts); a receiver to which the sender is a stranger holds none of it
    a.transport.send(b.id.toString(), { slice: { jobId: 'j', data: new Uint8Array(a.messenger.maxFrameBytes + 1) } })
    await until(() => a.transport.stats.piecesSent === 5, 'the pieces')
    assert.is(a.transport.stats.routeLimited, 0)
    assert.is(b.transport.stats.piecesReceived, 0, 'every piece refused')
    assert.is(atB.length, 0)
    assert.is(b.messenger.assembler.pending.bytes, 0, 'nothing held for it')
    assert.is(b.transport.overlayFrames.pieces.reserved, 0)
  } finally {
    await a.transport.stop(); await b.transport.stop(); a.messenger.close(); b.messenger.close()
  }
})

test('routing direct never takes the overlay; routing overlay never dials; no overlay: the queue is dropped as before', async () => {
  const hub = new EnvelopeHub()
  const d = await isolatedNode(hub, 'd', { routing: 'direct' })
  const o = await isolatedNode(hub, 'o', { routing: 'overlay' })
  const n = await isolatedNode(hub, 'n', { overlay: false })
  const to = await isolatedNode(hub, 'to')
  for (const x of [d, o, n, to]) await x.transport.start()
  try {
    const atTo = received(to.transport)
    d.transport.send(to.id.toString(), { join: { jobId: 'j' } })
    n.transport.send(to.id.toString(), { join: { jobId: 'j' } })
    await until(() => d.transport.stats.dropped === 1 && n.transport.stats.dropped === 1, 'the drops')
    assert.is(hub.sends, 0, 'direct and no-overlay nodes sent nothing over the overlay')
    assert.is(d.dials.length, 2, 'direct tried its connection')
    o.transport.send(to.id.toString(), { join: { jobId: 'j' } })
    await until(() => atTo.length === 1, 'the overlay frame')
    assert.equal(o.dials, [], 'overlay never dials')
    assert.match(o.transport.routes()[to.id.toString()].facts, /routing: overlay/)
  } finally {
    for (const x of [d, o, n, to]) { await x.transport.stop(); x.messenger.close() }
  }
})

test('a coordinator no member can reach (nor they each other) trains over the overlay: every round has both members', async () => {
  const hub = new EnvelopeHub()
  const coord = await isolatedNode(hub, 'coord')
  const members = [await isolatedNode(hub, 'm1'), await isolatedNode(hub, 'm2')]
  const services = members.map(m => new TrainingService(m.transport))
  await coord.transport.start()
  for (const s of services) await s.start()
  const ROUNDS = 4
  try {
    const peers = members.map(m => m.id.toString())
    const r = await runTrainingJob({
      transport: coord.transport,
      spec: { model: { kind: 'mlp', hidden: 16 }, dataset: { trainPerClass: 60, testPerClass: 30 }, groupSize: 2, rounds: ROUNDS, localSteps: 5, batchSize: 16, evalEvery: ROUNDS, seed: 4, deadline: { initialMs: 30_000 } },
      peers,
      signal: AbortSignal.timeout(180_000)
    })
    assert.is(r.history.length, ROUNDS)
    for (const h of r.history) {
      assert.equal([...h.members].sort(), [...peers].sort(), `round ${h.round} had both members`)
      assert.equal(h.dropped, [], `round ${h.round} dropped nobody`)
    }
    assert.ok(r.accuracy > 0.3, `the model learned (accuracy ${r.accuracy})`)
    // every route is the overlay: coordinator to members, members to the coordinator and to each other
    for (const [from, to] of [[coord, members[0]], [coord, members[1]], [members[0], coord], [members[0], members[1]], [members[1], members[0]]] as const) {
      const route = from.transport.routes()[to.id.toString()]
      assert.is(route?.kind, 'overlay', `${from.name} -> ${to.name}: ${JSON.stringify(route)}`)
    }
    assert.equal(members.flatMap(m => m.dials).filter(p => p === coord.id.toString()), [], 'the members never dialled the coordinator (it reached them over the overlay)')
    const stats = [coord, ...members].map(x => `${x.name} ${x.transport.stats.overlayFramesSent} frames out / ${x.transport.stats.overlayFramesReceived} in`)
    console.log(`${ROUNDS} rounds over the overlay only: accuracy ${(r.accuracy * 100).toFixed(1)}%, round ms ${r.history.map(h => Math.round(h.roundMs)).join(',')}; ${stats.join(', ')}`)
  } finally {
    for (const s of services) await s.stop()
    await coord.transport.stop()
    for (const x of [coord, ...members]) x.messenger.close()
  }
})

test.run()
