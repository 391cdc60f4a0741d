// The operator's provider policy (config `provider:`, with `containers:` and `trainers:`): what the
// compute peer is built with, and the report `dbc node status` shows of the policy in force.
import type { NodeConfig, ProviderConfig } from './config.js'
import { type ExecutorName, type ProviderPolicy } from '../core/compute/offer-policy.js'
import type { ComputeCapabilities, ComputePeerInit } from '../compute/index.js'
import { DEFAULT_MIN_ROUND_S } from '../core/settlement/training.js'

export type ComputePolicyInit = Pick<ComputePeerInit, 'cpuSlots' | 'memoryMib' | 'maxQueue' | 'gpusOffered' | 'gpuSlots' | 'wasmWorkerHeapMib' | 'processNetwork'> & {
  policy: Partial<ProviderPolicy>
}

/** The executors the policy enables: wasm on, process off (the unsafe one), docker on when `containers.images` lists an image. */
export function enabledExecutors (provider: ProviderConfig | undefined, containers: NodeConfig['containers']): ExecutorName[] {
  const e = provider?.executors
  if (Array.isArray(e)) return [...new Set(e)]
  const hasImages = Object.keys(containers?.images ?? {}).length > 0
  const on: Record<ExecutorName, boolean> = {
    wasm: e?.wasm?.enabled ?? true,
    process: e?.process?.enabled ?? false,
    docker: e?.docker?.enabled ?? hasImages
  }
  return (['wasm', 'process', 'docker'] as const).filter(n => on[n])
}

/** What ComputePeer is built with; every field left out keeps today's default. */
export function computePolicyInit (config: Pick<NodeConfig, 'provider' | 'containers'>): ComputePolicyInit {
  const p = config.provider
  const ex = Array.isArray(p?.executors) ? undefined : p?.executors
  const policy: Partial<ProviderPolicy> = {
    executors: enabledExecutors(p, config.containers),
    ...(p?.priceCpuHour !== undefined ? { priceCpuHour: p.priceCpuHour } : {}),
    ...(p?.priceGpuHour !== undefined ? { priceGpuHour: p.priceGpuHour } : {}),
    ...(p?.maxTask?.wallSeconds !== undefined ? { maxTaskMs: p.maxTask.wallSeconds * 1000 } : {}),
    ...(p?.maxTask?.inputBytes !== undefined ? { maxInputBytes: p.maxTask.inputBytes } : {}),
    ...(p?.maxTask?.memoryMiB !== undefined ? { maxTaskMemoryMib: p.maxTask.memoryMiB } : {}),
    ...(p?.maxTask?.outputBytes !== undefined ? { maxOutputBytes: p.maxTask.outputBytes } : {})
  }
  return {
    policy,
    cpuSlots: p?.slots?.cpu,
    memoryMib: p?.slots?.memoryMiB,
    maxQueue: p?.slots?.queue,
    gpusOffered: p?.gpusOffered,
    gpuSlots: p?.slots?.gpu,
    wasmWorkerHeapMib: ex?.wasm?.workerHeapMiB,
    processNetwork: ex?.process?.network
  }
}

/**
 * GPUs auto-stake counts: the declared GPUs (always offered) capped by `slots.gpu` (the most GPUs
 * offered in all), so a node never stakes for GPUs its policy keeps out of offers. Probed GPUs are
 * known only after the compute peer starts, after the chain's stake: `dbc stake N` covers them.
 */
export function stakedGpuCount (config: Pick<NodeConfig, 'gpus' | 'provider'>, declared: number): number {
  const cap = config.provider?.slots?.gpu
  return cap === undefined ? declared : Math.min(declared, cap)
}

/** What a node that works in training jobs takes from its provider policy (src/training/subsystem.ts). */
export interface TrainingPolicy { serveTraining: boolean, minRoundMs: number, prices: () => { priceGpuHour: number, priceCpuHour: number }, gpuCount: () => number }

/**
 * Training under the provider policy: the compute peer's prices (CPU-hour; the cheapest offered
 * GPU's hour) and GPUs offered after probing (provider.gpusOffered, slots.gpu), the config's
 * `provider.training` (enabled, minRoundS). Before the peer starts: the config's prices, no GPUs.
 */
