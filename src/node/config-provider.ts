// The sections of the node config a provider's operator writes: its policy (`provider:`: prices,
// executors, slots, GPUs offered, per-task caps), the container images tasks may name
// (`containers:`) and the trainers it offers (`trainers:`). Validated by zod; config-validate.ts
// turns a failure into a ConfigError naming the key.
import { z } from 'zod'

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'is not an environment variable name' })

/** Defaults of a trainer's `limits` (docs/external-trainer.md explains each). */
export const TRAINER_LIMIT_DEFAULTS = { memoryMiB: 16384, cpuSeconds: 86_400, maxParams: 10_000_000, requestTimeoutMs: 600_000 }
/** A model's state travels in one 64 MiB frame (TRAINING_MAX_FRAME): 16M float32 at most. */
export const TRAINER_MAX_PARAMS = 16_000_000

export const trainerSchema = z.object({
  /** Program and arguments; started once per job with a clean environment in its own directory. */
  command: z.array(z.string().min(1)).min(1).optional(),
  /** Unix socket of a trainer the operator runs himself (instead of command). */
  socket: z.string().min(1).optional(),
  /** Names of the node's environment variables copied into the trainer's (allow-list). */
  env: z.array(envVarName).default([]),
  /** Literal variables set in the trainer's environment. */
  setEnv: z.record(envVarName, z.string()).default({}),
  /** Parent of the per-job directories (default <dataDir>/trainers). */
  workDir: z.string().min(1).optional(),
  /** Built-in architectures this trainer runs in place of the built-in trainer (e.g. [mlp]: a PyTorch MLP). */
  serves: z.array(z.enum(['mlp'])).max(1).optional(),
  limits: z.object({
    /** Address space of the trainer process, MiB; 0 = no limit (CUDA reserves far more than it uses). */
    memoryMiB: z.number().int().min(0).max(16 * 1024 * 1024).default(TRAINER_LIMIT_DEFAULTS.memoryMiB),
    /** CPU seconds the trainer process may use over the whole job; 0 = no limit. */
    cpuSeconds: z.number().int().min(0).default(TRAINER_LIMIT_DEFAULTS.cpuSeconds),
    /** Largest model (parameters) this trainer may announce. */
    maxParams: z.number().int().min(1).max(TRAINER_MAX_PARAMS).default(TRAINER_LIMIT_DEFAULTS.maxParams),
    /** Per-request time limit, ms. */
    requestTimeoutMs: z.number().int().min(100).max(86_400_000).default(TRAINER_LIMIT_DEFAULTS.requestTimeoutMs)
  }).strict().default(TRAINER_LIMIT_DEFAULTS)
}).strict().refine(t => (t.command === undefined) !== (t.socket === undefined), { message: 'needs exactly one of `command` (a program the node starts) or `socket` (a trainer the operator runs)' })

export type TrainerConfig = z.infer<typeof trainerSchema>

export const containersSchema = z.object({
  /** The engine: unix:///run/podman/podman.sock, a socket path or tcp://HOST:PORT; default DOCKER_HOST, then the usual sockets. */
  socket: z.string().min(1).optional(),
  /** The images container tasks may name, by name, each pinned by digest (the image id or a repo digest). */
  images: z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, { message: 'is not an image name (lower-case letters, digits, . _ -; at most 64)' }), z.object({
    image: z.string().min(1),
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, { message: 'is not a digest ("sha256:" and 64 hex digits, as `podman image inspect --format {{.Digest}}` or `docker image inspect --format {{.Id}}` print)' })
  }).strict()).default({}),
  /** Tasks whose manifest asks for a network get a bridge network; false refuses them. */
  network: z.boolean().default(false),
  /** Processes one container may have. */
  pidsLimit: z.number().int().min(16).max(1_000_000).default(256),
  /** Numeric uid:gid tasks run as (a name could mean root inside an image); never 0. */
  user: z.string().regex(/^[1-9]\d*:[1-9]\d*$/, { message: 'must be a numeric non-root uid:gid, e.g. 65534:65534' }).default('65534:65534'),
  /** How GPUs reach containers: nvidia (Docker + NVIDIA Container Toolkit) or cdi (Podman). */
  gpus: z.enum(['nvidia', 'cdi']).default('nvidia'),
  /** Engine disk for one container's log (MiB); default 2 x the task's output cap + 16 MiB (src/compute/executors/docker/settings.ts). */
  logMaxMib: z.number().int().min(1).max(1_048_576).optional()
}).strict()

