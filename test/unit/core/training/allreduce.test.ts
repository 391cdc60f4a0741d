import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../../src/core/rng.js'
import { AllReducePeer, sliceRange, type RoundResult } from '../../../../src/core/training/allreduce.js'
import type { CodecSpec } from '../../../../src/core/training/codecs.js'

function vectors (n: number, len: number, seed: number): Float32Array[] {
  const rng = createRng(seed)
  return Array.from({ length: n }, () => Float32Array.from({ length: len }, () => rng.next() * 2 - 1))
}

/** Pumps peers in memory; `dead` peers neither send nor receive. Time advances to timeouts when idle. */
function runRound (peers: AllReducePeer[], inputs: Float32Array[], opts: { dead?: Set<string>, deadlineMs?: number, round?: number, weights?: number[], shuffleSeed?: number, loss?: number, fallback?: Float32Array } = {}): Map<string, RoundResult> {
  const dead = opts.dead ?? new Set()
  const members = peers.map(p => p.self)
  const byId = new Map(peers.map(p => [p.self, p]))
  const rng = createRng(opts.shuffleSeed ?? 9)
  let now = 1000
  const live = peers.filter(p => !dead.has(p.self))
  live.forEach((p, i) => p.start(now, opts.round ?? 0, members, inputs[peers.indexOf(p)], { deadlineMs: opts.deadlineMs ?? 1000, weight: opts.weights?.[peers.indexOf(p)], fallback: opts.fallback }))
  const results = new Map<string, RoundResult>()
  for (let guard = 0; guard < 10000 && results.size < live.length; guard++) {
    const queue: Array<{ from: string, to: string, chunk: any }> = []
    for (const p of live) for (const o of p.pollOutbound()) queue.push({ from: p.self, to: o.to, chunk: o.chunk })
    // deliver in a shuffled order: the machine must not depend on arrival order
    for (let i = queue.length - 1; i > 0; i--) { const j = rng.int(i + 1); [queue[i], queue[j]] = [queue[j], queue[i]] }
    for (const m of queue) if (!dead.has(m.to) && !(rng.next() < (opts.loss ?? 0))) byId.get(m.to)!.handleChunk(now, m.from, m.chunk)
    for (const p of live) { const r = p.pollResult(); if (r !== undefined) results.set(p.self, r) }
    if (queue.length === 0) {
      const next = Math.min(...live.map(p => p.nextTimeout() ?? Infinity))
      if (!Number.isFinite(next)) break
      now = Math.max(now, next)
      for (const p of live) p.handleTimeout(now)
      for (const p of live) { const r = p.pollResult(); if (r !== undefined) results.set(p.self, r) }
    }
  }
  return results
}

function plainAverage (inputs: Float32Array[], weights?: number[]): Float32Array {
  const out = new Float32Array(inputs[0].length)
  const w = weights ?? inputs.map(() => 1)
  const total = w.reduce((a, b) => a + b, 0)
  for (let i = 0; i < out.length; i++) {
    let s = 0
    for (let p = 0; p < inputs.length; p++) s += inputs[p][i] * w[p]
    out[i] = s / total
  }
  return out
}

function maxDiff (a: Float32Array, b: Float32Array): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

function makePeers (n: number, len: number, codec: CodecSpec): AllReducePeer[] {
  return Array.from({ length: n }, (_, i) => new AllReducePeer({ self: `p${i}`, codec, length: len }))
}

test('slices cover the vector without overlap', () => {
  for (const [len, n] of [[10, 3], [7, 8], [50890, 4]]) {
    let next = 0
    for (let i = 0; i < n; i++) { const [s, e] = sliceRange(len, n, i); assert.is(s, next); next = e }
    assert.is(next, len)
  }
})

test('fp32 all-reduce equals the plain (weighted) average on every peer, for 1 to 8 peers', () => {
  for (const n of [1, 2, 3, 4, 8]) {
    const len = 1003
    const inputs = vectors(n, len, n)
    const weights = inputs.map((_, i) => 1 + i)
    const peers = makePeers(n, len, { kind: 'fp32' })
    const results = runRound(peers, inputs, { weights })
    assert.is(results.size, n)
    const expected = plainAverage(inputs, weights)
    for (const r of results.values()) {
      assert.ok(maxDiff(r.vector, expected) < 1e-6, `n=${n}`)
      assert.equal(r.missingSlices, [])
      assert.is(r.timedOut, false)
    }
  }
})

