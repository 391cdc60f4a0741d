// Node configuration from three sources, later ones winning: the config file
// (<dataDir>/config.yaml or --config FILE, YAML or JSON), the environment (DBC_*), and flags.
// Every value is validated; a bad one is a ConfigError naming the key and the problem.
import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from '../errors.js'
import { TRAINER_NAME } from '../training/spec.js'
import { NETWORK_NAMES } from '../chain/networks.js'
import { parseChainSettings } from '../chain/settings.js'
import { parseListen } from './metrics/listen.js'

export const DEFAULT_DATA_DIR = join(homedir(), '.dbc')

const multiaddrString = z.string().refine(s => {
  try { multiaddr(s); return true } catch { return false }
}, { message: 'is not a valid multiaddr (example: /ip4/0.0.0.0/tcp/4001)' })

const bootstrapAddr = multiaddrString.refine(s => s.includes('/p2p/'), {
  message: 'must end in /p2p/PEER_ID so the node can check whom it reached'
})

const latLon = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/

const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'is not an environment variable name' })

/** Defaults of a trainer's `limits` (docs/external-trainer.md explains each). */
export const TRAINER_LIMIT_DEFAULTS = { memoryMiB: 16384, cpuSeconds: 86_400, maxParams: 10_000_000, requestTimeoutMs: 600_000 }
/** A model's state travels in one 64 MiB frame (TRAINING_MAX_FRAME): 16M float32 at most. */
export const TRAINER_MAX_PARAMS = 16_000_000

