// The relay protocol's I/O path: FrameDecoder's fast path (frames cut straight from a chunk when
// nothing is buffered, src/wire/frame.ts) must give exactly what the general path gives, limits
// and admit calls included; FramedStream.listen (push mode, src/net/framed.ts) must deliver every
// frame in the turn its bytes arrive, end once, and leave no budget reserved.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { FrameDecoder, encodeFrame, type FrameResult } from '../../../src/wire/frame.js'
import { FramedStream } from '../../../src/net/framed.js'
import { WireError } from '../../../src/errors.js'
import { FakeStream } from '../net/fake-stream.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)

/** The frames of a whole byte stream, read the obvious way (the reference). */
function reference (all: Uint8Array, max: number): { frames: number[][], error?: string, admitted: number[] } {
  const frames: number[][] = []; const admitted: number[] = []
  let pos = 0
  while (pos < all.length) {
    let value = 0; let i = 0; let done = false
    for (; i < 5 && pos + i < all.length; i++) {
      value += (all[pos + i] & 0x7f) * 2 ** (7 * i)
      if ((all[pos + i] & 0x80) === 0) { done = true; break }
    }
    if (!done) return { frames, error: i >= 5 ? 'MALFORMED_FRAME' : undefined, admitted }
    if (value > max) return { frames, error: 'FRAME_TOO_LARGE', admitted }
    admitted.push(value)
    pos += i + 1
    if (all.length - pos < value) return { frames, admitted }
    frames.push([...all.subarray(pos, pos + value)])
    pos += value
  }
  return { frames, admitted }
}

/** Feeds `all` cut at `cuts` (as arrays or multi-array lists), `maxFrames` per push, draining held bytes. */
function decode (all: Uint8Array, cuts: number[], max: number, maxFrames: number, lists: boolean): { frames: number[][], error?: string, admitted: number[] } {
  const admitted: number[] = []
  const d = new FrameDecoder({ maxFrameBytes: max, admit: (n) => { admitted.push(n); return undefined } })
  const frames: number[][] = []
  let error: string | undefined
  const take = (out: FrameResult[]): void => {
    for (const f of out) {
      if (f instanceof WireError) { error ??= f.code; continue }
      frames.push([...f])
    }
  }
  const push = (chunk?: Uint8Array | Uint8ArrayList): void => {
    take(d.push(chunk, maxFrames))
    while (d.held && error === undefined) take(d.push(undefined, maxFrames))
  }
  let at = 0
  for (const c of [...cuts, all.length]) {
    const end = Math.min(all.length, at + c)
    const part = all.subarray(at, end)
    at = end
    if (part.length === 0) continue
    if (lists && part.length > 1) push(new Uint8ArrayList(part.subarray(0, 1), part.subarray(1)))
    else push(part)
  }
  return { frames, error, admitted }
}

test('FrameDecoder: any chunking (arrays or lists), any maxFrames, gives the reference frames, error and admit calls', () => {
  const bytes = fc.oneof(
    // well-formed streams (frames up to the limit and a little past it)
    fc.array(fc.uint8Array({ maxLength: 70 }), { maxLength: 12 }).map(fs => new Uint8Array(fs.flatMap(f => [...encodeFrame(f)]))),
    // and anything at all
    fc.uint8Array({ maxLength: 400 })
  )
  fc.assert(fc.property(bytes, fc.array(fc.nat({ max: 90 }), { maxLength: 20 }), fc.integer({ min: 1, max: 5 }), fc.boolean(), (all, cuts, maxFrames, lists) => {
    const max = 64
    const want = reference(all, max)
    const got = decode(all, cuts, max, maxFrames, lists)
    assert.equal(got.frames, want.frames)
    assert.is(got.error, want.error)
    assert.equal(got.admitted, want.admitted)
  }), { numRuns: RUNS, seed: 14 })
})

test('FrameDecoder: a refused frame (admit) poisons the decoder on the fast path too', () => {
  const d = new FrameDecoder({ maxFrameBytes: 100, admit: n => n > 10 ? new WireError('BUFFER_LIMIT', 'over budget') : undefined })
  const out = d.push(new Uint8Array([...encodeFrame(new Uint8Array(3)), ...encodeFrame(new Uint8Array(20))]))
  assert.is(out.length, 2)
  assert.ok(out[0] instanceof Uint8Array)
  assert.ok(out[1] instanceof WireError && out[1].code === 'BUFFER_LIMIT')
  assert.is(d.buffered, 0, 'nothing kept')
  const again = d.push(encodeFrame(new Uint8Array(1)))
  assert.ok(again[0] instanceof WireError, 'poisoned')
})

