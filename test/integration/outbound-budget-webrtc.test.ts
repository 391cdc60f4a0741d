// Review s11 M2: a stream on a WebRTC connection cannot be paused (@libp2p/webrtc's sendPause is a
// no-op) and libp2p resets a paused one past its 4 MiB read buffer, so the outbound read budget
// (src/net/guard/outbound.ts) must never pause it for the node budget: canPause says which streams
// those are. Two 12 MiB frames on one WebRTC connection through a 1 MiB node budget: both read
// (before: the second was paused behind the first and reset by libp2p); the same past the peer's
// share (review s11 N3); and all such streams together stay under their own cap (review s11 N2).
// In-process on 127.0.0.1 (a relay, two hosts with WebRTC on).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Stream } from '@libp2p/interface'
import { createHost, webrtcDialerOf, type Host } from '../../src/net/host.js'
import { FramedStream } from '../../src/net/framed.js'
import { encodeFramePrefix } from '../../src/wire/frame.js'
import { OutboundBudget, canPause } from '../../src/net/guard/outbound.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { registerTaskProtocol } from '../../src/net/tasks.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { leaseAndRun, rig, submitterSecret } from './lease-budget-rig.js'
import { isWebRTC } from '../../src/net/nat-addr.js'

const MiB = 1024 * 1024
const BLAST = '/dbc-test/blast/1'
const hosts: Host[] = []
test.after(async () => {
  await Promise.all(hosts.map(async h => { await h.stop() }))
  // a WebRTC dial that timed out leaves something native that keeps the process alive after every
  // host stopped (seen on a loaded machine, not investigated: s11 m1b report): exit with uvu's code
  setTimeout(() => { process.exit() }, 3000).unref()
})