const trainerSchema = z.object({
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

const containersSchema = z.object({
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
  gpus: z.enum(['nvidia', 'cdi']).default('nvidia')
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

const providerSchema = z.object({
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

export const configSchema = z.object({
  dataDir: z.string().min(1),
  listen: z.array(multiaddrString).min(1),
  announce: z.array(multiaddrString),
  bootstrap: z.array(bootstrapAddr),
  /** "LAT,LON" or a city name ("Tokyo", "Paris, FR"); empty = undeclared. */
  location: z.string().refine(s => {
    const m = s.match(latLon)
    if (m == null) return true // a city name: resolved at start
    const lat = Number(m[1]); const lon = Number(m[2])
    return lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180
  }, { message: 'latitude must be within -90..90 and longitude within -180..180' }),
  /** Declared GPUs for test networks, e.g. "2xRTX4090:24GiB". Marked as declared, never as probed. */
  gpus: z.string(),
  api: z.object({
    /** Control API port on 127.0.0.1; 0 picks a free one (written to <dataDir>/api.json). */
    port: z.number().int().min(0).max(65535)
  }).strict(),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    /** <dataDir>/logs/node.N.log rolls over to a new file past this size (MiB; node.log links the newest). */
    maxSizeMiB: z.number().min(0.01).max(10240),
    /** Log files kept, the newest included; older ones are deleted. */
    files: z.number().int().min(1).max(1000)
  }).strict(),
  dht: z.object({
    /** Answer DHT queries (reachable nodes); false = client mode. */
    server: z.boolean(),
    /** Keep private/loopback addresses in DHT records (LANs, local test networks). */
    keepPrivateAddresses: z.boolean()
  }).strict(),
  /** Ping connections periodically and drop dead ones. */
  connectionMonitor: z.boolean(),
  overlay: z.object({
    /** How often to ping one peer of the view for Vivaldi coordinates (ms; 0 = never). */
    vivaldiIntervalMs: z.number().int().min(0).max(600_000)
  }).strict(),
  nat: z.object({
    /** Relay connections for peers behind NAT (circuit-relay-v2). */
    relayServer: z.boolean(),
    /** This node is behind a NAT: be reachable through a relay reservation (and hole punching). */
    behindNat: z.boolean(),
    /** Relays a node behind NAT holds a reservation on (2: survives one relay's loss; src/net/host.ts). */
    relayReservations: z.number().int().min(1).max(4).optional(),
    /** With behindNat on one host (demos, tests): accept only relayed connections and dial directly only the bootstrap peers (src/net/routes/private-peers.ts). */
    strict: z.boolean().optional()
  }).strict(),
  /**
   * How this node's jobs reach providers (src/net/routes) and its training peers: mode 'auto' (a
   * direct connection, else a relayed one, else sealed envelopes through the overlay), 'direct'
   * (connections only, never the overlay; a job's own `routing` may still allow it) or 'overlay'
   * (always the overlay, node-wide: no connection with providers; a job cannot weaken it);
   * k: paths per envelope (default 2). `dbc node start --routing MODE` sets the mode.
   */
  routing: z.object({
    mode: z.enum(['auto', 'direct', 'overlay']),
    k: z.number().int().min(1).max(4).optional()
  }).strict().optional(),
  /**
   * The network whose chain this node settles on (src/chain/networks.ts): sandbox (an EVM in
   * this node, single node only), local (anvil, `dbc chain serve`), dbc-testnet, dbc-mainnet.
   * Unset: the sandbox for a lone node; a node with bootstrap peers must name one.
   */
  network: z.enum(NETWORK_NAMES, { message: `is not a network (one of ${NETWORK_NAMES.join(', ')})` }).optional(),
  /** The chain (src/chain/settings.ts): rpc, chainId, contract, keyFile, confirmations... */
  chain: z.record(z.string(), z.unknown()),
  /** This node as a provider: its whole policy (prices, executors, slots, GPUs offered, per-task caps). */
  provider: providerSchema.optional(),
  /** The inbound guard's gate for new identities per address (src/net/guard; defaults there, with the reasoning). */
  /** Prometheus /metrics, /healthz and /readyz on their own address, without a token (src/node/metrics); off when unset. */
  metrics: z.object({
    /** "PORT" (on 127.0.0.1) or "HOST:PORT"; port 0 picks a free one (shown in `dbc node status`). */
    listen: z.string().refine(s => parseListen(s) !== undefined, { message: 'is not an address to listen on (PORT or HOST:PORT, e.g. 127.0.0.1:9464)' })
  }).strict().optional(),
  guard: z.object({
    /** New identities one address may introduce at once. */
    newIdentityBurst: z.number().int().min(0).max(1_000_000).optional(),
    /** One more new identity per address per this many ms. */
    newIdentityRefillMs: z.number().int().min(1).max(86_400_000).optional()
  }).strict().optional(),
  /** Container tasks (src/compute/executors/docker/settings.ts): the engine, the images tasks may name, limits. */
  containers: containersSchema.optional(),
  /** The trainers this node offers, by name: the only programs a training job may run here. */
  trainers: z.record(z.string().regex(TRAINER_NAME, { message: 'is not a trainer name (lower-case letters, digits, . _ -; at most 64)' }), trainerSchema)
}).strict()

export type NodeConfig = z.infer<typeof configSchema>

export function defaultConfig (dataDir = DEFAULT_DATA_DIR): NodeConfig {
  return {
    dataDir,
    listen: ['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001'],
    announce: [],
    bootstrap: [],
    location: '',
    gpus: '',
    api: { port: 0 },
    log: { level: 'info', maxSizeMiB: 10, files: 5 },
    dht: { server: true, keepPrivateAddresses: true },
    connectionMonitor: true,
    overlay: { vivaldiIntervalMs: 2000 },
    nat: { relayServer: true, behindNat: false },
    network: undefined,
    chain: {},
    provider: undefined,
    metrics: undefined,
    trainers: {}
  }
}

/** A partial config: what one source sets. Nested objects are merged key by key. */
export type ConfigLayer = Record<string, unknown>

/** Environment variables and the config key each one sets. Lists are comma-separated. */
export const ENV_KEYS: Record<string, { key: string, kind: 'string' | 'list' | 'int' | 'number' | 'bool' }> = {
  DBC_DATA_DIR: { key: 'dataDir', kind: 'string' },
  DBC_LISTEN: { key: 'listen', kind: 'list' },
  DBC_ANNOUNCE: { key: 'announce', kind: 'list' },
  DBC_BOOTSTRAP: { key: 'bootstrap', kind: 'list' },
  DBC_LOCATION: { key: 'location', kind: 'string' },
  DBC_GPUS: { key: 'gpus', kind: 'string' },
  DBC_API_PORT: { key: 'api.port', kind: 'int' },
  DBC_LOG_LEVEL: { key: 'log.level', kind: 'string' },
  DBC_LOG_MAX_SIZE_MIB: { key: 'log.maxSizeMiB', kind: 'number' },
  DBC_LOG_FILES: { key: 'log.files', kind: 'int' },
  DBC_DHT_SERVER: { key: 'dht.server', kind: 'bool' },
  DBC_CONNECTION_MONITOR: { key: 'connectionMonitor', kind: 'bool' },
  DBC_VIVALDI_INTERVAL_MS: { key: 'overlay.vivaldiIntervalMs', kind: 'int' },
  DBC_BEHIND_NAT: { key: 'nat.behindNat', kind: 'bool' },
  DBC_RELAY_SERVER: { key: 'nat.relayServer', kind: 'bool' },
  DBC_RELAY_RESERVATIONS: { key: 'nat.relayReservations', kind: 'int' },
  DBC_ROUTING_MODE: { key: 'routing.mode', kind: 'string' },
  DBC_NETWORK: { key: 'network', kind: 'string' },
  DBC_CHAIN_RPC: { key: 'chain.rpc', kind: 'string' },
  DBC_CHAIN_KIND: { key: 'chain.kind', kind: 'string' },
  DBC_CHAIN_URL: { key: 'chain.url', kind: 'string' },
  DBC_CHAIN_ID: { key: 'chain.chainId', kind: 'int' },
  DBC_CHAIN_KEY_FILE: { key: 'chain.keyFile', kind: 'string' },
  DBC_AUTO_STAKE: { key: 'provider.autoStake', kind: 'bool' },
  DBC_CREDIT_TASKS: { key: 'provider.creditTasks', kind: 'int' },
  DBC_MIN_DISPUTE_WINDOW_S: { key: 'provider.minDisputeWindowS', kind: 'int' },
  DBC_PRICE_CPU_HOUR: { key: 'provider.priceCpuHour', kind: 'number' },
  DBC_PRICE_GPU_HOUR: { key: 'provider.priceGpuHour', kind: 'number' },
  DBC_EXECUTORS: { key: 'provider.executors', kind: 'list' },
  DBC_CPU_SLOTS: { key: 'provider.slots.cpu', kind: 'int' },
  DBC_GPU_SLOTS: { key: 'provider.slots.gpu', kind: 'int' },
  DBC_SLOTS_MEMORY_MIB: { key: 'provider.slots.memoryMiB', kind: 'int' },
  DBC_GPUS_OFFERED: { key: 'provider.gpusOffered', kind: 'list' },
  DBC_MAX_TASK_MEMORY_MIB: { key: 'provider.maxTask.memoryMiB', kind: 'int' },
  DBC_MAX_TASK_SECONDS: { key: 'provider.maxTask.wallSeconds', kind: 'int' },
  DBC_MAX_TASK_OUTPUT_BYTES: { key: 'provider.maxTask.outputBytes', kind: 'int' },
  DBC_MAX_TASK_INPUT_BYTES: { key: 'provider.maxTask.inputBytes', kind: 'int' },
  DBC_DOCKER_SOCKET: { key: 'containers.socket', kind: 'string' },
  DBC_GUARD_NEW_IDENTITY_BURST: { key: 'guard.newIdentityBurst', kind: 'int' },
  DBC_GUARD_NEW_IDENTITY_REFILL_MS: { key: 'guard.newIdentityRefillMs', kind: 'int' },
  DBC_METRICS_LISTEN: { key: 'metrics.listen', kind: 'string' }
}

function setPath (obj: ConfigLayer, path: string, value: unknown): void {
  const parts = path.split('.')
  let cur = obj
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {}
    cur = cur[p] as ConfigLayer
  }
  cur[parts[parts.length - 1]] = value
}

export function envLayer (env: NodeJS.ProcessEnv): ConfigLayer {
  const layer: ConfigLayer = {}
  for (const [name, { key, kind }] of Object.entries(ENV_KEYS)) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    let value: unknown = raw
    if (kind === 'list') value = raw.split(',').map(s => s.trim()).filter(s => s !== '')
    if (kind === 'int') {
      value = Number(raw)
      if (!Number.isInteger(value)) throw new ConfigError(key, `${name}=${raw} is not an integer`, { hint: `set ${name} to a whole number` })
    }
    if (kind === 'number') {
      value = Number(raw)
      if (!Number.isFinite(value)) throw new ConfigError(key, `${name}=${raw} is not a number`, { hint: `set ${name} to a decimal number, e.g. 0.05` })
    }
    if (kind === 'bool') {
      if (!['true', 'false', '1', '0'].includes(raw)) throw new ConfigError(key, `${name}=${raw} is not a boolean`, { hint: `set ${name} to true or false` })
      value = raw === 'true' || raw === '1'
    }
    setPath(layer, key, value)
  }
  return layer
}

export function fileLayer (file: string, required: boolean): ConfigLayer {
  if (!existsSync(file)) {
    if (required) throw new ConfigError('config', `config file ${file} does not exist`, { hint: 'check the --config path' })
    return {}
  }
  let parsed: unknown
  try {
    parsed = parseYaml(readFileSync(file, 'utf8')) // YAML is a superset of JSON
  } catch (err) {
    throw new ConfigError('config', `config file ${file} is not valid YAML/JSON: ${(err as Error).message}`, { hint: 'fix the syntax error it names' })
  }
  if (parsed == null) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('config', `config file ${file} must hold a mapping of keys to values`)
  }
  return parsed as ConfigLayer
}

function merge (base: ConfigLayer, over: ConfigLayer): ConfigLayer {
  const out: ConfigLayer = { ...base }
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue
    const b = out[k]
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object' && !Array.isArray(b)) {
      out[k] = merge(b as ConfigLayer, v as ConfigLayer)
    } else {
      out[k] = v
    }
  }
  return out
}