const price = z.number().min(0).max(1e12)
const EXECUTOR_KEYS = ['wasm', 'process', 'docker'] as const

/** Executors by name, each with its switch and limits; a list (`[wasm, docker]`) enables exactly those, with default limits. */
const executorsSchema = z.union([
  z.array(z.enum(EXECUTOR_KEYS, { message: `is not an executor (one of ${EXECUTOR_KEYS.join(', ')})` })),
  z.object({
    wasm: z.object({
      enabled: z.boolean().optional(),
      /** V8 heap of each wasm worker, MiB (a module's linear memory is capped per task, separately). */
      workerHeapMiB: z.number().int().min(16).max(16384).optional()
    }).strict().optional(),
    /** Shell commands, isolated but sharing the kernel: off unless enabled here (src/compute/README.md). */
    process: z.object({
      enabled: z.boolean().optional(),
      /** Give process tasks the host's network (default false: an empty network namespace). */
      network: z.boolean().optional()
    }).strict().optional(),
    /** Containers from the images in `containers.images` (limits there); default on when it lists one. */
    docker: z.object({ enabled: z.boolean().optional() }).strict().optional()
  }).strict()
])

export const providerSchema = z.object({
  /** Stake the offered GPUs (at least one unit) with this node's key on start; default on for local. */
  autoStake: z.boolean().optional(),
  /** Unsigned work extended to a payer, in task prices (src/jobs/payment-gate.ts); default 1. */
  creditTasks: z.number().min(0).max(1_000_000).optional(),
  /** Shortest escrow dispute window a lease is accepted on, seconds (payment-gate.ts); default 3600. */
  minDisputeWindowS: z.number().int().min(0).max(30 * 86_400).optional(),
  /** Work in other nodes' training jobs (src/training/invite-payment.ts): whether, and the floor of a round's time in its price. */
  training: z.object({
    /** Accept training invitations (default true). */
    enabled: z.boolean().optional(),
    /** A round is priced for at least this long, seconds (default 60): the coordinator's deadline never lowers it. */
    minRoundS: z.number().min(0.01).max(86_400).optional()
  }).strict().optional(),
  /** What this node asks, DBC per CPU-hour (one core slot) and per GPU-hour (one number, or per model with '*'); defaults 0.05 and 1. */
  priceCpuHour: price.optional(),
  priceGpuHour: z.union([price, z.record(z.string().min(1), price)]).optional(),
  executors: executorsSchema.optional(),
  slots: z.object({
    /** Concurrent CPU slots (cores tasks may hold at once); default the core count. */
    cpu: z.number().int().min(1).max(4096).optional(),
    /** GPUs tasks may hold at once: the first N of those offered; default all offered. */
    gpu: z.number().int().min(0).max(1024).optional(),
    /** Memory all running tasks may hold together, MiB; default 3/4 of the machine's. */
    memoryMiB: z.number().int().min(16).max(1 << 30).optional(),
    /** Tasks that may wait for a slot; more are refused. Default 64. */
    queue: z.number().int().min(0).max(100_000).optional()
  }).strict().optional(),
  /** Probed GPUs offered, by nvidia-smi index or model (e.g. [0, 1] or [RTX4090]); default all. Declared `gpus` are always offered. */
  gpusOffered: z.array(z.union([z.number().int().min(0).max(1023), z.string().regex(/^[A-Za-z0-9 _-]{1,64}$/, { message: 'is not a GPU index or model (e.g. 0 or RTX4090)' })])).optional(),
  /** The most one task may take; a lease or task asking more is refused with a code naming the cap. */
  maxTask: z.object({
    /** Memory one task may ask for, MiB; default the memory offered to tasks. */
    memoryMiB: z.number().int().min(1).max(1 << 30).optional(),
    /** Longest wall time of one task, seconds; default 600. */
    wallSeconds: z.number().int().min(1).max(30 * 86_400).optional(),
    /** Largest result one task may return, bytes; default 16 MiB. */
    outputBytes: z.number().int().min(1).max(1 << 30).optional(),
    /** Largest input one task may carry, bytes; default 16 MiB. */
    inputBytes: z.number().int().min(1).max(1 << 30).optional()
  }).strict().optional()
}).strict()

export type ProviderConfig = z.infer<typeof providerSchema>
