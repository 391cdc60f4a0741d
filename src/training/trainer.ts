// What a training peer needs from a trainer, built-in (the MLP below) or external (a PyTorch
// process speaking docs/external-trainer.md). Parameters travel as one flat Float32Array.
import { createRng, type Rng } from '../core/rng.js'
import { Mlp, mlpParamCount, type MlpShape } from './mlp.js'
import { loadMnist, shardIndices, subset, MNIST_CLASSES, MNIST_PIXELS, type Dataset } from './mnist.js'
import type { TrainingSpec } from './spec.js'

export interface StepResult {
  /** Mean training loss over the steps. */
  loss: number
  /** Samples processed (the weight of this peer in the average). */
  samples: number
}

export interface EvalResult { loss: number, accuracy: number }

export interface Trainer {
  readonly paramCount: number
  /** Whether its steps run on a GPU (only then is a round billed GPU-seconds); default false. */
  readonly usesGpu?: boolean
  getParams: (opts?: { signal?: AbortSignal }) => Promise<Float32Array>
  setParams: (params: Float32Array, opts?: { signal?: AbortSignal }) => Promise<void>
  /** Runs `steps` optimizer steps on this peer's shard. */
  step: (steps: number, opts?: { signal?: AbortSignal }) => Promise<StepResult>
  evaluate: (opts?: { signal?: AbortSignal }) => Promise<EvalResult>
  close: () => Promise<void>
  /** The optimizer state (SGD momentum) as one flat vector; absent: the trainer does not expose it. */
  getOptimizerState?: () => Promise<Float32Array>
  setOptimizerState?: (state: Float32Array) => Promise<void>
}

/** The built-in trainer: MLP 784-H-10 on one shard of the package's MNIST digits. */
export class MlpTrainer implements Trainer {
  readonly model: Mlp
  readonly train: Dataset
  readonly test: Dataset
  private readonly batchSize: number
  private readonly rng: Rng
  private order: Uint32Array
  private cursor: number

  constructor (init: { model: Mlp, train: Dataset, test: Dataset, batchSize: number, seed: number }) {
    this.model = init.model
    this.train = init.train
    this.test = init.test
    this.batchSize = init.batchSize
    this.rng = createRng(init.seed)
    this.order = new Uint32Array(init.train.count)
    this.cursor = init.train.count
  }

  get paramCount (): number { return this.model.paramCount }

  async getParams (): Promise<Float32Array> { return Float32Array.from(this.model.params) }
  async setParams (params: Float32Array): Promise<void> { this.model.setParams(params) }

  async step (steps: number): Promise<StepResult> {
    let loss = 0
    const batch = new Uint32Array(Math.min(this.batchSize, this.train.count))
    for (let s = 0; s < steps; s++) {
      for (let b = 0; b < batch.length; b++) batch[b] = this.nextSample()
      loss += this.model.trainBatch(this.train, batch)
    }
    return { loss: steps > 0 ? loss / steps : 0, samples: steps * batch.length }
  }

  async evaluate (): Promise<EvalResult> { return this.model.evaluate(this.test) }
  async close (): Promise<void> {}
  async getOptimizerState (): Promise<Float32Array> { return this.model.getVelocity() }
  async setOptimizerState (state: Float32Array): Promise<void> { this.model.setVelocity(state) }

  /** Epochs over the shard in a fresh seeded order each time (sampling without replacement). */
  private nextSample (): number {
    if (this.cursor >= this.order.length) {
      for (let i = 0; i < this.order.length; i++) this.order[i] = i
      for (let i = this.order.length - 1; i > 0; i--) {
        const j = this.rng.int(i + 1)
        const t = this.order[i]; this.order[i] = this.order[j]; this.order[j] = t
      }
      this.cursor = 0
    }
    return this.order[this.cursor++]
  }
}

export function mlpShapeOf (spec: TrainingSpec): MlpShape {
  const hidden = spec.model.kind === 'mlp' ? spec.model.hidden : 64
  return { inputs: MNIST_PIXELS, hidden, outputs: MNIST_CLASSES }
}

/**
 * What the built-in trainer costs the node's event loop, in multiply-adds (building: elements written), counted
 * on the dense 784-wide input whatever the data: an evaluation is a forward pass per test sample, a round
 * localSteps × batchSize samples forward and backward (×3), building the model's parameters (each weighs
 * BUILD_PARAM_WEIGHT: seeded init and three arrays) and the data (the train set whole, its shard, the test set).
 */
