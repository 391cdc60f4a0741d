// The length-prefix workaround (src/net/lp-decoder-fix.ts): a decoder yields the same frames as
// before, whatever the chunking (several frames in a chunk, a prefix split across chunks), and
// its length decoder is never asked to decode an empty buffer (where Noise's throws a RangeError
// with a stack trace, once per read).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { installLengthPrefixFix } from '../../../src/net/lp-decoder-fix.js'

/** Noise's 2-byte big-endian length, counting the buffers it was asked to decode with no bytes. */
function uint16 (): { decode: (b: { byteLength: number, get: (i: number) => number }) => number, empty: number } {
  const s = { empty: 0, decode: (b: { byteLength: number, get: (i: number) => number }): number => {
    if (b.byteLength === 0) s.empty++
    if (b.byteLength < 2) throw RangeError('Could not decode int16BE')
    return (b.get(0) << 8) + b.get(1)
  } }
  return s
}
const frame = (n: number, fill: number): Uint8Array => { const f = new Uint8Array(2 + n).fill(fill); f[0] = n >> 8; f[1] = n & 0xff; return f }

function run (): { frames: number[][], empty: number } {
  const len = uint16()
  const d = new LengthPrefixedDecoder({ lengthDecoder: len.decode as never, encodingLength: () => 2 })
  const a = frame(3, 1); const b = frame(300, 2); const c = frame(5, 3)
  const all = new Uint8Array([...a, ...b, ...c])
  // chunks: two frames and the first byte of the third's prefix, then the rest
  const cut = a.length + b.length + 1
  const frames: number[][] = []
  for (const chunk of [all.subarray(0, cut), all.subarray(cut)]) for (const f of d.decode(chunk)) frames.push([f.byteLength, f.subarray()[0]])
  return { frames, empty: len.empty }
}

test('frames are the same with the workaround, and the length decoder never sees an empty buffer', () => {
  const before = run()
  assert.ok(before.empty > 0, 'the library asks the length decoder on an empty buffer (else the workaround is moot)')
  installLengthPrefixFix()
  installLengthPrefixFix()
  const after = run()
  assert.equal(after.frames, before.frames)
  assert.equal(after.frames, [[3, 1], [300, 2], [5, 3]])
  assert.is(after.empty, 0)
})

test.run()