export function validateConfig (raw: ConfigLayer): NodeConfig {
  const r = configSchema.safeParse(raw)
  if (r.success) {
    // The chain is checked here (names the bad chain.* key), before anything starts: a node
    // that joins others with no network named is refused (src/chain/settings.ts).
    parseChainSettings(r.data.chain, { network: r.data.network, joining: r.data.bootstrap.length > 0 })
    return { ...r.data, dataDir: resolve(r.data.dataDir) }
  }
  const issue = innermost(r.error.issues[0])
  const key = issue.path.length > 0 ? issue.path.join('.') : 'config'
  let problem = issue.message
  if (issue.code === 'unrecognized_keys') {
    return failUnknown(issue.keys, issue.path)
  }
  if (issue.code === 'invalid_key' && issue.path[0] === 'trainers') {
    throw new ConfigError(key, 'is not a trainer name', { hint: 'name trainers with lower-case letters, digits, ".", "_" and "-" (at most 64), e.g. torch-mnist' })
  }
  if (issue.code === 'invalid_key' && issue.path[0] === 'containers') {
    throw new ConfigError(key, 'is not an image name', { hint: 'name images with lower-case letters, digits, ".", "_" and "-" (at most 64), e.g. pytorch-cuda' })
  }
  if (issue.code === 'invalid_type') problem = `expected ${issue.expected}, got ${describe(valueAt(raw, issue.path))}`
  else if (!/^(is|must|latitude)/.test(problem)) problem = `${problem} (got ${describe(valueAt(raw, issue.path))})`
  else problem = `${JSON.stringify(valueAt(raw, issue.path))} ${problem}`
  throw new ConfigError(key, problem, { hint: 'fix it in the config file, the DBC_* environment variable or the flag that sets it' })
}