export interface BuiltinWork { build: number, round: number, evaluation: number }

/** A parameter costs about 8 data elements to build (measured: ~40 ns against ~5 ns). */
export const BUILD_PARAM_WEIGHT = 8

/**
 * Most built-in work per build, round and evaluation. Measured (CPU time, 2-core box under load): ~0.25 ns per
 * counted round multiply-add, ~0.32 per evaluation one, ~5 ns per build element; so 2^28 blocks the loop for
 * ~70-90 ms and 2^25 build units for ~170 ms. The default spec (hidden 64, batch 32, 10 steps, 200 test per class)
 * needs 48.8M per round, 101.6M per evaluation and 6.7M to build.
 */
export const BUILTIN_WORK_BUDGET: Readonly<BuiltinWork> = { build: 2 ** 25, round: 2 ** 28, evaluation: 2 ** 28 }

export function builtinWorkOf (spec: TrainingSpec): BuiltinWork {
  const shape = mlpShapeOf(spec)
  const perSample = shape.inputs * shape.hidden + shape.hidden * shape.outputs
  const { trainPerClass, testPerClass } = spec.dataset
  return {
    build: BUILD_PARAM_WEIGHT * mlpParamCount(shape) + (2 * trainPerClass + testPerClass) * MNIST_CLASSES * MNIST_PIXELS,
    round: 3 * perSample * spec.batchSize * spec.localSteps,
    evaluation: testPerClass * MNIST_CLASSES * perSample
  }
}

/** Why the built-in trainer may not run `spec` on this node (undefined: it fits `budget`). */
export function builtinRefusal (spec: TrainingSpec, budget: Readonly<BuiltinWork> = BUILTIN_WORK_BUDGET): string | undefined {
  const w = builtinWorkOf(spec)
  const h = mlpShapeOf(spec).hidden
  const why = 'the built-in trainer runs on this node\'s event loop'
  if (w.round > budget.round) return `${why}: one round is ${w.round} multiply-adds (3 × (784 + 10) × hidden ${h} × batchSize ${spec.batchSize} × localSteps ${spec.localSteps}), above this node's ${budget.round}; lower hidden, batchSize or localSteps`
  if (w.evaluation > budget.evaluation) return `${why}: one evaluation is ${w.evaluation} multiply-adds (10 × testPerClass ${spec.dataset.testPerClass} × (784 + 10) × hidden ${h}), above this node's ${budget.evaluation}; lower hidden or dataset.testPerClass`
  if (w.build > budget.build) return `${why}: building the model and data is ${w.build} units (${BUILD_PARAM_WEIGHT} per parameter + the data), above this node's ${budget.build}; lower hidden or dataset.trainPerClass`
  return undefined
}

/** What a member trains and evaluates on: its shard of the training set, and the whole test set. */
export interface TrainingData { train: Dataset, test: Dataset, classes: number }

/**
 * Shard `rank` of `shards` of the spec's data set (a seeded shuffle dealt round-robin), and the
 * test set: the same for the built-in trainer and for the data sent to an external one.
 */
export function trainingDataOf (spec: TrainingSpec, rank: number, shards: number): TrainingData {
  const { train, test } = loadMnist({ trainPerClass: spec.dataset.trainPerClass, testPerClass: spec.dataset.testPerClass })
  const shard = shards > 1 ? subset(train, shardIndices(train.count, shards, rank, spec.seed)) : train
  return { train: shard, test, classes: MNIST_CLASSES }
}

/** The spec's MLP as every member starts it (seeded): the parameters an external MLP trainer is given. */
export function initialMlp (spec: TrainingSpec): Mlp {
  return new Mlp(mlpShapeOf(spec), { learningRate: spec.learningRate, momentum: spec.momentum, seed: spec.seed })
}

/**
 * The built-in trainer for shard `rank` of `shards`. Every peer initialises the model from the
 * job's seed (identical start), and draws batches from its own stream (seed + rank).
 */
export function createMlpTrainer (spec: TrainingSpec, rank: number, shards: number): MlpTrainer {
  const { train, test } = trainingDataOf(spec, rank, shards)
  return new MlpTrainer({ model: initialMlp(spec), train, test, batchSize: spec.batchSize, seed: (spec.seed * 7919 + rank + 1) >>> 0 })
}
