// The submitter's outbound lease streams read a provider's result frames under the node's outbound
// read budget (src/net/guard/outbound.ts): bytes actually held, not announced; past the budget the
// stream stops reading (yamux stops the sender) until the budget frees; a partial frame has a
// deadline; a cancelled copy's frame in arrival and a closed lease end the stream. Real libp2p
// hosts on 127.0.0.1; hostile providers are raw handlers on /dbc/task/1.0.0.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { Stream } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { registerTaskProtocol, TASK_PROTOCOL } from '../../src/net/tasks.js'
import { FramedStream } from '../../src/net/framed.js'
import { encodeFramePrefix } from '../../src/wire/frame.js'
import type { InboundGuard } from '../../src/net/guard/index.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { dbc } from '../../src/wire/gen/wire.js'
import { MiB, sleep, rig, leaseAndRun, type Rig } from './lease-budget-rig.js'

const TM = dbc.task.v1.TaskMessage

interface Hostile { host: Host, streams: Stream[], sent: () => number }

/**
 * A provider that accepts a lease (one heartbeat), reads the task, then answers with `answer`
 * (which writes on the raw stream) and never closes. `sent`: bytes that left its write buffers.
 */
async function hostile (seed: number, answer: (s: Stream) => void): Promise<Hostile> {
  const host = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(32).fill(seed)), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const streams: Stream[] = []
  const written = new Map<Stream, number>()
  await host.handle(TASK_PROTOCOL, async (stream: Stream) => {
    streams.push(stream)
    const f = new FramedStream(stream)
    await f.readRequired()
    await f.write(TM.encode({ heartbeat: {} }).finish())
    await f.readRequired() // the task
    const send = stream.send.bind(stream)
    stream.send = (d) => { written.set(stream, (written.get(stream) ?? 0) + d.byteLength); return send(d) }
    answer(stream)
  }, { runOnLimitedConnection: true })
  return { host, streams, sent: () => streams.reduce((n, s) => n + (written.get(s) ?? 0) - s.writeBufferLength, 0) }
}


const outbound = (g: InboundGuard): number => (g as unknown as { outbound?: { bufferedBytes: () => number } }).outbound?.bufferedBytes() ?? -1
const ended = (s: Stream): boolean => s.status !== 'open'
/** Waits until `s` is no longer open, at most `ms` (the result is then asserted). */
async function untilEnded (s: Stream, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; !ended(s) && Date.now() < end;) await sleep(50)
  return ended(s)
}

test('a 5-byte prefix then silence: the stream is reset at the deadline, the provider charged, nothing held', async () => {
  // deadline 300 ms + 16 MiB at 16 MiB/s = 1.3 s of reading
  const r = await rig({ frameDeadlineMs: 300, frameMinBytesPerSec: 16 * MiB })
  const p = await hostile(31, s => { s.send(encodeFramePrefix(16 * MiB)) })
  try {
    // the copy's own signal is 10 s: without the deadline it would end with that abort instead
    const { outcome } = await leaseAndRun(r, p.host, 1, AbortSignal.timeout(10_000))
    const why = await outcome
    assert.match(why, /did not complete within/, why)
    assert.equal(r.charges.map(c => c.code), ['READ_DEADLINE'])
    assert.is(outbound(r.guard), 0)
    assert.ok(await untilEnded(p.streams[0], 5000), 'the provider\'s lease stream was reset')
  } finally { await r.stop(); await p.host.stop() }
})

test('a trickle that never finishes its frame is cut and charged', async () => {
  // a 4 MiB frame at 1 KiB per 50 ms (20 KiB/s); the deadline is 500 ms + 4 MiB at 4 MiB/s
  const r = await rig({ frameDeadlineMs: 500, frameMinBytesPerSec: 4 * MiB })
  let timer: ReturnType<typeof setInterval> | undefined
  const p = await hostile(32, s => {
    s.send(encodeFramePrefix(4 * MiB))
    timer = setInterval(() => { try { s.send(new Uint8Array(1024)) } catch { clearInterval(timer) } }, 50)
  })
  try {
    const { outcome } = await leaseAndRun(r, p.host, 1, AbortSignal.timeout(8000))
    const why = await outcome
    assert.match(why, /did not complete within/, why)
    assert.equal(r.charges.map(c => c.code), ['READ_DEADLINE'])
    assert.is(outbound(r.guard), 0)
  } finally { clearInterval(timer); await r.stop(); await p.host.stop() }
})

test('a copy cancelled while its result is mid-frame ends the lease stream at once', async () => {
  const r = await rig({ frameDeadlineMs: 60_000 })
  const p = await hostile(33, s => { s.send(encodeFramePrefix(16 * MiB)); s.send(new Uint8Array(1000)) })
  try {
    const ac = new AbortController()
    const { outcome } = await leaseAndRun(r, p.host, 1, ac.signal)
    // until the frame's first bytes are in (the submitter holds them)
    for (const end = Date.now() + 10_000; outbound(r.guard) <= 0 && Date.now() < end;) await sleep(50)
    ac.abort(new Error('copy timed out'))
    assert.match(await outcome, /copy timed out/)
    // the frame deadline is 60 s: only the cancel can end the stream this soon
    assert.ok(await untilEnded(p.streams[0], 10_000), 'the provider\'s lease stream was reset')
    assert.is(outbound(r.guard), 0)
  } finally { await r.stop(); await p.host.stop() }
})

