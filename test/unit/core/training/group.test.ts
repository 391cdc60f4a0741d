import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formGroup, type GroupCandidate } from '../../../../src/core/training/group.js'

// Peers on a line (position = ms): two clusters, one of them far from the submitter.
const pos: Record<string, number> = { a: 0, b: 50, c: 100, x: 200, y: 203, z: 206, w: 209, slow: 500 }
const lat = (p: string, q: string): number => Math.abs(pos[p] - pos[q])
const gpu = (peer: string, model = 'A100', count = 1): GroupCandidate => ({ peer, gpuModel: model, gpuCount: count, gpuMemoryGiB: 40 })

test('picks the K peers closest to each other, not the ones spread out', () => {
  const r = formGroup(['a', 'b', 'c', 'x', 'y', 'z', 'w', 'slow'].map(p => gpu(p)), { size: 4, gpuModel: 'A100', gpuCount: 1 }, lat)
  assert.ok(r.ok)
  if (r.ok) {
    assert.equal(r.members, ['w', 'x', 'y', 'z'])
    assert.is(r.maxLatencyMs, 9)
  }
})

test('GPU model, count and memory filter the candidates first', () => {
  const cands = [gpu('x', 'RTX4090'), gpu('y', 'RTX4090'), gpu('z', 'A100', 2), gpu('a', 'A100', 2), gpu('w', 'A100', 1)]
  const r = formGroup(cands, { size: 2, gpuModel: 'a100', gpuCount: 2 }, lat)
  assert.ok(r.ok)
  if (r.ok) assert.equal(r.members, ['a', 'z'])
  const none = formGroup(cands, { size: 2, gpuCount: 1, gpuMemoryGiB: 80 }, lat)
  assert.equal(none, { ok: false, reason: '0 peer(s) match the requirements, the job needs 2', eligible: 0 })
})

test('not enough matching peers is an explained failure', () => {
  const r = formGroup([gpu('a'), gpu('b')], { size: 3 }, lat)
  assert.is(r.ok, false)
  if (!r.ok) assert.match(r.reason, /2 peer\(s\) match.*needs 3/)
})

test.run()
