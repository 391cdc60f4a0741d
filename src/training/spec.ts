// The training job type: what a manifest's `training:` section holds, validated, with defaults.
// The same schema checks a spec that arrives in a stranger's invitation, so every field is
// bounded, and a spec can never name a program: only a trainer the provider's operator declared.
import { z } from 'zod'
import { ManifestError } from '../errors.js'
import { nearestKey } from '../core/scheduler/manifest.js'
import type { CodecSpec } from '../core/training/codecs.js'
import type { DeadlinePolicy } from '../core/training/deadline.js'

/** A trainer's name: what `model.trainer` picks, and what a node's config declares and advertises. */
export const TRAINER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/
/** Largest encoded spec accepted from the wire (a real one is well under 2 KiB). */
export const MAX_SPEC_BYTES = 16 * 1024

export const SPEC_NAMES_PROGRAM = 'a training spec may not name a command or socket: the provider\'s operator declares trainers; name one with model.trainer'

const codecSchema = z.object({
  kind: z.enum(['fp32', 'fp16', 'int8', 'topk']),
  blockSize: z.number().int().min(8).max(65536).optional(),
  topkFraction: z.number().gt(0).max(1).optional()
}).strict()

const ms = z.number().positive().max(3_600_000)

export const trainingSpecSchema = z.object({
  model: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('mlp'), hidden: z.number().int().min(1).max(4096).default(64) }).strict(),
    // A trainer process outside the node (PyTorch on a GPU), declared by the provider's
    // operator in its config and picked here by name: see docs/external-trainer.md.
    z.object({ kind: z.literal('external'), trainer: z.string().regex(TRAINER_NAME, { message: 'is not a trainer name (lower-case letters, digits, . _ -; at most 64)' }) }).strict()
  ]).default({ kind: 'mlp', hidden: 64 }),
  dataset: z.object({
    name: z.literal('mnist').default('mnist'),
    trainPerClass: z.number().int().min(1).max(800).default(600),
    testPerClass: z.number().int().min(1).max(200).default(200),
    /** How the training set is cut: a seeded shuffle dealt round-robin to the group. */
    sharding: z.literal('shuffle-round-robin').default('shuffle-round-robin')
  }).strict().default({ name: 'mnist', trainPerClass: 600, testPerClass: 200, sharding: 'shuffle-round-robin' }),
  groupSize: z.number().int().min(1).max(64).default(4),
  rounds: z.number().int().min(1).max(100_000).default(40),
  localSteps: z.number().int().min(1).max(10_000).default(10),
  batchSize: z.number().int().min(1).max(4096).default(32),
  learningRate: z.number().gt(0).max(10).default(0.1),
  momentum: z.number().min(0).max(0.999).default(0.9),
  seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
  codec: codecSchema.default({ kind: 'fp32' }),
  /** Evaluate on the test set every N rounds (and always in the last round); 0 = only the last. */
  evalEvery: z.number().int().min(0).max(100_000).default(5),
  deadline: z.object({
    initialMs: ms,
    minMs: ms,
    maxMs: ms,
    factor: z.number().min(1).max(100),
    marginMs: z.number().min(0).max(3_600_000),
    alpha: z.number().gt(0).max(1)
  }).partial().strict().default({}),
  /**
   * Average the optimizer state (momentum) across the members every N rounds (0 = never): it keeps
   * members' momentum from drifting apart, and is what a joiner is handed with the parameters.
   */
  averageOptimizerEvery: z.number().int().min(0).max(100_000).default(5),
  /** Fewer live peers than this fails the job (default: half the group, at least 1). */
  minPeers: z.number().int().min(1).max(64).optional(),
  gpu: z.object({ model: z.string().max(64).optional(), count: z.number().int().min(0).max(1024).default(0), memoryGiB: z.number().min(0).max(100_000).optional() }).strict().optional(),
  /** Most the submitter pays, in tokens. */
  budget: z.number().min(0).optional(),
  /**
   * How this job's frames travel between coordinator and members (the manifest's `routing`, or
   * `dbc job submit --routing`): auto (a connection, else the overlay), direct (connections only),
   * overlay (sealed envelopes through relays only: no connection between the job's peers).
   * Absent: each node's own routing (config routing.mode).
   */
  routing: z.enum(['auto', 'direct', 'overlay']).optional(),
  /**
   * Most the submitter pays one member per hour of round time it measured (tokens; default
   * DEFAULT_TRAINING_MAX_PRICE_PER_HOUR): members price their own receipts, this caps them.
   */
  maxPricePerHour: z.number().min(0).max(1e12).optional()
})

/** A member's round is paid at most this many tokens per hour of measured round time when the spec names no maxPricePerHour. */
export const DEFAULT_TRAINING_MAX_PRICE_PER_HOUR = 10

export type TrainingSpec = z.infer<typeof trainingSpecSchema>
export type TrainingSpecInput = z.input<typeof trainingSpecSchema>

/**
 * Validates a manifest's training section; throws ManifestError naming the bad field. A spec
 * that names a program (`model.command` / `model.socket`) fails with TRAINING_SPEC_NAMES_PROGRAM.
 */
export function parseTrainingSpec (input: unknown): TrainingSpec {
  const model = (input as { model?: unknown } | null | undefined)?.model
  if (model !== null && typeof model === 'object' && ('command' in model || 'socket' in model)) {
    throw new ManifestError('TRAINING_SPEC_NAMES_PROGRAM', SPEC_NAMES_PROGRAM, { hint: 'e.g. model: { kind: external, trainer: torch-mnist }; the provider lists its trainers under `trainers:` in its config' })
  }
  const r = trainingSpecSchema.safeParse(input ?? {})
  if (!r.success) {
    const issue = r.error.issues[0]
    const path = issue?.path.join('.') ?? ''
    throw new ManifestError('TRAINING_SPEC_INVALID', `training.${path}: ${issue?.message ?? 'invalid'}`, { hint: 'see the training job fields in docs/external-trainer.md and the manifest docs' })
  }
  return r.data
}

/**
 * Refuses top-level fields the spec does not know, naming the field meant: a misspelt `round: 5`
 * would otherwise run (and pay for) the default rounds, `learningrate` train at the default rate.
 * Only where a person wrote the spec (a job's submission): an invitation's spec from a newer
 * coordinator may carry fields this version does not know, and is read without them (decodeSpec).
 */
export function checkTrainingFields (input: unknown): void {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return
  const known = Object.keys(trainingSpecSchema.shape)
  const unknown = Object.keys(input).filter(k => !known.includes(k))
  if (unknown.length === 0) return
  const key = unknown[0]
  const near = nearestKey(key, known)
  throw new ManifestError('TRAINING_SPEC_INVALID', `training.${key.replace(/[^\x20-\x7e]/g, '?').slice(0, 64)}: unknown field${near !== undefined ? ` (did you mean ${near}?)` : ''}${unknown.length > 1 ? ` (and ${unknown.length - 1} more unknown)` : ''}`, { hint: `the training fields are ${known.join(', ')} (docs/external-trainer.md)` })
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

/** Decodes a spec from an invitation: bounded in size, then the same checks as a manifest's. */
export function decodeSpec (bytes: Uint8Array): TrainingSpec {
  if (bytes.length > MAX_SPEC_BYTES) throw new ManifestError('TRAINING_SPEC_INVALID', `training spec of ${bytes.length} bytes exceeds ${MAX_SPEC_BYTES}`)
  let raw: unknown
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes))
  } catch (err) {
    throw new ManifestError('TRAINING_SPEC_INVALID', 'training spec is not valid JSON', { cause: err })
  }
  return parseTrainingSpec(raw)
}