test('a lease closed while a frame is arriving ends its stream at once', async () => {
  const r = await rig({ frameDeadlineMs: 60_000 })
  const p = await hostile(35, s => { s.send(encodeFramePrefix(16 * MiB)); s.send(new Uint8Array(1000)) })
  try {
    const { leaseId, outcome } = await leaseAndRun(r, p.host, 1, AbortSignal.timeout(60_000))
    for (const end = Date.now() + 10_000; outbound(r.guard) <= 0 && Date.now() < end;) await sleep(50)
    r.tr.closeLease(p.host.peerId.toString(), leaseId)
    assert.match(await outcome, /lost: .*closed while a frame was arriving/)
    assert.is(outbound(r.guard), 0)
  } finally { await r.stop(); await p.host.stop() }
})

test('a closed lease whose provider never closes its end is reset after the grace', async () => {
  const r = await rig({})
  // a provider that beats once and then holds the stream open whatever the holder does
  const p = await hostile(34, () => {})
  try {
    const { leaseId, outcome } = await leaseAndRun(r, p.host, 1, AbortSignal.timeout(300))
    await outcome
    r.tr.closeLease(p.host.peerId.toString(), leaseId)
    // the grace is 5 s; nothing else ends this stream (no frame in arrival, the connection stays up)
    assert.ok(await untilEnded(p.streams[0], 15_000), `the provider's lease stream is ${p.streams[0].status}`)
  } finally { await r.stop(); await p.host.stop() }
})

/** Six hostile providers, each sending a 16 MiB prefix and 12 MiB of the frame at once, then nothing; one lease each. */
async function stallers (r: Rig): Promise<{ bad: Hostile[], sent: () => number, stop: () => Promise<void> }> {
  const bad = await Promise.all([41, 42, 43, 44, 45, 46].map(async seed => await hostile(seed, s => { s.send(encodeFramePrefix(16 * MiB)); s.send(new Uint8Array(12 * MiB)) })))
  for (const [i, b] of bad.entries()) await leaseAndRun(r, b.host, 10 + i, AbortSignal.timeout(60_000))
  return { bad, sent: () => bad.reduce((n, b) => n + b.sent(), 0), stop: async () => { for (const b of bad) await b.host.stop() } }
}

test('six hostile providers cannot push the submitter\'s buffered bytes past the budget', async () => {
  const budget = 4 * MiB
  // long deadlines and grace: nothing is cut while this is measured, what bounds memory is the budget
  const r = await rig({ outboundBufferBytes: budget, outboundPeerBufferBytes: 2 * MiB, outboundExemptGraceMs: 60_000, frameDeadlineMs: 60_000 })
  const h = await stallers(r)
  try {
    // until the hostile providers get nothing more out for a second (at most 15 s)
    let sent = -1
    for (const end = Date.now() + 15_000; Date.now() < end;) {
      const now = h.sent()
      if (now === sent) break
      sent = now
      await sleep(1000)
    }
    console.log(`hostile bytes out ${(sent / MiB).toFixed(1)} MiB, held ${(outbound(r.guard) / MiB).toFixed(1)} MiB`)
    // eeb21bd (no budget): all 72 MiB go out and are buffered. Now: the budget, one frame past it
    // (the stream let through to finish its frame), and what paused yamux streams had window for (<= 2 MiB each)
    assert.ok(sent < budget + 16 * MiB + 6 * 2 * MiB, `hostile providers got ${sent} bytes out`)
    assert.ok(outbound(r.guard) <= budget + 16 * MiB + MiB, `held ${outbound(r.guard)}`)
    assert.equal(r.charges.map(c => c.code), [])
  } finally {
    await r.stop()
    await h.stop()
  }
})

test('an honest 16 MiB result completes while six stalled providers hold the budget', async () => {
  const r = await rig({ outboundBufferBytes: 4 * MiB, outboundPeerBufferBytes: 2 * MiB, outboundExemptGraceMs: 500, frameDeadlineMs: 60_000 })
  const h = await stallers(r)
  const seed = new Uint8Array(32).fill(47)
  const good = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', seed), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const fp = new FakeProvider({ secretKey: seed, compute: () => new Uint8Array(16 * MiB - 1024).fill(1) })
  await registerTaskProtocol(good, fp, { heartbeatMs: 100 })
  try {
    for (const end = Date.now() + 10_000; outbound(r.guard) < 4 * MiB && Date.now() < end;) await sleep(50)
    const t0 = Date.now()
    const { outcome } = await leaseAndRun(r, good, 1, AbortSignal.timeout(40_000), fp)
    const honest = await outcome
    console.log(`honest result: ${honest} after ${Date.now() - t0} ms; charges ${r.charges.map(c => c.code).join(',')}`)
    assert.is(honest, `ok ${16 * MiB - 1024}`)
    // the stalled hostile streams are charged as each holds the way past the budget; the honest one never
    assert.ok(r.charges.length > 0 && r.charges.every(c => c.code === 'READ_DEADLINE'), r.charges.map(c => c.code).join(','))
  } finally {
    await r.stop()
    await good.stop()
    await h.stop()
  }
})

test.run()
