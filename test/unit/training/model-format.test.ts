// The saved model (dbc-model-v2): architecture, shape and every tensor's name, shape and offset,
// so it loads in PyTorch without guessing (test/pytorch/layout.test.ts loads one there).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { pack, unpack } from 'msgpackr'
import { decodeModel, encodeModel, MODEL_FORMAT } from '../../../src/training/session.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { initialMlp } from '../../../src/training/trainer.js'

test('a built-in MLP model names its tensors as torch\'s state_dict, with shapes', () => {
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 32 } })
  const params = initialMlp(spec).params
  const bytes = encodeModel(spec, params)
  const raw = unpack(bytes) as Record<string, any>
  assert.is(raw.format, MODEL_FORMAT)
  assert.is(raw.format, 'dbc-model-v2')
  assert.is(raw.architecture, 'mlp')
  assert.equal(raw.shape, { inputs: 784, hidden: 32, outputs: 10 })
  assert.equal(raw.tensors, [
    { name: '0.weight', shape: [32, 784], offset: 0 },
    { name: '0.bias', shape: [32], offset: 25088 },
    { name: '2.weight', shape: [10, 32], offset: 25120 },
    { name: '2.bias', shape: [10], offset: 25440 }
  ])
  const back = decodeModel(bytes)
  assert.equal(Array.from(back.params), Array.from(params))
  assert.is(back.architecture, 'mlp')
})

test('an operator\'s trainer model carries its trainer and size; shape is never null', () => {
  const spec = parseTrainingSpec({ model: { kind: 'external', trainer: 'torch-mlp' } })
  const raw = unpack(encodeModel(spec, new Float32Array(100))) as Record<string, any>
  assert.is(raw.architecture, 'external')
  assert.equal(raw.shape, { trainer: 'torch-mlp', params: 100 })
  assert.equal(raw.tensors, [{ name: 'params', shape: [100], offset: 0 }])
})

test('an old input-major dbc-mlp-v1 file, or one whose size does not match its architecture, is refused', () => {
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 } })
  const v1 = pack({ format: 'dbc-mlp-v1', shape: null, spec, params: new Uint8Array(16) })
  assert.throws(() => decodeModel(v1), /dbc-mlp-v1 model file: its first layer is stored input-major/)
  const short = pack({ format: MODEL_FORMAT, spec, params: new Uint8Array(16) })
  assert.throws(() => decodeModel(short), /has 4 parameters, its architecture 6370/)
})

test.run()
