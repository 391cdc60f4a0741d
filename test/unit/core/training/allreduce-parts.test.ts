// Slices in parts, cut by bandwidth: the average is still exact (fp32), every member ends with the
// same vector, parts are averaged and sent back before the whole slice is in, and hostile parts
// (wrong offset, wrong length, duplicates) are refused.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import { AllReducePeer, PHASE_GATHER, PHASE_SCATTER, type RoundResult, type SliceChunk } from '../../../../src/core/training/allreduce.js'
import { boundsOf } from '../../../../src/core/training/partition.js'

function vectors (n: number, len: number, seed: number): Float32Array[] {
  const rng = createRng(seed)
  return Array.from({ length: n }, () => Float32Array.from({ length: len }, () => rng.next() * 2 - 1))
}

function weightedAverage (inputs: Float32Array[], w: number[]): Float64Array {
  const out = new Float64Array(inputs[0].length)
  const total = w.reduce((a, b) => a + b, 0)
  for (let i = 0; i < out.length; i++) { let s = 0; for (let p = 0; p < inputs.length; p++) s += inputs[p][i] * w[p]; out[i] = s / total }
  return out
}

interface Pumped { results: Map<string, RoundResult>, chunks: Array<{ from: string, to: string, chunk: SliceChunk }> }

function pump (peers: AllReducePeer[], inputs: Float32Array[], opts: { bandwidths?: number[], weights?: number[], seed?: number, loss?: number }): Pumped {
  const members = peers.map(p => p.self)
  const byId = new Map(peers.map(p => [p.self, p]))
  const rng = createRng(opts.seed ?? 3)
  let now = 0
  peers.forEach((p, i) => { p.start(now, 0, members, inputs[i], { deadlineMs: 1000, weight: opts.weights?.[i], bandwidths: opts.bandwidths }) })
  const results = new Map<string, RoundResult>()
  const chunks: Pumped['chunks'] = []
  for (let guard = 0; guard < 100_000 && results.size < peers.length; guard++) {
    const queue: Pumped['chunks'] = []
    for (const p of peers) for (const o of p.pollOutbound()) queue.push({ from: p.self, to: o.to, chunk: o.chunk })
    for (let i = queue.length - 1; i > 0; i--) { const j = rng.int(i + 1); [queue[i], queue[j]] = [queue[j], queue[i]] }
    chunks.push(...queue)
    for (const m of queue) if (!(rng.next() < (opts.loss ?? 0))) byId.get(m.to)!.handleChunk(now, m.from, m.chunk)
    for (const p of peers) { const r = p.pollResult(); if (r !== undefined) results.set(p.self, r) }
    if (queue.length === 0) {
      const next = Math.min(...peers.map(p => p.nextTimeout() ?? Infinity))
      if (!Number.isFinite(next)) break
      now = Math.max(now, next)
      for (const p of peers) p.handleTimeout(now)
      for (const p of peers) { const r = p.pollResult(); if (r !== undefined) results.set(p.self, r) }
    }
  }
  return { results, chunks }
}

const makePeers = (n: number, len: number, partValues: number): AllReducePeer[] =>
  Array.from({ length: n }, (_, i) => new AllReducePeer({ self: `p${i}`, codec: { kind: 'fp32' }, length: len, partValues }))

test('bandwidth-aware slices in many parts: every member gets the exact weighted average', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rng = createRng(seed)
    const n = 2 + rng.int(5)
    const len = 100 + rng.int(5000)
    const partValues = 1 + rng.int(300)
    const bandwidths = Array.from({ length: n }, () => 1 + rng.next() * 50)
    const weights = Array.from({ length: n }, () => 1 + rng.int(4))
    const inputs = vectors(n, len, seed)
    const peers = makePeers(n, len, partValues)
    const { results, chunks } = pump(peers, inputs, { bandwidths, weights, seed })
    assert.is(results.size, n, `seed ${seed}`)
    const expected = weightedAverage(inputs, weights)
    const first = results.get('p0')!
    assert.equal(first.sliceSizes, peers[0].sliceSizes(n, bandwidths))
    for (const r of results.values()) {
      assert.not.ok(r.timedOut, `seed ${seed}`)
      assert.equal(r.missingSlices, [])
      assert.is(r.contributors.length, n)
      assert.equal(r.sliceSizes, first.sliceSizes)
      for (let k = 0; k < len; k++) {
        assert.is(r.vector[k], first.vector[k], `seed ${seed}: members disagree at ${k}`)
        assert.ok(Math.abs(r.vector[k] - expected[k]) < 1e-6, `seed ${seed}: index ${k}`)
      }
    }
    // no chunk carries more than a part
    for (const c of chunks) assert.ok(c.chunk.length <= partValues)
  }
})

