import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import { decodeVector, encodeVector, encodedSize, fromHalf, toHalf, kthLargestMagnitude, type CodecSpec } from '../../../../src/core/training/codecs.js'

function randomVector (n: number, seed: number, scale = 1): Float32Array {
  const rng = createRng(seed)
  const v = new Float32Array(n)
  for (let i = 0; i < n; i++) v[i] = (rng.next() * 2 - 1) * scale * (rng.next() < 0.01 ? 50 : 1)
  return v
}

test('fp32 round-trips exactly', () => {
  const v = randomVector(1001, 1)
  const back = decodeVector({ kind: 'fp32' }, encodeVector({ kind: 'fp32' }, v).data, v.length)
  assert.equal(Array.from(back), Array.from(v))
})

test('fp16 relative error is at most 2^-11 in the normal range, and it halves the bytes', () => {
  const v = randomVector(5000, 2, 10)
  const spec: CodecSpec = { kind: 'fp16' }
  const data = encodeVector(spec, v).data
  assert.is(data.length, v.length * 2)
  const back = decodeVector(spec, data, v.length)
  for (let i = 0; i < v.length; i++) {
    if (Math.abs(v[i]) < 6.2e-5) { assert.ok(Math.abs(back[i] - v[i]) <= 2 ** -24); continue }
    assert.ok(Math.abs(back[i] - v[i]) <= Math.abs(v[i]) * 2 ** -11, `index ${i}: ${v[i]} → ${back[i]}`)
  }
})

test('fp16 conversion matches known values and saturates instead of overflowing', () => {
  assert.is(toHalf(1), 0x3c00)
  assert.is(toHalf(-2), 0xc000)
  assert.is(toHalf(65504), 0x7bff)
  assert.is(toHalf(1e9), 0x7bff)
  assert.is(fromHalf(0x3555), 0.333251953125)
  assert.is(fromHalf(toHalf(0.1)), 0.0999755859375)
})

test('int8 error per value is at most max|block| / 254, block scales isolate outliers', () => {
  const v = randomVector(3000, 3)
  for (const blockSize of [64, 256]) {
    const spec: CodecSpec = { kind: 'int8', blockSize }
    const data = encodeVector(spec, v).data
    assert.is(data.length, encodedSize(spec, v.length))
    const back = decodeVector(spec, data, v.length)
    for (let b = 0; b < v.length; b += blockSize) {
      let max = 0
      for (let i = b; i < Math.min(v.length, b + blockSize); i++) max = Math.max(max, Math.abs(v[i]))
      for (let i = b; i < Math.min(v.length, b + blockSize); i++) {
        assert.ok(Math.abs(back[i] - v[i]) <= max / 254 * 1.0001 + 1e-12, `block ${b} index ${i}`)
      }
    }
  }
})

test('int8 of an all-zero block decodes to zeros', () => {
  const v = new Float32Array(300)
  const back = decodeVector({ kind: 'int8' }, encodeVector({ kind: 'int8' }, v).data, v.length)
  assert.ok(back.every(x => x === 0))
})

test('top-k sends the k largest magnitudes and keeps the rest as residual (nothing is lost)', () => {
  const v = randomVector(2000, 4)
  const spec: CodecSpec = { kind: 'topk', topkFraction: 0.1 }
  const { data, residual } = encodeVector(spec, v)
  assert.is(data.length, 4 + 200 * 8)
  const back = decodeVector(spec, data, v.length)
  const sent = back.filter(x => x !== 0).length
  assert.is(sent, 200)
  const threshold = kthLargestMagnitude(v, 200)
  for (let i = 0; i < v.length; i++) {
    // sent + residual reconstructs the input exactly
    assert.ok(Math.abs(back[i] + residual![i] - v[i]) <= 1e-7)
    if (back[i] !== 0) assert.ok(Math.abs(v[i]) >= threshold)
    else assert.ok(Math.abs(v[i]) <= threshold)
  }
})

test('top-k error feedback: the running sum of decoded vectors tracks the running sum of inputs', () => {
  const spec: CodecSpec = { kind: 'topk', topkFraction: 0.05 }
  let residual: Float32Array | undefined
  const n = 1000
  const sumIn = new Float64Array(n)
  const sumOut = new Float64Array(n)
  for (let step = 0; step < 200; step++) {
    const v = randomVector(n, 100 + step, 0.01)
    const enc = encodeVector(spec, v, residual)
    residual = enc.residual
    const out = decodeVector(spec, enc.data, n)
    for (let i = 0; i < n; i++) { sumIn[i] += v[i]; sumOut[i] += out[i] }
  }
  // The gap is exactly the residual, which stays bounded while the sums grow.
  let gap = 0
  for (let i = 0; i < n; i++) gap = Math.max(gap, Math.abs(sumIn[i] - sumOut[i] - residual![i]))
  assert.ok(gap < 1e-4, `gap ${gap}`)
  const maxResidual = residual!.reduce((a, x) => Math.max(a, Math.abs(x)), 0)
  assert.ok(maxResidual < 0.3, `residual ${maxResidual}`)
})

test('decoders reject bytes that do not fit', () => {
  assert.throws(() => decodeVector({ kind: 'fp32' }, new Uint8Array(7), 2), RangeError)
  assert.throws(() => decodeVector({ kind: 'int8' }, new Uint8Array(10), 10), RangeError)
  const bad = new Uint8Array(12)
  new DataView(bad.buffer).setUint32(0, 1, true)
  new DataView(bad.buffer).setUint32(4, 99, true)
  assert.throws(() => decodeVector({ kind: 'topk' }, bad, 10), RangeError)
})

test('int8 sends about 3.9x fewer bytes than fp32, top-k at 5% 10x fewer', () => {
  const n = 50890
  assert.ok(encodedSize({ kind: 'fp32' }, n) / encodedSize({ kind: 'int8' }, n) > 3.9)
  assert.ok(encodedSize({ kind: 'fp32' }, n) / encodedSize({ kind: 'topk', topkFraction: 0.05 }, n) >= 9.9)
})

test.run()
