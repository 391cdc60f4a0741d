// The final model of a training job as a file (`dbc job results`): msgpack with the architecture,
// every tensor's name and shape, the spec and the float32 parameters.
import { pack, unpack } from 'msgpackr'
import { parseTrainingSpec, type TrainingSpec } from './spec.js'
import { mlpShapeOf } from './trainer.js'
import { mlpLayout, type MlpTensor } from './mlp.js'
import { TrainingError, bytesToFloats } from './worker-types.js'

/** v2: PyTorch's parameter layout, with the architecture and every tensor's name and shape (v1 was input-major). */
export const MODEL_FORMAT = 'dbc-model-v2'

/**
 * The final model as msgpack: { format, architecture, shape, tensors: [{ name, shape, offset }],
 * spec, params (float32 LE bytes) }. For the built-in MLP, architecture 'mlp', shape { inputs,
 * hidden, outputs } and the tensors of torch's state_dict for Sequential(Linear, ReLU, Linear)
 * (docs/external-trainer.md loads it in a few lines); for an operator's trainer, architecture
 * 'external', shape { trainer, params } and one flat tensor in the trainer's own order.
 */
export function encodeModel (spec: TrainingSpec, params: Float32Array): Uint8Array {
  const bytes = new Uint8Array(params.buffer, params.byteOffset, params.byteLength)
  if (spec.model.kind === 'mlp') {
    const shape = mlpShapeOf(spec)
    return pack({ format: MODEL_FORMAT, architecture: 'mlp', shape, tensors: mlpLayout(shape), spec, params: bytes })
  }
  return pack({ format: MODEL_FORMAT, architecture: 'external', shape: { trainer: spec.model.trainer, params: params.length }, tensors: [{ name: 'params', shape: [params.length], offset: 0 }], spec, params: bytes })
}

export interface DecodedModel { spec: TrainingSpec, params: Float32Array, architecture: 'mlp' | 'external', tensors: MlpTensor[] }

export function decodeModel (bytes: Uint8Array): DecodedModel {
  const m = unpack(bytes) as { format?: string, architecture?: string, spec?: unknown, params?: Uint8Array, tensors?: MlpTensor[] }
  if (m?.format === 'dbc-mlp-v1') throw new TrainingError('BAD_MODEL', 'a dbc-mlp-v1 model file: its first layer is stored input-major, not in the layout this version reads', { hint: 'train it again with this version, or transpose its first-layer weights by hand' })
  if (m?.format !== MODEL_FORMAT || !(m.params instanceof Uint8Array)) throw new TrainingError('BAD_MODEL', `not a ${MODEL_FORMAT} model file`)
  const spec = parseTrainingSpec(m.spec)
  const params = bytesToFloats(m.params)
  const architecture = spec.model.kind === 'mlp' ? 'mlp' : 'external'
  const tensors = architecture === 'mlp' ? mlpLayout(mlpShapeOf(spec)) : [{ name: 'params', shape: [params.length], offset: 0 }]
  const last = tensors[tensors.length - 1]
  if (last.offset + last.shape.reduce((a, b) => a * b, 1) !== params.length) throw new TrainingError('BAD_MODEL', `the model file has ${params.length} parameters, its architecture ${last.offset + last.shape.reduce((a, b) => a * b, 1)}`)
  return { spec, params, architecture, tensors }
}
