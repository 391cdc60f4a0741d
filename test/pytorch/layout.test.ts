// The PyTorch trainer (Debian python3-torch, CPU) against the built-in MLP: the same layout, the
// same data shard from the node, the same start, so the same full-batch SGD steps give the same
// parameters; and a saved model loads in PyTorch with the lines docs/external-trainer.md shows.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TrainerRegistry } from '../../src/training/trainers.js'
import { createMlpTrainer, initialMlp } from '../../src/training/trainer.js'
import { mlpParamCount } from '../../src/training/mlp.js'
import { parseTrainingSpec } from '../../src/training/spec.js'
import { decodeModel, encodeModel } from '../../src/training/session.js'
import { requireTorch, runPython, torchTrainer } from './fixtures/torch.js'

requireTorch()
const dir = mkdtempSync(join(tmpdir(), 'dbc-torch-layout-'))
test.after(() => { rmSync(dir, { recursive: true, force: true }) })

// full batches (the whole 100-sample shard): the sample order does not matter, so both trainers compute the same steps
const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 16 }, dataset: { trainPerClass: 20, testPerClass: 30 }, batchSize: 100, learningRate: 0.1, momentum: 0.9, seed: 5 })

function maxDiff (a: Float32Array, b: Float32Array): number {
  let d = 0
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]))
  return d
}

test('PyTorch and the built-in trainer take the same steps on the shard the node sends', async () => {
  const registry = new TrainerRegistry({ trainers: { 'torch-mlp': torchTrainer() }, dataDir: dir })
  assert.is(registry.serving('mlp'), 'torch-mlp')
  const torch = await registry.start('torch-mlp', { rank: 1, shards: 2, spec })
  try {
    const builtin = createMlpTrainer(spec, 1, 2)
    assert.is(torch.paramCount, mlpParamCount({ inputs: 784, hidden: 16, outputs: 10 }))
    assert.is(torch.device, 'cpu')
    assert.is(torch.usesGpu, false)
    const start = await torch.getParams()
    assert.equal(Array.from(start), Array.from(initialMlp(spec).params), 'the node gave PyTorch the seeded start')
    const t = await torch.step(3)
    const b = await builtin.step(3)
    assert.is(t.samples, 300)
    assert.is(b.samples, 300)
    assert.ok(Math.abs(t.loss - b.loss) < 1e-4, `loss ${t.loss} vs ${b.loss}`)
    const pt = await torch.getParams()
    const pb = await builtin.getParams()
    const moved = maxDiff(pt, start)
    const apart = maxDiff(pt, pb)
    assert.ok(moved > 1e-3, `the steps moved the parameters (${moved})`)
    assert.ok(apart < 1e-4, `PyTorch and built-in parameters differ by ${apart} after 3 steps (moved ${moved})`)
    const et = await torch.evaluate()
    const eb = await builtin.evaluate()
    assert.ok(Math.abs(et.accuracy - eb.accuracy) <= 1 / 300 + 1e-9, `accuracy ${et.accuracy} vs ${eb.accuracy}`)
    assert.ok(Math.abs(et.loss - eb.loss) < 1e-4, `test loss ${et.loss} vs ${eb.loss}`)
    // parameters set from outside (the group's average) are read in the same layout
    await torch.setParams(pb)
    assert.ok(maxDiff(await torch.getParams(), pb) === 0)
  } finally {
    await torch.close()
  }
})

test('a saved model loads in PyTorch with the documented lines and scores what the built-in trainer scores', async () => {
  const t = createMlpTrainer(spec, 0, 1)
  await t.step(20)
  const ours = await t.evaluate()
  const bytes = encodeModel(spec, await t.getParams())
  const file = join(dir, 'model.bin')
  writeFileSync(file, bytes)
  const back = decodeModel(bytes)
  assert.is(back.architecture, 'mlp')
  assert.equal(back.tensors.map(x => x.shape), [[16, 784], [16], [10, 16], [10]])
  // the test set as raw float32 / uint8, for the Python side
  writeFileSync(join(dir, 'x.bin'), new Uint8Array(t.test.inputs.buffer, t.test.inputs.byteOffset, t.test.inputs.byteLength))
  writeFileSync(join(dir, 'y.bin'), t.test.labels)
  const doc = readFileSync(new URL('../../docs/external-trainer.md', import.meta.url), 'utf8')
  const block = /<!-- load-model[^>]*-->\s*```python\n([\s\S]*?)```/.exec(doc)
  assert.ok(block !== null, 'docs/external-trainer.md has the load-model block')
  const snippet = block![1].replace("'model.bin'", 'sys.argv[1]')
  const out = runPython(`import sys\n${snippet}\nx = torch.from_numpy(np.fromfile(sys.argv[2], dtype='<f4').reshape(-1, 784))\ny = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.uint8).astype(np.int64))\nwith torch.no_grad():\n  logits = net(x)\nprint(m['format'], m['architecture'], (logits.argmax(1) == y).float().mean().item(), torch.nn.functional.cross_entropy(logits, y).item())\n`, [file, join(dir, 'x.bin'), join(dir, 'y.bin')])
  const [format, architecture, accuracy, loss] = out.trim().split(' ')
  assert.is(format, 'dbc-model-v2')
  assert.is(architecture, 'mlp')
  assert.ok(Math.abs(Number(accuracy) - ours.accuracy) < 1e-6, `PyTorch accuracy ${accuracy}, built-in ${ours.accuracy}`)
  assert.ok(Math.abs(Number(loss) - ours.loss) < 1e-4, `PyTorch loss ${loss}, built-in ${ours.loss}`)
  assert.ok(ours.accuracy > 0.5, `the model learned something (${ours.accuracy})`)
})

test.run()
