// A config that fails its schema becomes one ConfigError naming the key and the problem, with
// a hint: the known settings for a misspelt key, the value that was given for a bad one.
import { resolve } from 'node:path'
import type { z } from 'zod'
import { ConfigError } from '../errors.js'
import { parseChainSettings } from '../chain/settings.js'
import { GpuSpecError, parseGpuSpec } from '../core/compute/gpu-spec.js'
import { configSchema, defaultConfig, type ConfigLayer, type NodeConfig } from './config-schema.js'

export function validateConfig (raw: ConfigLayer): NodeConfig {
  raw = addressLists(raw)
  const r = configSchema.safeParse(raw)
  if (r.success) {
    // The chain is checked here (names the bad chain.* key), before anything starts: a node
    // that joins others with no network named is refused (src/chain/settings.ts).
    parseChainSettings(r.data.chain, { network: r.data.network, joining: r.data.bootstrap.length > 0 })
    // declared GPUs are parsed here too: a bad --gpus failed later, as a bare GpuSpecError (no hint),
    // and with --detach only after the background process had started
    if (r.data.gpus !== '') {
      try { parseGpuSpec(r.data.gpus) } catch (err) {
        if (err instanceof GpuSpecError) throw new ConfigError('gpus', err.message, { hint: 'declare GPUs as [COUNTx]MODEL[:MEMORY], comma-separated, e.g. --gpus 2xRTX4090:24GiB,A100:80GiB (MEMORY is needed for a model not in the table)' })
        throw err
      }
    }
    checkTaskMemoryCap(r.data.provider)
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

/**
 * An address list given as one string (a config file's `listen: /ip4/0.0.0.0/tcp/4001`), as the
 * flags and DBC_* variables take it: split on commas. It was refused as "expected array" (helper
 * user's walk, session 14).
 */
function addressLists (raw: ConfigLayer): ConfigLayer {
  const out: Record<string, unknown> = { ...raw }
  for (const k of ['listen', 'announce', 'bootstrap']) {
    const v = out[k]
    if (typeof v === 'string') out[k] = v.split(',').map(s => s.trim()).filter(s => s !== '')
  }
  // the provider's lists too, as DBC_EXECUTORS / --executors take them ('executors: wasm,process' was refused: helper user16's walk)
  const provider = out.provider
  if (provider !== null && typeof provider === 'object' && !Array.isArray(provider)) {
    const p: Record<string, unknown> = { ...(provider as Record<string, unknown>) }
    for (const k of ['executors', 'gpusOffered']) {
      const v = p[k]
      if (typeof v === 'string') p[k] = v.split(',').map(s => s.trim()).filter(s => s !== '')
    }
    out.provider = p
  }
  return out as ConfigLayer
}

/**
 * A per-task memory cap above the memory all tasks may hold together means nothing (status showed
 * "max per task 99999999 MiB" beside "2 GiB for tasks": user16 #4). Both written by the operator:
 * an error naming both, since they contradict and a silent clamp would hide which one was meant.
 * With slots.memoryMiB unset (3/4 of the machine's memory, which differs from host to host) the
 * same config must start on a smaller machine: the compute subsystem caps it there with a warning.
 */
function checkTaskMemoryCap (p: NodeConfig['provider']): void {
  const cap = p?.maxTask?.memoryMiB
  const slots = p?.slots?.memoryMiB
  if (cap === undefined || slots === undefined || cap <= slots) return
  throw new ConfigError('provider.maxTask.memoryMiB', `${cap} MiB is above provider.slots.memoryMiB (${slots} MiB, the memory all tasks may hold together): no task could get it`, { hint: `lower provider.maxTask.memoryMiB to at most ${slots}, or raise provider.slots.memoryMiB` })
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
      : path[0] === 'containers' ? (path.length > 2 ? 'image, digest' : 'socket, images, network, pidsLimit, user, gpus, logMaxMib')
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
