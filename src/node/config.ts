// Node configuration from three sources, later ones winning: the config file
// (<dataDir>/config.yaml or --config FILE, YAML or JSON), the environment (DBC_*), and flags.
// Every value is validated; a bad one is a ConfigError naming the key and the problem.
// The shape and defaults are config-schema.ts (provider sections: config-provider.ts), the
// checks config-validate.ts; this module reads the sources and is what callers import.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../errors.js'
import { DEFAULT_DATA_DIR, defaultConfig, type ConfigLayer, type NodeConfig } from './config-schema.js'
import { validateConfig } from './config-validate.js'

export { DEFAULT_DATA_DIR, configSchema, defaultConfig, parseLatLon, type ConfigLayer, type NodeConfig } from './config-schema.js'
export { TRAINER_LIMIT_DEFAULTS, TRAINER_MAX_PARAMS, type ProviderConfig, type TrainerConfig } from './config-provider.js'
export { validateConfig } from './config-validate.js'

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
  DBC_STUN_PORT: { key: 'nat.stunPort', kind: 'int' },
  DBC_WEBRTC: { key: 'nat.webrtc', kind: 'bool' },
  DBC_ROUTING_MODE: { key: 'routing.mode', kind: 'string' },
  DBC_NETWORK: { key: 'network', kind: 'string' },
  DBC_CHAIN_RPC: { key: 'chain.rpc', kind: 'string' },
  DBC_CHAIN_KIND: { key: 'chain.kind', kind: 'string' },
  DBC_CHAIN_URL: { key: 'chain.url', kind: 'string' },
  DBC_CHAIN_ID: { key: 'chain.chainId', kind: 'int' },
  DBC_CHAIN_KEY_FILE: { key: 'chain.keyFile', kind: 'string' },
  DBC_CHAIN_REQUIRE_STAKE: { key: 'chain.requireStake', kind: 'bool' },
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
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    // unreadable (permissions) or not a file: not a syntax error, and the fix is another one
    const code = (err as NodeJS.ErrnoException).code
    const why = code === 'EISDIR' ? 'is a directory' : code === 'EACCES' || code === 'EPERM' ? 'cannot be read by this user (permission denied)' : `cannot be read (${code ?? (err as Error).message})`
    throw new ConfigError('config', `config file ${file} ${why}`, { hint: code === 'EISDIR' ? 'pass the YAML or JSON file itself with --config FILE (by default <data-dir>/config.yaml)' : `make it readable by the user running dbc (chown it to that user, chmod 600 ${file}), or pass another with --config FILE` })
  }
  let parsed: unknown
  try {
    parsed = parseYaml(text) // YAML is a superset of JSON
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
  // a node others cannot dial is a DHT client unless told otherwise: as a server it held the records
  // (its capability records among them) closest to it, which no submitter could read (helper user16's walk)
  const natLayer = merged.nat as ConfigLayer | undefined
  if (natLayer?.behindNat === true && ![file, env, flags].some(l => (l.dht as ConfigLayer | undefined)?.server !== undefined)) (merged.dht as ConfigLayer).server = false
  return validateConfig(merged)
}
