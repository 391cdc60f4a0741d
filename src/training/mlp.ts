// A two-layer perceptron on Float32Array: inputs → ReLU hidden → softmax, cross-entropy loss,
// SGD with momentum. All weights live in ONE flat vector so the all-reduce averages a single
// array. The layout is PyTorch's (MLP_LAYOUT), so a PyTorch member and a built-in one average
// the same numbers: torch.nn.utils.parameters_to_vector of
// Sequential(Linear(inputs, hidden), ReLU(), Linear(hidden, outputs)), weights [out][in]:
//   W1[hidden][inputs] | b1[hidden] | W2[outputs][hidden] | b2[outputs]
// MNIST rows are ~80% zeros: the forward pass and dW1 only visit non-zero pixels.
import { createRng } from '../core/rng.js'
import type { Dataset } from './mnist.js'

export interface MlpShape { inputs: number, hidden: number, outputs: number }

export interface MlpOptions {
  learningRate?: number
  momentum?: number
  seed?: number
}

export function mlpParamCount (s: MlpShape): number {
  return s.inputs * s.hidden + s.hidden + s.hidden * s.outputs + s.outputs
}

/** One tensor of the flat vector: its PyTorch state_dict name, shape and first index. */
export interface MlpTensor { name: string, shape: number[], offset: number }

/**
 * The flat vector's tensors in order, named as in the state_dict of
 * `torch.nn.Sequential(Linear(inputs, hidden), ReLU(), Linear(hidden, outputs))`.
 */
export function mlpLayout (s: MlpShape): MlpTensor[] {
  const w1 = s.hidden * s.inputs
  const w2 = s.outputs * s.hidden
  return [
    { name: '0.weight', shape: [s.hidden, s.inputs], offset: 0 },
    { name: '0.bias', shape: [s.hidden], offset: w1 },
    { name: '2.weight', shape: [s.outputs, s.hidden], offset: w1 + s.hidden },
    { name: '2.bias', shape: [s.outputs], offset: w1 + s.hidden + w2 }
  ]
}

export class Mlp {
  readonly shape: MlpShape
  readonly params: Float32Array
  learningRate: number
  momentum: number
  private readonly velocity: Float32Array
  private readonly grad: Float32Array
  private readonly oW1: number
  private readonly oB1: number
  private readonly oW2: number
  private readonly oB2: number
  // Scratch buffers reused across samples (no per-sample allocation).
  private readonly h: Float32Array
  private readonly dh: Float32Array
  private readonly p: Float32Array
  private readonly nzValue: Float32Array

  constructor (shape: MlpShape, opts: MlpOptions = {}) {
    this.shape = shape
    this.learningRate = opts.learningRate ?? 0.05
    this.momentum = opts.momentum ?? 0.9
    const n = mlpParamCount(shape)
    this.params = new Float32Array(n)
    this.velocity = new Float32Array(n)
    this.grad = new Float32Array(n)
    this.oW1 = 0
    this.oB1 = shape.inputs * shape.hidden
    this.oW2 = this.oB1 + shape.hidden
    this.oB2 = this.oW2 + shape.hidden * shape.outputs
    this.h = new Float32Array(shape.hidden)
    this.dh = new Float32Array(shape.hidden)
    this.p = new Float32Array(shape.outputs)
    this.nzValue = new Float32Array(shape.inputs)
    // He-uniform init from the seeded Rng: every peer with the same seed starts identical. The
    // draws go input-major (as before the layout followed PyTorch) so a seed keeps its model.
    const { inputs: I, hidden: H, outputs: O } = shape
    const rng = createRng(opts.seed ?? 1)
    const l1 = Math.sqrt(6 / I)
    const l2 = Math.sqrt(6 / H)
    for (let f = 0; f < I; f++) for (let k = 0; k < H; k++) this.params[this.oW1 + k * I + f] = (rng.next() * 2 - 1) * l1
    for (let k = 0; k < H; k++) for (let o = 0; o < O; o++) this.params[this.oW2 + o * H + k] = (rng.next() * 2 - 1) * l2
  }

  get paramCount (): number { return this.params.length }

  setParams (values: Float32Array): void {
    if (values.length !== this.params.length) throw new RangeError(`mlp: ${values.length} parameters given, model has ${this.params.length}`)
    this.params.set(values)
  }

  /** A copy of the momentum (velocity) vector, in the parameters' layout. */
  getVelocity (): Float32Array { return Float32Array.from(this.velocity) }

  setVelocity (values: Float32Array): void {
    if (values.length !== this.velocity.length) throw new RangeError(`mlp: ${values.length} momentum values given, model has ${this.velocity.length}`)
    this.velocity.set(values)
  }

