import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRng } from '../../../src/core/rng.js'
import { Mlp, mlpLayout, mlpParamCount } from '../../../src/training/mlp.js'
import { datasetFrom, loadMnist, shardIndices, subset } from '../../../src/training/mnist.js'
import { createMlpTrainer } from '../../../src/training/trainer.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'

function toyData (n: number, features: number, seed: number) {
  const rng = createRng(seed)
  const rows: Float32Array[] = []
  const labels: number[] = []
  for (let i = 0; i < n; i++) {
    const r = Float32Array.from({ length: features }, () => (rng.next() < 0.5 ? 0 : rng.next()))
    rows.push(r)
    labels.push(rng.int(3))
  }
  return datasetFrom(rows, labels)
}

test('backprop matches finite differences of the loss (float64 tolerance for float32 math)', () => {
  const data = toyData(8, 12, 1)
  const m = new Mlp({ inputs: 12, hidden: 6, outputs: 3 }, { seed: 2 })
  const batch = [0, 1, 2, 3, 4, 5, 6, 7]
  const grad = m.batchGradient(data, batch)
  const rng = createRng(5)
  let checked = 0
  for (let k = 0; k < 40; k++) {
    const j = rng.int(m.paramCount)
    const orig = m.params[j]
    const h = 1e-2
    m.params[j] = orig + h; const up = m.batchLoss(data, batch)
    m.params[j] = orig - h; const down = m.batchLoss(data, batch)
    m.params[j] = orig
    const numeric = (up - down) / (2 * h)
    const err = Math.abs(numeric - grad[j])
    assert.ok(err <= 2e-3 + 0.05 * Math.abs(numeric), `param ${j}: numeric ${numeric} vs backprop ${grad[j]}`)
    checked++
  }
  assert.is(checked, 40)
})

test('the flat vector has the documented size and the same seed gives the same model', () => {
  const shape = { inputs: 784, hidden: 64, outputs: 10 }
  assert.is(mlpParamCount(shape), 50890)
  const a = new Mlp(shape, { seed: 9 })
  const b = new Mlp(shape, { seed: 9 })
  const c = new Mlp(shape, { seed: 10 })
  assert.equal(Array.from(a.params.subarray(0, 100)), Array.from(b.params.subarray(0, 100)))
  assert.not.equal(Array.from(a.params.subarray(0, 100)), Array.from(c.params.subarray(0, 100)))
})

test('the flat vector is PyTorch\'s layout: W1[out][in], b1, W2[out][in], b2, named as the state_dict', () => {
  const shape = { inputs: 3, hidden: 2, outputs: 2 }
  const layout = mlpLayout(shape)
  assert.equal(layout.map(t => [t.name, t.shape, t.offset]), [['0.weight', [2, 3], 0], ['0.bias', [2], 6], ['2.weight', [2, 2], 8], ['2.bias', [2], 12]])
  const last = layout[layout.length - 1]
  assert.is(last.offset + last.shape.reduce((a, b) => a * b, 1), mlpParamCount(shape))
  assert.equal(mlpLayout({ inputs: 784, hidden: 64, outputs: 10 }).map(t => t.shape), [[64, 784], [64], [10, 64], [10]])
  // A hand-written forward pass that reads the vector as torch does (weight[out][in] row-major) gives the model's loss.
  const m = new Mlp(shape, { seed: 1 })
  // W1 = [[0.5, -0.2, 0.3], [-0.4, 0.1, 0.6]], b1 = [0.1, -0.2], W2 = [[0.7, -0.3], [0.2, 0.8]], b2 = [0.05, -0.1]
  const w = Float32Array.from([0.5, -0.2, 0.3, -0.4, 0.1, 0.6, 0.1, -0.2, 0.7, -0.3, 0.2, 0.8, 0.05, -0.1])
  m.setParams(w)
  const x = [0.5, 0, 1]
  const h = [0, 1].map(k => Math.max(0, w[6 + k] + x.reduce((s, v, i) => s + w[k * 3 + i] * v, 0)))
  const logits = [0, 1].map(o => w[12 + o] + h.reduce((s, v, k) => s + w[8 + o * 2 + k] * v, 0))
  const label = 1
  const expected = Math.log(Math.exp(logits[0]) + Math.exp(logits[1])) - logits[label]
  const data = datasetFrom([Float32Array.from(x)], [label])
  assert.ok(Math.abs(m.batchLoss(data, [0]) - expected) < 1e-6, `loss ${m.batchLoss(data, [0])} vs ${expected}`)
  // and the gradient lands where torch puts it: input 1 is zero, so no first-layer weight of it moves
  const g = m.batchGradient(data, [0])
  assert.is(g[1], 0)
  assert.is(g[3 + 1], 0)
  assert.ok(g[0] !== 0 && g[3] !== 0 && g[2] !== 0)
})

test('MNIST split is fixed, shards are disjoint, cover the set and keep the class mix', () => {
  const { train, test: testSet } = loadMnist({ trainPerClass: 100, testPerClass: 50 })
  assert.is(train.count, 1000)
  assert.is(testSet.count, 500)
  assert.is(train.features, 784)
  const seen = new Set<number>()
  for (let r = 0; r < 4; r++) {
    const idx = shardIndices(train.count, 4, r, 7)
    assert.is(idx.length, 250)
    for (const i of idx) { assert.ok(!seen.has(i)); seen.add(i) }
    const counts = new Array(10).fill(0)
    for (const i of idx) counts[train.labels[i]]++
    assert.ok(Math.min(...counts) >= 10, `shard ${r} classes ${counts}`)
  }
  assert.is(seen.size, 1000)
  assert.equal(Array.from(shardIndices(1000, 4, 1, 7)), Array.from(shardIndices(1000, 4, 1, 7)))
  const s = subset(train, [5, 6])
  assert.equal(Array.from(s.inputs.subarray(0, 784)), Array.from(train.inputs.subarray(5 * 784, 6 * 784)))
})

test('the built-in trainer learns MNIST: loss falls and accuracy passes 80% in 300 steps', async () => {
  const spec = parseTrainingSpec({ dataset: { trainPerClass: 300, testPerClass: 100 }, seed: 4 })
  const t = createMlpTrainer(spec, 0, 1)
  const before = await t.evaluate()
  const first = await t.step(20)
  await t.step(260)
  const last = await t.step(20)
  const after = await t.evaluate()
  assert.ok(last.loss < first.loss * 0.7, `loss ${first.loss} → ${last.loss}`)
  assert.ok(before.accuracy < 0.3)
  assert.ok(after.accuracy > 0.8, `accuracy ${after.accuracy}`)
})

test('training spec: defaults, and a bad field names itself', () => {
  const s = parseTrainingSpec({})
  assert.is(s.groupSize, 4)
  assert.equal(s.codec, { kind: 'fp32' })
  try {
    parseTrainingSpec({ codec: { kind: 'zip' } })
    assert.unreachable()
  } catch (err) {
    assert.is((err as Error).name, 'ManifestError')
    assert.match((err as Error).message, /training\.codec\.kind/)
  }
})

test.run()