export function trainingPolicy (config: Pick<NodeConfig, 'provider'>, peer: () => { capabilities: () => ComputeCapabilities } | undefined, minRoundS: number): TrainingPolicy {
  const caps = (): ComputeCapabilities | undefined => { try { return peer()?.capabilities() } catch { return undefined } }
  const p = config.provider
  return {
    serveTraining: p?.training?.enabled ?? true,
    minRoundMs: (p?.training?.minRoundS ?? minRoundS) * 1000,
    prices: () => {
      const c = caps()
      if (c !== undefined) return { priceGpuHour: c.priceGpuHour, priceCpuHour: c.priceCpuHour }
      const g = p?.priceGpuHour
      return { priceGpuHour: typeof g === 'number' ? g : Math.max(0, ...Object.values(g ?? { '*': 1 })), priceCpuHour: p?.priceCpuHour ?? 0.05 }
    },
    gpuCount: () => caps()?.gpus.reduce((n, g) => n + g.count, 0) ?? 0
  }
}

export interface PolicyReport {
  prices: { cpuHour: number, gpuHour: number | Record<string, number>, unit: 'DBC' }
  executors: Record<ExecutorName, { enabled: boolean, available: boolean, reason?: string, limits: Record<string, unknown> }>
  slots: { cpu: number, gpu: number, memoryMiB: number, queue: number }
  gpus: { offered: Array<{ model: string, count: number, memoryMib: number, declared: boolean }>, withheld: number[] }
  maxTask: { memoryMiB: number, wallSeconds: number, outputBytes: number, inputBytes: number }
  trainers: string[]
  images: Array<{ name: string, image: string, digest: string }>
  payment: { creditTasks: number, minDisputeWindowS: number }
  training: { enabled: boolean, minRoundS: number }
}

/**
 * The policy in force, as the running peer applies it (slot counts and GPUs after probing).
 * `queue`: the slot queue's bound, which the peer does not expose.
 */
export function policyReport (config: Pick<NodeConfig, 'provider' | 'containers' | 'trainers'>, peer: { policy: ProviderPolicy, capabilities: () => ComputeCapabilities }): PolicyReport {
  const c = peer.capabilities()
  const pol = peer.policy
  const p = config.provider
  const ex = Array.isArray(p?.executors) ? undefined : p?.executors
  const ct = config.containers
  const executor = (name: ExecutorName, limits: Record<string, unknown>): PolicyReport['executors'][ExecutorName] => {
    const enabled = pol.executors.includes(name)
    const available = c.executors.includes(name)
    const reason = enabled ? (available ? undefined : c.unavailable[name]) : 'off in the provider policy'
    return { enabled, available, ...(reason !== undefined ? { reason } : {}), limits }
  }
  return {
    prices: { cpuHour: pol.priceCpuHour, gpuHour: pol.priceGpuHour, unit: 'DBC' },
    executors: {
      wasm: executor('wasm', { workerHeapMiB: ex?.wasm?.workerHeapMiB ?? 64 }),
      process: executor('process', { network: ex?.process?.network ?? false }),
      docker: executor('docker', { network: ct?.network ?? false, pidsLimit: ct?.pidsLimit ?? 256, user: ct?.user ?? '65534:65534', gpus: ct?.gpus ?? 'nvidia', ...(ct?.logMaxMib !== undefined ? { logMaxMib: ct.logMaxMib } : {}) })
    },
    slots: { cpu: c.cpu.slots, gpu: c.gpus.reduce((n, g) => n + g.count, 0), memoryMiB: c.memoryMib, queue: p?.slots?.queue ?? 64 },
    gpus: { offered: c.gpus.map(g => ({ model: g.model, count: g.count, memoryMib: g.memoryMib, declared: g.declared })), withheld: c.gpusWithheld },
    maxTask: {
      memoryMiB: pol.maxTaskMemoryMib > 0 ? pol.maxTaskMemoryMib : c.memoryMib,
      wallSeconds: pol.maxTaskMs / 1000,
      outputBytes: pol.maxOutputBytes,
      inputBytes: pol.maxInputBytes
    },
    trainers: Object.keys(config.trainers ?? {}),
    images: Object.entries(ct?.images ?? {}).map(([name, i]) => ({ name, image: i.image, digest: i.digest })),
    payment: { creditTasks: p?.creditTasks ?? 1, minDisputeWindowS: p?.minDisputeWindowS ?? 3600 },
    training: { enabled: p?.training?.enabled ?? true, minRoundS: p?.training?.minRoundS ?? DEFAULT_MIN_ROUND_S }
  }
}

