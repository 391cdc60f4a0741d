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
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
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
    behindNat: z.boolean()
  }).strict(),
  /** The chain bridge (src/chain/subsystem.ts): kind embedded|rpc, url, chainId, keyFile, contract... */
  chain: z.record(z.string(), z.unknown()),
  /** The inbound guard's gate for new identities per address (src/net/guard; defaults there, with the reasoning). */
  guard: z.object({
    /** New identities one address may introduce at once. */
    newIdentityBurst: z.number().int().min(0).max(1_000_000).optional(),
    /** One more new identity per address per this many ms. */
    newIdentityRefillMs: z.number().int().min(1).max(86_400_000).optional()
  }).strict().optional(),
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
    log: { level: 'info' },
    dht: { server: true, keepPrivateAddresses: true },
    connectionMonitor: true,
    overlay: { vivaldiIntervalMs: 2000 },
    nat: { relayServer: true, behindNat: false },
    chain: {},
    trainers: {}
  }
}

/** A partial config: what one source sets. Nested objects are merged key by key. */
export type ConfigLayer = Record<string, unknown>

/** Environment variables and the config key each one sets. Lists are comma-separated. */
export const ENV_KEYS: Record<string, { key: string, kind: 'string' | 'list' | 'int' | 'bool' }> = {
  DBC_DATA_DIR: { key: 'dataDir', kind: 'string' },
  DBC_LISTEN: { key: 'listen', kind: 'list' },
  DBC_ANNOUNCE: { key: 'announce', kind: 'list' },
  DBC_BOOTSTRAP: { key: 'bootstrap', kind: 'list' },
  DBC_LOCATION: { key: 'location', kind: 'string' },
  DBC_GPUS: { key: 'gpus', kind: 'string' },
  DBC_API_PORT: { key: 'api.port', kind: 'int' },
  DBC_LOG_LEVEL: { key: 'log.level', kind: 'string' },
  DBC_DHT_SERVER: { key: 'dht.server', kind: 'bool' },
  DBC_CONNECTION_MONITOR: { key: 'connectionMonitor', kind: 'bool' },
  DBC_VIVALDI_INTERVAL_MS: { key: 'overlay.vivaldiIntervalMs', kind: 'int' },
  DBC_BEHIND_NAT: { key: 'nat.behindNat', kind: 'bool' },
  DBC_RELAY_SERVER: { key: 'nat.relayServer', kind: 'bool' },
  DBC_CHAIN_KIND: { key: 'chain.kind', kind: 'string' },
  DBC_CHAIN_URL: { key: 'chain.url', kind: 'string' },
  DBC_CHAIN_ID: { key: 'chain.chainId', kind: 'int' },
  DBC_CHAIN_KEY_FILE: { key: 'chain.keyFile', kind: 'string' },
  DBC_GUARD_NEW_IDENTITY_BURST: { key: 'guard.newIdentityBurst', kind: 'int' },
  DBC_GUARD_NEW_IDENTITY_REFILL_MS: { key: 'guard.newIdentityRefillMs', kind: 'int' }
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
  // the chain section is validated by the chain subsystem (src/chain/subsystem.ts) at start
  if (r.success) return { ...r.data, dataDir: resolve(r.data.dataDir) }
  const issue = r.error.issues[0]
  const key = issue.path.length > 0 ? issue.path.join('.') : 'config'
  let problem = issue.message
  if (issue.code === 'unrecognized_keys') {
    return failUnknown(issue.keys, issue.path)
  }
  if (issue.code === 'invalid_key' && issue.path[0] === 'trainers') {
    throw new ConfigError(key, 'is not a trainer name', { hint: 'name trainers with lower-case letters, digits, ".", "_" and "-" (at most 64), e.g. torch-mnist' })
  }
  if (issue.code === 'invalid_type') problem = `expected ${issue.expected}, got ${describe(valueAt(raw, issue.path))}`
  else if (!/^(is|must|latitude)/.test(problem)) problem = `${problem} (got ${describe(valueAt(raw, issue.path))})`
  else problem = `${JSON.stringify(valueAt(raw, issue.path))} ${problem}`
  throw new ConfigError(key, problem, { hint: 'fix it in the config file, the DBC_* environment variable or the flag that sets it' })
}

function failUnknown (keys: string[], path: PropertyKey[]): never {
  const prefix = path.length > 0 ? path.join('.') + '.' : ''
  const known = path[0] === 'trainers'
    ? (path.length > 2 ? 'memoryMiB, cpuSeconds, maxParams, requestTimeoutMs' : 'command, socket, env, setEnv, workDir, limits')
    : Object.keys(defaultConfig()).join(', ')
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
