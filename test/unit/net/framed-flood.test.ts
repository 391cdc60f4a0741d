// Zero-length frames (a chunk of 0x00 bytes) must not become one object per byte: a stream
// decodes at most its queue's room, keeps the rest undecoded and counted with the stream paused,
// and every frame counts FRAME_OVERHEAD_BYTES against the budgets.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PeerId } from '@libp2p/interface'
import { createInboundGuard, guardedHandle, installGuard, type InboundGuardInit } from '../../../src/net/guard/index.js'
import { FramedStream, FRAME_OVERHEAD_BYTES as O } from '../../../src/net/framed.js'
import { encodeFrame } from '../../../src/wire/frame.js'
import type { WireError } from '../../../src/errors.js'
import { FakeHost, FakeStream } from './fake-stream.js'

const P = '/test/1.0.0'

async function open (init: InboundGuardInit, highWaterFrames: number): Promise<{ stream: FakeStream, f: FramedStream, guard: ReturnType<typeof createInboundGuard>, charges: string[], clock: { t: number } }> {
  const clock = { t: 0 }
  const charges: string[] = []
  const guard = createInboundGuard({ now: () => clock.t, sweepMs: 1e9, charge: (peer: PeerId, err: WireError) => { charges.push(`${peer.toString()} ${err.code}`) }, ...init })
  const host = new FakeHost()
  installGuard(host, guard)
  let f: FramedStream | undefined
  void guardedHandle(host as any, P, (_s, _c, g) => { f = g.open({ maxFrameBytes: 1 << 20, highWaterFrames }) })
  const { stream } = host.open(P, 'A')
  await new Promise(resolve => setImmediate(resolve))
  return { stream, f: f!, guard, charges, clock }
}

test('a chunk of 10,000 zero-length frames decodes only the queue\'s room; the rest waits counted, the stream paused', async () => {
  const { stream, f, guard } = await open({}, 64)
  stream.deliver(new Uint8Array(10_000))
  assert.is(f.framesDecoded, 64, 'not one object per byte')
  assert.ok(stream.paused)
  assert.is(guard.bufferedBytes('A'), 64 * O + (10_000 - 64), 'queued frames count their overhead; held bytes count as they are')
  // the reader takes them all, in bounded steps
  let n = 0
  for (;;) {
    if (f.framesDecoded === 10_000 && guard.bufferedBytes('A') === 0) break
    const frame = await f.read()
    assert.is(frame?.byteLength, 0)
    n++
    assert.ok(f.framesDecoded - n <= 64, 'never more than highWater frames wait decoded')
  }
  assert.is(n, 10_000)
  assert.not.ok(stream.paused, 'resumed once the reader caught up')
  assert.is(guard.bufferedBytes(), 0)
})

test('frames held undecoded come out whole and in order, with a frame split across the hold and the next chunk', async () => {
  const { stream, f, guard } = await open({}, 8)
  const frames = Array.from({ length: 200 }, (_, i) => new Uint8Array(i % 7).fill(i))
  const wire = Buffer.concat(frames.map(fr => encodeFrame(fr)))
  stream.deliver(wire.subarray(0, wire.length - 3)) // the last frame is cut
  assert.is(f.framesDecoded, 8)
  stream.deliver(wire.subarray(wire.length - 3)) // arrives while held (a stream that ignores pause)
  for (let i = 0; i < 200; i++) {
    const got = await f.read()
    assert.equal([...got!], [...frames[i]], `frame ${i}`)
  }
  assert.is(guard.bufferedBytes('A'), 0)
  assert.not.ok(f.midFrame)
})

test('bytes held because the reader is behind are not a slow frame: no read deadline while held', async () => {
  const { stream, f, guard, clock, charges } = await open({ frameDeadlineMs: 1000 }, 4)
  stream.deliver(new Uint8Array(100))
  assert.is(f.framesDecoded, 4)
  assert.not.ok(f.midFrame)
  clock.t += 60_000
  guard.sweep()
  assert.is(stream.aborted, undefined)
  assert.equal(charges, [])
})

test('held bytes beyond the peer budget reset the stream and charge the peer', async () => {
  const { stream, f, charges, guard } = await open({ peerBufferBytes: 2000 }, 4)
  stream.deliver(new Uint8Array(5000)) // 4 frames × 64 + 4,996 held > 2,000
  assert.is((stream.aborted as WireError | undefined)?.code, 'BUFFER_LIMIT')
  assert.equal(charges, ['A BUFFER_LIMIT'])
  assert.is(guard.bufferedBytes(), 0)
  assert.ok(f.framesDecoded <= 4)
})

test('a FramedStream without a guard decodes in bounded steps too', async () => {
  const s = new FakeStream()
  const f = new FramedStream(s as any, { highWaterFrames: 16 })
  s.deliver(new Uint8Array(1000))
  assert.is(f.framesDecoded, 16)
  for (let i = 0; i < 1000; i++) assert.is((await f.read())?.byteLength, 0)
  s.end()
  assert.is(await f.read(), undefined)
})

test.run()
