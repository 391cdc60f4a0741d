// The training job type: what a manifest's `training:` section holds, validated, with defaults.
import { z } from 'zod'
import { ManifestError } from '../errors.js'
import type { CodecSpec } from '../core/training/codecs.js'
import type { DeadlinePolicy } from '../core/training/deadline.js'

const codecSchema = z.object({
  kind: z.enum(['fp32', 'fp16', 'int8', 'topk']),
  blockSize: z.number().int().min(8).max(65536).optional(),
  topkFraction: z.number().gt(0).max(1).optional()
})

export const trainingSpecSchema = z.object({
  model: z.union([
    z.object({ kind: z.literal('mlp'), hidden: z.number().int().min(1).max(4096).default(64) }),
    // A trainer process outside the node (PyTorch on a GPU): see docs/external-trainer.md.
    z.object({ kind: z.literal('external'), command: z.array(z.string()).min(1).optional(), socket: z.string().optional() })
  ]).default({ kind: 'mlp', hidden: 64 }),
  dataset: z.object({
    name: z.literal('mnist').default('mnist'),
    trainPerClass: z.number().int().min(1).max(800).default(600),
    testPerClass: z.number().int().min(1).max(200).default(200),
    /** How the training set is cut: a seeded shuffle dealt round-robin to the group. */
    sharding: z.literal('shuffle-round-robin').default('shuffle-round-robin')
  }).default({ name: 'mnist', trainPerClass: 600, testPerClass: 200, sharding: 'shuffle-round-robin' }),
  groupSize: z.number().int().min(1).max(64).default(4),
  rounds: z.number().int().min(1).max(100_000).default(40),
  localSteps: z.number().int().min(1).max(100_000).default(10),
  batchSize: z.number().int().min(1).max(65536).default(32),
  learningRate: z.number().gt(0).max(10).default(0.1),
  momentum: z.number().min(0).max(0.999).default(0.9),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  codec: codecSchema.default({ kind: 'fp32' }),
  /** Evaluate on the test set every N rounds (and always in the last round); 0 = only the last. */
  evalEvery: z.number().int().min(0).default(5),
  deadline: z.object({
    initialMs: z.number().positive(),
    minMs: z.number().positive(),
    maxMs: z.number().positive(),
    factor: z.number().min(1),
    marginMs: z.number().min(0),
    alpha: z.number().gt(0).max(1)
  }).partial().default({}),
  /** Fewer live peers than this fails the job (default: half the group, at least 1). */
  minPeers: z.number().int().min(1).optional(),
  gpu: z.object({ model: z.string().optional(), count: z.number().int().min(0).default(0), memoryGiB: z.number().min(0).optional() }).optional(),
  /** Most the submitter pays, in tokens. */
  budget: z.number().min(0).optional()
})

export type TrainingSpec = z.infer<typeof trainingSpecSchema>
export type TrainingSpecInput = z.input<typeof trainingSpecSchema>

/** Validates a manifest's training section; throws ManifestError naming the bad field. */
export function parseTrainingSpec (input: unknown): TrainingSpec {
  const r = trainingSpecSchema.safeParse(input ?? {})
  if (!r.success) {
    const issue = r.error.issues[0]
    const path = issue?.path.join('.') ?? ''
    throw new ManifestError('TRAINING_SPEC_INVALID', `training.${path}: ${issue?.message ?? 'invalid'}`, { hint: 'see the training job fields in docs/external-trainer.md and the manifest docs' })
  }
  return r.data
}

export function codecOf (spec: TrainingSpec): CodecSpec {
  return spec.codec
}

export function deadlineOf (spec: TrainingSpec): Partial<DeadlinePolicy> {
  return spec.deadline
}

export function encodeSpec (spec: TrainingSpec): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(spec))
}

export function decodeSpec (bytes: Uint8Array): TrainingSpec {
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new ManifestError('TRAINING_SPEC_INVALID', 'training spec is not valid JSON', { cause: err })
  }
  return parseTrainingSpec(raw)
}
