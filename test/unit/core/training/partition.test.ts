import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import { BandwidthEstimate, boundsOf, equalSizes, modelledRoundSeconds, partitionSizes, validBandwidths } from '../../../../src/core/training/partition.js'
import { sliceRange } from '../../../../src/core/training/allreduce.js'

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0)

test('sizes sum to the vector length and are whole, non-negative and deterministic', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rng = createRng(seed)
    const n = 1 + rng.int(12)
    const length = rng.int(100_000)
    const bw = Array.from({ length: n }, () => 0.01 + rng.next() * 1000)
    const sizes = partitionSizes(length, bw)
    assert.is(sizes.length, n)
    assert.is(sum(sizes), length, `seed ${seed}`)
    for (const s of sizes) assert.ok(Number.isInteger(s) && s >= 0)
    assert.equal(partitionSizes(length, [...bw]), sizes, 'same inputs, same partition')
  }
})

test('equal bandwidths give the equal split of sliceRange', () => {
  for (const [length, n] of [[10, 3], [50_890, 4], [1_000_001, 7], [2, 5]]) {
    const sizes = partitionSizes(length, new Array(n).fill(123.5))
    assert.equal(sizes, equalSizes(length, n))
    const b = boundsOf(sizes)
    for (let i = 0; i < n; i++) assert.equal([b[i], b[i + 1]], sliceRange(length, n, i))
  }
})

test('above the floor, slices are proportional to bandwidth (within one value)', () => {
  const length = 1_000_000
  const bw = [100, 200, 300, 400]
  const sizes = partitionSizes(length, bw, { minShare: 0 })
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(sizes[i] - (length * bw[i]) / 1000) <= 1, `member ${i}: ${sizes[i]}`)
  // a doubled bandwidth doubles the share
  const two = partitionSizes(900, [1, 2])
  assert.equal(two, [300, 600])
})

test('the floor: a very slow member keeps minShare of the equal slice, the rest is proportional', () => {
  const length = 1_000_000
  const bw = [1, 1000, 1000, 2000]
  const sizes = partitionSizes(length, bw, { minShare: 0.1 })
  const floor = Math.floor((0.1 * length) / 4)
  assert.is(sizes[0], floor)
  const rest = length - floor
  assert.ok(Math.abs(sizes[1] - rest / 4) <= 1)
  assert.ok(Math.abs(sizes[3] - rest / 2) <= 1)
  for (let seed = 1; seed <= 100; seed++) {
    const rng = createRng(seed)
    const n = 2 + rng.int(8)
    const b = Array.from({ length: n }, () => (rng.next() < 0.3 ? 0.001 : 1) * (1 + rng.next() * 100))
    const minShare = rng.next() * 0.5
    const s = partitionSizes(length, b, { minShare })
    const f = Math.floor((minShare * length) / n)
    for (const x of s) assert.ok(x >= f, `seed ${seed}: ${x} < floor ${f}`)
    // members above the floor: size/bandwidth is the same for all of them (within rounding)
    const free = s.map((x, i) => ({ x, b: b[i] })).filter(m => m.x > f + 1)
    const ratios = free.map(m => m.x / m.b)
    for (const r of ratios) assert.ok(Math.abs(r - ratios[0]) <= 1.01 / Math.min(...free.map(m => m.b)), `seed ${seed}`)
  }
})

test('unusable bandwidths (missing, zero, wrong count) fall back to equal slices', () => {
  assert.equal(partitionSizes(100, [1, 0, 3]), equalSizes(100, 3))
  assert.equal(partitionSizes(100, [1, Number.NaN, 3]), equalSizes(100, 3))
  assert.ok(!validBandwidths([1, 2], 3))
  assert.ok(!validBandwidths(undefined, 3))
  assert.ok(validBandwidths([1, 2, 3], 3))
})

test('the bandwidth-aware split beats equal slices in the modelled round time when one member is slow', () => {
  const bw = [10, 100, 100, 100]
  const equal = equalSizes(1_000_000, 4)
  const aware = partitionSizes(1_000_000, bw)
  assert.ok(modelledRoundSeconds(aware, bw) < 0.8 * modelledRoundSeconds(equal, bw))
  // and costs nothing when bandwidths are equal
  assert.is(modelledRoundSeconds(partitionSizes(1_000_000, [5, 5, 5, 5]), [5, 5, 5, 5]), modelledRoundSeconds(equal, [5, 5, 5, 5]))
})

test('BandwidthEstimate: an EWMA of bytes over busy time, ignoring tiny samples', () => {
  const e = new BandwidthEstimate(0.5, 1000)
  assert.is(e.value, undefined)
  e.observe(10, 1) // under minBytes
  e.observe(1e6, 0) // no time
  assert.is(e.value, undefined)
  e.observe(1e6, 1000)
  assert.is(e.value, 1e6)
  e.observe(3e6, 1000)
  assert.is(e.value, 2e6)
})

test.run()