  /** Forward pass of sample `i`; leaves hidden activations in h and probabilities in p; returns loss. */
  private forward (data: Dataset, i: number): number {
    const { inputs: I, hidden: H, outputs: O } = this.shape
    const w = this.params
    const h = this.h
    const p = this.p
    const z0 = data.nzStart[i]
    const nz = data.nzStart[i + 1] - z0
    const fs = data.nzIndex.subarray(z0, z0 + nz)
    const xs = this.nzValue
    const row = i * I
    for (let z = 0; z < nz; z++) xs[z] = data.inputs[row + fs[z]]
    for (let k = 0; k < H; k++) {
      const base = this.oW1 + k * I
      let acc = w[this.oB1 + k]
      for (let z = 0; z < nz; z++) acc += w[base + fs[z]] * xs[z]
      h[k] = acc > 0 ? acc : 0
    }
    let max = -Infinity
    for (let o = 0; o < O; o++) {
      const base = this.oW2 + o * H
      let s = w[this.oB2 + o]
      for (let k = 0; k < H; k++) s += h[k] * w[base + k]
      p[o] = s
      if (s > max) max = s
    }
    let sum = 0
    for (let o = 0; o < O; o++) { p[o] = Math.exp(p[o] - max); sum += p[o] }
    for (let o = 0; o < O; o++) p[o] /= sum
    return -Math.log(Math.max(p[data.labels[i]], 1e-12))
  }

  /** One SGD step on the samples at `batch`; returns the mean loss before the step. */
  trainBatch (data: Dataset, batch: ArrayLike<number>): number {
    const { inputs: I, hidden: H, outputs: O } = this.shape
    const w = this.params
    const g = this.grad
    g.fill(0)
    let loss = 0
    for (let b = 0; b < batch.length; b++) {
      const i = batch[b]
      loss += this.forward(data, i)
      const p = this.p
      const h = this.h
      const dh = this.dh
      p[data.labels[i]] -= 1 // dL/dlogits = p − onehot
      dh.fill(0)
      for (let o = 0; o < O; o++) {
        const po = p[o]
        const base = this.oW2 + o * H
        g[this.oB2 + o] += po
        for (let k = 0; k < H; k++) {
          if (h[k] === 0) continue // ReLU gate: no gradient flows through an inactive unit
          g[base + k] += h[k] * po
          dh[k] += w[base + k] * po
        }
      }
      // forward() left sample i's non-zero pixels in nzValue
      const z0 = data.nzStart[i]
      const nz = data.nzStart[i + 1] - z0
      const fs = data.nzIndex.subarray(z0, z0 + nz)
      const xs = this.nzValue
      for (let k = 0; k < H; k++) {
        const d = dh[k]
        if (d === 0) continue
        g[this.oB1 + k] += d
        const base = this.oW1 + k * I
        for (let z = 0; z < nz; z++) g[base + fs[z]] += d * xs[z]
      }
    }
    const scale = 1 / batch.length
    const lr = this.learningRate
    const mu = this.momentum
    const vel = this.velocity
    for (let j = 0; j < w.length; j++) {
      vel[j] = mu * vel[j] + g[j] * scale
      w[j] -= lr * vel[j]
    }
    return loss / batch.length
  }

  /** Mean loss and accuracy over `data` (or its first `limit` samples). */
  evaluate (data: Dataset, limit = data.count): { loss: number, accuracy: number } {
    const n = Math.min(limit, data.count)
    let loss = 0
    let correct = 0
    for (let i = 0; i < n; i++) {
      loss += this.forward(data, i)
      let best = 0
      for (let o = 1; o < this.shape.outputs; o++) if (this.p[o] > this.p[best]) best = o
      if (best === data.labels[i]) correct++
    }
    return { loss: n === 0 ? 0 : loss / n, accuracy: n === 0 ? 0 : correct / n }
  }

  /** The loss of one batch without a step (for gradient checks). */
  batchLoss (data: Dataset, batch: ArrayLike<number>): number {
    let loss = 0
    for (let b = 0; b < batch.length; b++) loss += this.forward(data, batch[b])
    return loss / batch.length
  }

  /** Gradient of the mean batch loss (for gradient checks; does not step). */
  batchGradient (data: Dataset, batch: ArrayLike<number>): Float32Array {
    const saved = Float32Array.from(this.params)
    const savedV = Float32Array.from(this.velocity)
    const lr = this.learningRate
    const mu = this.momentum
    this.learningRate = 1
    this.momentum = 0
    this.velocity.fill(0)
    this.trainBatch(data, batch)
    const grad = new Float32Array(this.params.length)
    for (let j = 0; j < grad.length; j++) grad[j] = saved[j] - this.params[j]
    this.params.set(saved)
    this.velocity.set(savedV)
    this.learningRate = lr
    this.momentum = mu
    return grad
  }
}