test('int8 and fp16 all-reduce stay within the codec error of the average; all peers agree exactly', () => {
  for (const codec of [{ kind: 'fp16' }, { kind: 'int8' }] as CodecSpec[]) {
    const inputs = vectors(4, 2000, 11)
    const results = [...runRound(makePeers(4, 2000, codec), inputs).values()]
    const expected = plainAverage(inputs)
    const bound = codec.kind === 'fp16' ? 2e-3 : 2 * (1 / 254) + 1e-6 // scatter + gather quantisation, |x| <= 1
    for (const r of results) assert.ok(maxDiff(r.vector, expected) <= bound, `${codec.kind}: ${maxDiff(r.vector, expected)}`)
    for (const r of results) assert.equal(Array.from(r.vector), Array.from(results[0].vector))
  }
})

test('top-k all-reduce of repeated rounds converges to the average through error feedback', () => {
  const len = 500
  const peers = makePeers(4, len, { kind: 'topk', topkFraction: 0.1 })
  const inputs = vectors(4, len, 12)
  const expected = plainAverage(inputs)
  // Averaging the same deltas for many rounds: the sum of outputs should track rounds × average.
  const acc = new Float64Array(len)
  const rounds = 60
  for (let r = 0; r < rounds; r++) {
    const res = runRound(peers, inputs.map(v => Float32Array.from(v, x => x / rounds)), { round: r })
    const v = res.get('p0')!.vector
    for (let i = 0; i < len; i++) acc[i] += v[i]
  }
  let err = 0
  for (let i = 0; i < len; i++) err = Math.max(err, Math.abs(acc[i] - expected[i]))
  assert.ok(err < 0.1, `error ${err}`)
})

test('a dead peer is dropped: the others average without its part, and its slice stays local', () => {
  const len = 1000
  const inputs = vectors(4, len, 13)
  const peers = makePeers(4, len, { kind: 'fp32' })
  const results = runRound(peers, inputs, { dead: new Set(['p2']), deadlineMs: 1000 })
  assert.is(results.size, 3)
  const survivors = [0, 1, 3]
  const expected = plainAverage(survivors.map(i => inputs[i]))
  const [ds, de] = sliceRange(len, 4, 2)
  for (const i of survivors) {
    const r = results.get(`p${i}`)!
    assert.ok(r.timedOut)
    assert.equal(r.missingSlices, [2])
    assert.ok(r.dropped.includes('p2'))
    assert.is(r.durationMs, 1000) // waited exactly until the deadline, no longer
    for (let k = 0; k < len; k++) {
      const want = k >= ds && k < de ? inputs[i][k] : expected[k]
      assert.ok(Math.abs(r.vector[k] - want) < 1e-6, `peer ${i} index ${k}`)
    }
  }
})

test('with a fallback, a dead peer\'s slice takes it on every survivor: they hold the same vector', () => {
  const len = 1000
  const inputs = vectors(3, len, 17)
  const fallback = new Float32Array(len).fill(0.25)
  const results = runRound(makePeers(3, len, { kind: 'fp32' }), inputs, { dead: new Set(['p1']), deadlineMs: 1000, fallback })
  const [ds, de] = sliceRange(len, 3, 1)
  const a = results.get('p0')!.vector
  const b = results.get('p2')!.vector
  for (let k = 0; k < len; k++) {
    assert.is(a[k], b[k], `index ${k}`)
    if (k >= ds && k < de) assert.is(a[k], 0.25)
  }
  assert.throws(() => makePeers(2, len, { kind: 'fp32' })[0].start(0, 0, ['p0', 'p1'], inputs[0], { deadlineMs: 1000, fallback: new Float32Array(3) }), /fallback has 3 values/)
})