/** Known keys of provider.* and of its nested sections (for "is not a known setting" hints). */
const PROVIDER_KEYS: Record<string, string> = {
  autoStake: '', creditTasks: '', minDisputeWindowS: '', priceCpuHour: '', priceGpuHour: '', gpusOffered: '',
  executors: 'wasm, process, docker (each { enabled, ...limits }), or a list of names',
  slots: 'cpu, gpu, memoryMiB, queue',
  maxTask: 'memoryMiB, wallSeconds, outputBytes, inputBytes',
  training: 'enabled, minRoundS'
}
const EXECUTOR_LIMIT_KEYS: Record<string, string> = { wasm: 'enabled, workerHeapMiB', process: 'enabled, network', docker: 'enabled' }

type Issue = z.core.$ZodIssue

/** A union's issue names the branch of the input's own type (a list of executors, or their object), with the full path. */
function innermost (issue: Issue): Issue {
  if (issue.code !== 'invalid_union') return issue
  const branch = issue.errors.find(b => !b.some(i => i.code === 'invalid_type' && i.path.length === 0)) ?? issue.errors[0]
  const inner = branch?.[0]
  return inner === undefined ? issue : innermost({ ...inner, path: [...issue.path, ...inner.path] } as Issue)
}

function failUnknown (keys: string[], path: PropertyKey[]): never {
  const prefix = path.length > 0 ? path.join('.') + '.' : ''
  // what people reach for first: the provider policy has its own section
  if (path.length === 0 && ['compute', 'executors', 'prices', 'slots', 'policy'].includes(keys[0])) {
    throw new ConfigError(keys[0], 'is not a known setting', { hint: 'the provider policy is the `provider:` section: priceCpuHour, priceGpuHour, executors, slots, gpusOffered, maxTask (README, Configuration)' })
  }
  const known = path[0] === 'trainers'
    ? (path.length > 2 ? 'memoryMiB, cpuSeconds, maxParams, requestTimeoutMs' : 'command, socket, env, setEnv, workDir, limits')
    : path[0] === 'provider' ? (path[1] === 'executors' && path.length > 2 ? EXECUTOR_LIMIT_KEYS[String(path[2])] : PROVIDER_KEYS[String(path[1])] ?? Object.keys(PROVIDER_KEYS).join(', '))
      : path[0] === 'metrics' ? 'listen'
      : path[0] === 'containers' ? (path.length > 2 ? 'image, digest' : 'socket, images, network, pidsLimit, user, gpus')
        : [...Object.keys(defaultConfig()), 'containers'].join(', ')
  throw new ConfigError(prefix + keys[0], 'is not a known setting', { hint: `known settings: ${known}` })
}