/** A FramedStream on a fake stream with a budget that records every reservation. */
function framed (limit = 1024): { s: FakeStream, f: FramedStream, held: () => number } {
  const s = new FakeStream()
  let held = 0
  const f = new FramedStream(s as unknown as Stream, {
    maxFrameBytes: limit,
    highWaterFrames: 4,
    hooks: { reserve: (n) => { held += n; return undefined }, release: (n) => { held -= n } }
  })
  return { s, f, held: () => held }
}

test('listen: frames arrive in the turn their bytes do, queued ones first, budgets released', async () => {
  const { s, f, held } = framed()
  s.deliver(encodeFrame(new Uint8Array([1]))) // before listen: queued
  const got: number[][] = []
  let ended: Array<Error | undefined> = []
  f.listen({ frame: fr => { got.push([...fr]) }, end: err => { ended.push(err) } })
  assert.equal(got, [[1]], 'the queued frame first')
  // 100 zero-length frames and two more in one chunk: more than highWaterFrames, all delivered now
  s.deliver(new Uint8Array([...new Array(100).fill(0), ...encodeFrame(new Uint8Array([2, 3])), ...encodeFrame(new Uint8Array([4]))]))
  assert.is(got.length, 103, 'every frame of the chunk, synchronously')
  assert.equal(got.slice(-2), [[2, 3], [4]])
  assert.is(s.paused, false, 'never paused: nothing waits in a queue')
  // a frame split over two chunks
  const split = encodeFrame(new Uint8Array(300).fill(9))
  s.deliver(split.subarray(0, 100))
  assert.is(got.length, 103)
  assert.ok(held() > 0, 'the announced frame is reserved while it arrives')
  s.deliver(split.subarray(100))
  assert.is(got.length, 104)
  assert.is(held(), 0, 'every reservation given back')
  s.dispatchEvent(new Event('remoteCloseWrite'))
  s.end()
  assert.equal(ended, [undefined], 'a clean end, once')
  ended = []
})

test('listen: ending inside a frame, an oversized frame and a throwing listener end the stream with an error', () => {
  {
    const { s, f, held } = framed()
    const ends: Array<Error | undefined> = []
    f.listen({ frame: () => {}, end: err => { ends.push(err) } })
    s.deliver(encodeFrame(new Uint8Array(50)).subarray(0, 20))
    s.dispatchEvent(new Event('remoteCloseWrite'))
    assert.is(ends.length, 1)
    assert.ok(ends[0] instanceof WireError && ends[0].code === 'TRUNCATED_FRAME', String(ends[0]))
    s.end()
    assert.is(ends.length, 1, 'end is called once')
    assert.is(held(), 0)
  }
  {
    const { s, f, held } = framed(100)
    const ends: Array<Error | undefined> = []
    const got: number[] = []
    f.listen({ frame: fr => { got.push(fr.length) }, end: err => { ends.push(err) } })
    s.deliver(new Uint8Array([...encodeFrame(new Uint8Array(5)), ...encodeFrame(new Uint8Array(500))]))
    assert.equal(got, [5], 'the frame before the bad one is delivered')
    assert.ok(ends[0] instanceof WireError && ends[0].code === 'FRAME_TOO_LARGE')
    assert.is(held(), 0)
  }
  {
    const { s, f } = framed()
    const ends: Array<Error | undefined> = []
    let n = 0
    f.listen({ frame: () => { n++; throw new Error('bug') }, end: err => { ends.push(err) } })
    s.deliver(new Uint8Array([...encodeFrame(new Uint8Array(1)), ...encodeFrame(new Uint8Array(1))]))
    assert.is(n, 1, 'no frame after the listener threw')
    assert.is(ends[0]?.message, 'bug')
    assert.ok(s.aborted !== undefined, 'the stream is reset')
  }
})

test('listen: a second reader is refused', () => {
  const { f } = framed()
  f.listen({ frame: () => {}, end: () => {} })
  assert.throws(() => { f.listen({ frame: () => {}, end: () => {} }) })
})

test.run()