test('chunks that arrive before a peer starts the round are buffered and used', () => {
  const len = 100
  const inputs = vectors(2, len, 14)
  const [a, b] = makePeers(2, len, { kind: 'fp32' })
  a.start(0, 0, ['p0', 'p1'], inputs[0], { deadlineMs: 1000 })
  for (const o of a.pollOutbound()) b.handleChunk(1, 'p0', o.chunk) // b has not started yet
  b.start(5, 0, ['p0', 'p1'], inputs[1], { deadlineMs: 1000 })
  for (const o of b.pollOutbound()) a.handleChunk(6, 'p1', o.chunk)
  for (const o of a.pollOutbound()) b.handleChunk(7, 'p0', o.chunk)
  const ra = a.pollResult()!
  const rb = b.pollResult()!
  assert.ok(ra !== undefined && rb !== undefined)
  assert.ok(maxDiff(ra.vector, plainAverage(inputs)) < 1e-6)
  assert.ok(maxDiff(rb.vector, plainAverage(inputs)) < 1e-6)
})

test('chunks from non-members, stale rounds, wrong sizes or duplicates are rejected', () => {
  const len = 10
  const [a, b] = makePeers(2, len, { kind: 'fp32' })
  const inputs = vectors(2, len, 15)
  a.start(0, 3, ['p0', 'p1'], inputs[0], { deadlineMs: 1000 })
  b.start(0, 3, ['p0', 'p1'], inputs[1], { deadlineMs: 1000 })
  const chunk = b.pollOutbound()[0].chunk
  a.handleChunk(1, 'mallory', chunk)
  a.handleChunk(1, 'p1', { ...chunk, round: 2 })
  a.handleChunk(1, 'p1', { ...chunk, length: 3, data: chunk.data.subarray(0, 12) })
  a.handleChunk(1, 'p1', { ...chunk, codec: 2 })
  assert.is(a.rejected, 4)
  a.handleChunk(1, 'p1', chunk)
  a.handleChunk(1, 'p1', chunk)
  assert.is(a.rejected, 5)
})

test('the deadline timer is exposed and honoured', () => {
  const [a] = makePeers(2, 10, { kind: 'fp32' })
  a.start(100, 0, ['p0', 'p1'], new Float32Array(10), { deadlineMs: 1000 })
  assert.is(a.nextTimeout(), 700) // scatter share 0.6
  a.handleTimeout(700)
  assert.is(a.nextTimeout(), 1100)
  assert.is(a.pollResult(), undefined)
  a.handleTimeout(1100)
  const r = a.pollResult()!
  assert.ok(r.timedOut)
  assert.is(a.nextTimeout(), undefined)
})

test('random deaths and message loss: every survivor finishes, agrees on each slice it got, and each slice is the average of its contributors', () => {
  for (let seed = 1; seed <= 40; seed++) {
    const rng = createRng(seed)
    const n = 2 + rng.int(7)
    const len = 50 + rng.int(200)
    const inputs = vectors(n, len, seed * 31)
    const weights = inputs.map(() => 1 + rng.int(5))
    const peers = makePeers(n, len, { kind: 'fp32' })
    const dead = new Set(peers.filter(() => rng.next() < 0.25).map(p => p.self))
    if (dead.size === n) dead.delete(peers[0].self)
    const results = runRound(peers, inputs, { dead, weights, loss: rng.next() * 0.2, shuffleSeed: seed })
    const live = peers.filter(p => !dead.has(p.self))
    assert.is(results.size, live.length, `seed ${seed}`)
    for (const p of live) {
      const r = results.get(p.self)!
      const me = peers.indexOf(p)
      for (let j = 0; j < n; j++) {
        const [s, e] = sliceRange(len, n, j)
        const got = !r.missingSlices.includes(j)
        if (!got) {
          // a slice that did not come back keeps this peer's own values
          for (let k = s; k < e; k++) assert.is(r.vector[k], inputs[me][k])
          continue
        }
        const owner = results.get(peers[j].self)
        assert.ok(owner !== undefined, `seed ${seed}: slice ${j} came back from a dead owner`)
        const contributors = owner!.contributors.map(c => peers.findIndex(q => q.self === c))
        const expected = plainAverage(contributors.map(i => inputs[i]), contributors.map(i => weights[i]))
        for (let k = s; k < e; k++) {
          assert.is(r.vector[k], owner!.vector[k], `seed ${seed}: peers disagree on slice ${j}`)
          assert.ok(Math.abs(r.vector[k] - expected[k]) < 1e-6, `seed ${seed}: slice ${j} is not the average of its contributors`)
        }
      }
    }
  }
})

test.run()