function valueAt (obj: unknown, path: PropertyKey[]): unknown {
  let cur = obj
  for (const p of path) cur = (cur as Record<PropertyKey, unknown> | undefined)?.[p]
  return cur
}

function describe (v: unknown): string {
  if (v === undefined) return 'nothing'
  if (Array.isArray(v)) return 'a list'
  return `${typeof v} ${JSON.stringify(v)}`
}

export interface LoadConfigOptions {
  /** Values from command-line flags (highest precedence). */
  flags?: ConfigLayer
  /** Explicit config file; default <dataDir>/config.yaml if present. */
  configFile?: string
  env?: NodeJS.ProcessEnv
}

export function loadConfig (opts: LoadConfigOptions = {}): NodeConfig {
  const env = envLayer(opts.env ?? process.env)
  const flags = opts.flags ?? {}
  // The data dir decides where the default config file is, so resolve it first.
  const dataDir = (flags.dataDir ?? env.dataDir ?? DEFAULT_DATA_DIR) as string
  const file = opts.configFile !== undefined
    ? fileLayer(opts.configFile, true)
    : fileLayer(join(dataDir, 'config.yaml'), false)
  const merged = merge(merge(merge(defaultConfig(dataDir) as unknown as ConfigLayer, file), env), flags)
  merged.dataDir = dataDir
  return validateConfig(merged)
}

/** Parses "LAT,LON"; undefined for anything else (a city name). */
export function parseLatLon (s: string): { lat: number, lon: number } | undefined {
  const m = s.match(latLon)
  return m == null ? undefined : { lat: Number(m[1]), lon: Number(m[2]) }
}
