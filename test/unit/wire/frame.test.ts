import { test } from 'uvu'
import * as assert from 'uvu/assert'
import fc from 'fast-check'
import { FrameDecoder, encodeFrame } from '../../../src/wire/frame.js'
import { decodeMessage } from '../../../src/wire/decode.js'
import { WireError } from '../../../src/errors.js'
import { dbc } from '../../../src/wire/gen/wire.js'

test('frames survive any split of the byte stream', () => {
  fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }), (payloads, cuts) => {
    const stream = Buffer.concat(payloads.map(encodeFrame))
    const dec = new FrameDecoder({ maxFrameBytes: 1000 })
    const out: Uint8Array[] = []
    let pos = 0; let i = 0
    while (pos < stream.length) {
      const n = cuts[i++ % cuts.length]
      for (const f of dec.push(stream.subarray(pos, pos + n))) {
        assert.not.instance(f, WireError)
        out.push(f as Uint8Array)
      }
      pos += n
    }
    assert.equal(out.map(b => Buffer.from(b).toString('hex')), payloads.map(b => Buffer.from(b).toString('hex')))
    assert.is(dec.buffered, 0)
  }), { numRuns: 200 })
})

test('an oversized frame is refused from its prefix alone, and the decoder stays poisoned', () => {
  const dec = new FrameDecoder({ maxFrameBytes: 100 })
  const r = dec.push(encodeFrame(new Uint8Array(101)).subarray(0, 2))
  assert.is(r.length, 1)
  assert.instance(r[0], WireError)
  assert.is((r[0] as WireError).code, 'FRAME_TOO_LARGE')
  assert.is(dec.buffered, 0)
  const again = dec.push(encodeFrame(new Uint8Array(3)))
  assert.instance(again[0], WireError)
})

test('a prefix that is not a varint is malformed; a 4 GiB length is too large', () => {
  const dec = new FrameDecoder()
  const r = dec.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]))
  assert.is((r[0] as WireError).code, 'MALFORMED_FRAME')
  const dec2 = new FrameDecoder()
  assert.is((dec2.push(new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x10]))[0] as WireError).code, 'FRAME_TOO_LARGE')
})

test('random bytes never throw: every push returns frames or errors', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
    const dec = new FrameDecoder({ maxFrameBytes: 512 })
    const r = dec.push(bytes)
    for (const f of r) assert.ok(f instanceof Uint8Array || f instanceof WireError)
    assert.ok(dec.buffered <= 512 + 5)
  }), { numRuns: 300 })
})

test('decodeMessage returns an error value for garbage and caps repeated fields', () => {
  const bad = decodeMessage(dbc.envelope.v1.Envelope, new Uint8Array([0x0a, 0xff, 0xff, 0x01]))
  assert.is(bad.ok, false)
  if (!bad.ok) assert.is(bad.error.code, 'MALFORMED_MESSAGE')
  const many = dbc.membership.v1.ShuffleRequest.encode({ peers: Array.from({ length: 50 }, () => ({ age: 1 })) }).finish()
  const capped = decodeMessage(dbc.membership.v1.ShuffleRequest, many, { maxRepeated: 20 })
  assert.is(capped.ok, false)
  if (!capped.ok) assert.is(capped.error.code, 'MESSAGE_LIMIT')
  const fine = decodeMessage(dbc.membership.v1.ShuffleRequest, many, { maxRepeated: 64 })
  assert.is(fine.ok, true)
  fc.assert(fc.property(fc.uint8Array({ maxLength: 500 }), (bytes) => {
    const r = decodeMessage(dbc.task.v1.TaskMessage, bytes)
    assert.type(r.ok, 'boolean')
  }), { numRuns: 500 })
})

test('the frame limit may be a function asked at every prefix, or changed with the setter', () => {
  let limit = 10
  const dec = new FrameDecoder({ maxFrameBytes: () => limit })
  assert.is((dec.push(encodeFrame(new Uint8Array(5)))[0] as Uint8Array).length, 5)
  limit = 100
  assert.is((dec.push(encodeFrame(new Uint8Array(50)))[0] as Uint8Array).length, 50)
  dec.setMaxFrameBytes(20)
  const r = dec.push(encodeFrame(new Uint8Array(21)))
  assert.is((r[0] as WireError).code, 'FRAME_TOO_LARGE')
})

test('admit sees each announced length before any byte of the frame is buffered, and may refuse it', () => {
  const seen: number[] = []
  const dec = new FrameDecoder({ maxFrameBytes: 1000, admit: (n) => { seen.push(n); return n > 100 ? new WireError('BUFFER_LIMIT', 'over budget') : undefined } })
  const ok = dec.push(encodeFrame(new Uint8Array(10)))
  assert.is((ok[0] as Uint8Array).length, 10)
  assert.is(dec.frameLength, -1)
  dec.push(encodeFrame(new Uint8Array(40)).subarray(0, 3))
  assert.is(dec.frameLength, 40, 'the announced length is known while the body arrives')
  dec.push(encodeFrame(new Uint8Array(40)).subarray(3))
  const refused = dec.push(encodeFrame(new Uint8Array(500)).subarray(0, 2))
  assert.is((refused[0] as WireError).code, 'BUFFER_LIMIT')
  assert.is(dec.buffered, 0)
  assert.equal(seen, [10, 40, 500])
})

test.run()