async function pair (kind: 'webrtc' | 'tcp', secrets: { a?: Uint8Array, b?: Uint8Array } = {}): Promise<{ a: Host, b: Host, conn: Connection }> {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const mk = async (secret?: Uint8Array): Promise<Host> => await createHost({ privateKey: secret === undefined ? await generateKeyPair('Ed25519') : await generateKeyPairFromSeed('Ed25519', secret), listen: kind === 'tcp' ? ['/ip4/127.0.0.1/tcp/0'] : [], listenViaRelay: kind === 'webrtc', relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()], ...(kind === 'webrtc' ? { webrtc: { enabled: true, iceServers: () => [] } } : {}) })
  const b = await mk(secrets.b); const a = await mk(secrets.a)
  hosts.push(a, b)
  // b answers each stream with one 12 MiB frame, as fast as the stream takes it
  await b.handle(BLAST, async (stream: Stream) => {
    stream.send(encodeFramePrefix(12 * MiB))
    for (let i = 0; i < 192 && stream.status === 'open'; i++) {
      if (!stream.send(new Uint8Array(64 * 1024))) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
    }
  }, { runOnLimitedConnection: true })
  if (kind === 'tcp') return { a, b, conn: await a.dial(b.getMultiaddrs()[0]) }
  const deadline = Date.now() + 30_000
  while (!b.getMultiaddrs().some(x => x.toString().includes('/p2p-circuit/webrtc')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  const w = b.getMultiaddrs().find(x => x.toString().includes('/p2p-circuit/webrtc'))
  assert.ok(w !== undefined, 'b announces a WebRTC address')
  const ma = w.toString().endsWith(b.peerId.toString()) ? w : multiaddr(`${w.toString()}/p2p/${b.peerId.toString()}`)
  // ICE on a loaded machine sometimes misses the dial's 20 s, and a later try may find the signalling
  // stream closed on it (a clean-clone run under a CPU hog failed on its 3rd try): up to 4 tries (the test
  // is about what comes after)
  for (let i = 1; ; i++) {
    try { return { a, b, conn: await webrtcDialerOf(a)!(ma, AbortSignal.timeout(20_000)) } } catch (err) { if (i === 4) throw err; console.log(`  WebRTC dial ${i} failed: ${(err as Error).message}`) }
  }
}

test('canPause: false for a stream on a WebRTC connection, true on yamux over TCP', async () => {
  for (const kind of ['webrtc', 'tcp'] as const) {
    const { a, b, conn } = await pair(kind)
    const s = await conn.newStream(BLAST, { runOnLimitedConnection: true })
    assert.is(canPause(a.getConnections(b.peerId), s), kind === 'tcp', kind)
    s.abort(new Error('done'))
  }
})

test('two 12 MiB frames on one WebRTC connection through a 1 MiB node budget are both read (neither paused, so libp2p resets neither)', async () => {
  const { a, b, conn } = await pair('webrtc')
  const budget = new OutboundBudget({ nodeBytes: MiB, peerBytes: 64 * MiB, frameDeadlineMs: 60_000, frameMinBytesPerSec: 256 * 1024, now: () => Date.now(), charge: () => {} })
  const reads = await Promise.all([0, 1].map(async () => {
    const s = await conn.newStream(BLAST, { runOnLimitedConnection: true })
    const f = new FramedStream(s, { maxFrameBytes: 16 * MiB })
    budget.track(f, b.peerId, BLAST, undefined, canPause(a.getConnections(b.peerId), s))
    return f
  }))
  const got = await Promise.all(reads.map(async f => await f.read({ signal: AbortSignal.timeout(30_000) }).then(fr => fr?.byteLength ?? -1, (err: Error) => err.message.slice(0, 120))))
  console.log(`  frames: ${JSON.stringify(got)}; outbound ${JSON.stringify(budget.status())}`)
  assert.equal(got, [12 * MiB, 12 * MiB])
  assert.is(budget.stats.paused, 0)
})

test('the job transport: two 12 MiB results on lease streams over a WebRTC connection through a 1 MiB node budget are both read', async () => {
  const seed = new Uint8Array(32).fill(9)
  const { a, b } = await pair('webrtc', { a: submitterSecret, b: seed })
  // only the WebRTC connection is left (the relayed one would carry the leases otherwise, under the relay's data limit)
  await Promise.all(a.getConnections(b.peerId).filter(c => !isWebRTC(c.remoteAddr)).map(async c => { await c.close() }))
  assert.ok(a.getConnections(b.peerId).every(c => isWebRTC(c.remoteAddr)) && a.getConnections(b.peerId).length > 0, 'a reaches b over WebRTC only')
  const fp = new FakeProvider({ secretKey: seed, slots: 2, compute: () => new Uint8Array(12 * MiB).fill(3) })
  await registerTaskProtocol(b, fp, { heartbeatMs: 100 })
  const r = await rig({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 64 * MiB }, a)
  try {
    const runs = await Promise.all([1, 2].map(async n => await leaseAndRun(r, b, n, AbortSignal.timeout(60_000), fp)))
    const got = await Promise.all(runs.map(async x => await x.outcome))
    console.log(`  results: ${JSON.stringify(got)}; charges ${JSON.stringify(r.charges)}; outbound ${JSON.stringify(r.guard.outbound.status())}`)
    assert.equal(got, [`ok ${12 * MiB}`, `ok ${12 * MiB}`])
    assert.is(r.guard.outbound.stats.paused, 0)
  } finally { await r.stop() }
})

/** Two 12 MiB results on two lease streams from one provider over WebRTC, through a guard with `init`. */
async function twoWebRTCResults (init: Record<string, number>, seedByte: number): Promise<{ got: string[], r: Awaited<ReturnType<typeof rig>> }> {
  const seed = new Uint8Array(32).fill(seedByte)
  const { a, b } = await pair('webrtc', { a: submitterSecret, b: seed })
  await Promise.all(a.getConnections(b.peerId).filter(c => !isWebRTC(c.remoteAddr)).map(async c => { await c.close() }))
  assert.ok(a.getConnections(b.peerId).every(c => isWebRTC(c.remoteAddr)) && a.getConnections(b.peerId).length > 0, 'a reaches b over WebRTC only')
  const fp = new FakeProvider({ secretKey: seed, slots: 2, compute: () => new Uint8Array(12 * MiB).fill(3) })
  await registerTaskProtocol(b, fp, { heartbeatMs: 100 })
  const r = await rig(init, a)
  const runs = await Promise.all([1, 2].map(async n => await leaseAndRun(r, b, n, AbortSignal.timeout(60_000), fp)))
  const got = await Promise.all(runs.map(async x => await x.outcome))
  console.log(`  results: ${JSON.stringify(got.map(g => g.slice(0, 100)))}; charges ${JSON.stringify(r.charges)}; outbound ${JSON.stringify(r.guard.outbound.status())}`)
  return { got, r }
}

test('review s11 N3: two 12 MiB results from one provider over WebRTC within its 24 MiB share are both read, never paused (before N3: the second was paused and libp2p reset it)', async () => {
  const { got, r } = await twoWebRTCResults({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 24 * MiB }, 10)
  try {
    assert.equal(got, [`ok ${12 * MiB}`, `ok ${12 * MiB}`])
    assert.is(r.guard.outbound.stats.paused, 0)
  } finally { await r.stop() }
})

test('review s12 L2: past its 16 MiB share, one of a provider\'s WebRTC streams is reset (not paused, not charged), as past the cap', async () => {
  const { got, r } = await twoWebRTCResults({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 16 * MiB }, 12)
  try {
    const peak = r.guard.outbound.stats.unpausablePeakBytes
    assert.ok(peak <= 16 * MiB + 256 * 1024, `peak ${peak}`)
    assert.is(r.guard.outbound.stats.paused, 0)
    // whether the two frames overlapped past the share depends on timing: each is read whole or lost, nobody charged
    for (const g of got) assert.ok(g === `ok ${12 * MiB}` || g.startsWith('lost'), g)
    assert.is(got.filter(g => g.startsWith('lost')).length, r.guard.outbound.stats.unpausableCut)
    assert.equal(r.charges, [])
  } finally { await r.stop() }
})

test('review s11 N2: streams that cannot be paused hold at most their cap (16 MiB here) and a chunk: past it one is reset (not charged: above the minimum rate)', async () => {
  const { got, r } = await twoWebRTCResults({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 64 * MiB, outboundUnpausableBytes: 16 * MiB }, 11)
  try {
    const peak = r.guard.outbound.stats.unpausablePeakBytes
    assert.ok(peak <= 16 * MiB + 256 * 1024, `peak ${peak}`)
    // whether the two frames overlapped past the cap depends on timing: each is read whole or lost (never failed), nobody charged
    for (const g of got) assert.ok(g === `ok ${12 * MiB}` || g.startsWith('lost'), g)
    assert.is(got.filter(g => g.startsWith('lost')).length, r.guard.outbound.stats.unpausableCut)
    assert.equal(r.charges, [])
  } finally { await r.stop() }
})

test.run()