test('slices follow the bandwidths: the fast member owns (and receives) the most', () => {
  const len = 40_000
  const peers = makePeers(4, len, 1000)
  const { results, chunks } = pump(peers, vectors(4, len, 7), { bandwidths: [1, 1, 1, 5] })
  const sizes = results.get('p0')!.sliceSizes
  assert.ok(sizes[3] > 4 * sizes[0], `sizes ${sizes.join(',')}`)
  const scatterTo = (to: string): number => chunks.filter(c => c.to === to && c.chunk.phase === PHASE_SCATTER).reduce((a, c) => a + c.chunk.length, 0)
  assert.is(scatterTo('p3'), 3 * sizes[3])
  assert.is(scatterTo('p0'), 3 * sizes[0])
})

test('a part is averaged and sent back as soon as every copy of it is in, before the rest of the slice', () => {
  const len = 4000
  const peers = makePeers(2, len, 500)
  const inputs = vectors(2, len, 5)
  const members = peers.map(p => p.self)
  peers.forEach((p, i) => { p.start(0, 0, members, inputs[i], { deadlineMs: 1000 }) })
  const fromP1 = peers[1].pollOutbound().filter(o => o.to === 'p0')
  assert.is(fromP1.length, 4) // p0's 2000 values in parts of 500
  peers[0].pollOutbound()
  peers[0].handleChunk(1, 'p1', fromP1[0].chunk)
  const back = peers[0].pollOutbound()
  assert.is(back.length, 1)
  assert.is(back[0].chunk.phase, PHASE_GATHER)
  assert.is(back[0].chunk.offset, 0)
  assert.is(back[0].chunk.length, 500)
  assert.is(peers[0].pollResult(), undefined)
})

test('hostile parts are refused: misaligned offset, wrong length, past the slice, duplicate', () => {
  const len = 3000
  const peers = makePeers(3, len, 400)
  const inputs = vectors(3, len, 9)
  const members = peers.map(p => p.self)
  peers.forEach((p, i) => { p.start(0, 0, members, inputs[i], { deadlineMs: 1000 }) })
  const good = peers[1].pollOutbound().find(o => o.to === 'p0' && o.chunk.offset === 400)!.chunk
  const p0 = peers[0]
  p0.handleChunk(1, 'p1', { ...good, offset: 399 })
  p0.handleChunk(1, 'p1', { ...good, offset: 1200 })
  p0.handleChunk(1, 'p1', { ...good, length: 399, data: good.data.subarray(0, 399 * 4) })
  assert.is(p0.rejected, 3)
  p0.handleChunk(1, 'p1', good)
  p0.handleChunk(1, 'p1', good)
  assert.is(p0.rejected, 4)
})

test('lost parts: each part is either the average of the copies that arrived or stays local', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const n = 4
    const len = 3000
    const bandwidths = [1, 2, 3, 4]
    const inputs = vectors(n, len, seed)
    const peers = makePeers(n, len, 200)
    const { results } = pump(peers, inputs, { bandwidths, seed, loss: 0.1 })
    assert.is(results.size, n)
    const bounds = boundsOf(results.get('p0')!.sliceSizes)
    for (let me = 0; me < n; me++) {
      const r = results.get(`p${me}`)!
      for (let j = 0; j < n; j++) {
        const owner = results.get(`p${j}`)!
        for (let k = bounds[j]; k < bounds[j + 1]; k++) {
          // the owner's value is an average over a subset of members; ours is it or our own
          assert.ok(r.vector[k] === owner.vector[k] || r.vector[k] === inputs[me][k], `seed ${seed}: peer ${me} index ${k}`)
        }
      }
    }
  }
})

test.run()
