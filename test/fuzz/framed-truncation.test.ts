// Regression (found by the live fuzzer): a stream that ended part-way through a frame while a
// reader was already waiting was reported as a clean end, so a truncated frame on echo or
// membership cost the sender nothing; a bare length prefix followed by the end was missed even
// without a waiting reader. Both are now TRUNCATED_FRAME errors.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FramedStream } from '../../src/net/framed.js'
import { encodeFrame, encodeFramePrefix, FrameDecoder } from '../../src/wire/frame.js'
import { WireError } from '../../src/errors.js'

/** The slice of a libp2p v3 Stream that FramedStream uses. */
function fakeStream (): { stream: any, deliver: (b: Uint8Array) => void, end: () => void } {
  const t = new EventTarget()
  const stream = Object.assign(t, { pause () {}, resume () {}, send: () => true, close: async () => {}, abort () {} })
  return {
    stream,
    deliver: b => { const e = new Event('message') as any; e.data = b; t.dispatchEvent(e) },
    end: () => { t.dispatchEvent(new Event('remoteCloseWrite')) }
  }
}

async function readError (f: FramedStream): Promise<unknown> {
  try { return await f.read() } catch (err) { return err }
}

test('end inside a frame while a reader waits: TRUNCATED_FRAME', async () => {
  const s = fakeStream()
  const f = new FramedStream(s.stream)
  const pending = readError(f)
  s.deliver(encodeFrame(new Uint8Array(10)).subarray(0, 5))
  s.end()
  const r = await pending
  assert.instance(r, WireError)
  assert.is((r as WireError).code, 'TRUNCATED_FRAME')
})

test('end right after a bare length prefix: TRUNCATED_FRAME (waiting or not)', async () => {
  for (const waitFirst of [true, false]) {
    const s = fakeStream()
    const f = new FramedStream(s.stream)
    const pending = waitFirst ? readError(f) : undefined
    s.deliver(encodeFramePrefix(7))
    s.end()
    const r = await (pending ?? readError(f))
    assert.is((r as WireError).code, 'TRUNCATED_FRAME', `waitFirst=${String(waitFirst)}`)
  }
})

test('a clean end after whole frames is still a clean end', async () => {
  const s = fakeStream()
  const f = new FramedStream(s.stream)
  s.deliver(encodeFrame(new Uint8Array([1, 2, 3])))
  assert.equal([...(await f.read() as Uint8Array)], [1, 2, 3])
  const pending = f.read()
  s.end()
  assert.is(await pending, undefined)
  const d = new FrameDecoder()
  assert.not.ok(d.midFrame)
  d.push(encodeFramePrefix(3))
  assert.ok(d.midFrame)
})

test.run()
