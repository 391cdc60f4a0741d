// A provider's offer policy: answers a lease request with offer terms or a refusal and why.
// Pure: the runtime passes in the clock, the free slots and the ids; signing is in offer.ts.
import type { dbc } from '../../wire/gen/wire.js'
import { normalizeGpuModel } from './gpu-spec.js'
import { slotPriceHour } from './pricing.js'
import type { SlotDemand } from './slot-ledger.js'

export type ExecutorName = 'wasm' | 'process' | 'docker'

export interface ProviderPolicy {
  /** Tokens per GPU-hour: one price for all, or per normalised model ("RTX4090"), with "*" as fallback. */
  priceGpuHour: number | Record<string, number>
  /** Tokens per CPU-hour (per core). */
  priceCpuHour: number
  /** Shortest lease the provider accepts, in ms. */
  minLeaseMs: number
  /** Region ids (geo cell prefixes or names) served; empty: everywhere. */
  regions: string[]
  maxInputBytes: number
  /** Longest wall time per task, in ms. */
  maxTaskMs: number
  /** Most memory one task may ask for, MiB; 0: no cap beyond the memory offered to tasks. */
  maxTaskMemoryMib: number
  /** Largest result one task may return, bytes (the executors stop a task past it). */
  maxOutputBytes: number
  /** Executors the provider allows (the offer lists those also available on the machine). */
  executors: ExecutorName[]
  /** How long an offer stays valid, in ms. */
  offerTtlMs: number
  /** Most slots promised in one offer. */
  maxSlotsPerOffer: number
}

export const DEFAULT_POLICY: ProviderPolicy = {
  priceGpuHour: 1,
  priceCpuHour: 0.05,
  minLeaseMs: 0,
  regions: [],
  maxInputBytes: 16 * 1024 * 1024,
  maxTaskMs: 10 * 60_000,
  maxTaskMemoryMib: 0,
  maxOutputBytes: 16 * 1024 * 1024,
  executors: ['wasm'],
  offerTtlMs: 30_000,
  maxSlotsPerOffer: 64
}

export interface OfferContext {
  policy: ProviderPolicy
  /** Executors that work on this machine right now (docker only when an engine answers). */
  availableExecutors: ExecutorName[]
  /** Tasks of the requested shape that could run at once on this peer when idle. */
  capacityFor: (demand: SlotDemand) => number
  /** Tasks of the requested shape that fit right now. */
  freeSlotsFor: (demand: SlotDemand) => number
  /** The requester's region, when the runtime knows it (the request carries none). */
  requesterRegion?: string
  perfScore: number
  now: number
}

export interface OfferTerms {
  slots: number
  priceGpuHour: number
  priceCpuHour: number
  minLeaseMs: number
  expiresAt: number
  perfScore: number
  /** The GPUs offered were probed (nvidia-smi), not only declared (`--gpus`); placement trusts only these. */
  gpusProbed?: boolean
  /** The most tasks of one TaskBundle run in one slot of the lease (bundleMaxFor the request's expected_task_ms); absent: none. */
  bundleMax?: number
}

export type OfferDecision = { kind: 'offer', terms: OfferTerms } | { kind: 'refuse', reason: string }

export function gpuPriceFor (policy: ProviderPolicy, model: string): number | undefined {
  if (typeof policy.priceGpuHour === 'number') return policy.priceGpuHour
  return policy.priceGpuHour[normalizeGpuModel(model)] ?? policy.priceGpuHour['*']
}

/** The executors an offer may list: allowed by policy and working here. */
export function offeredExecutors (policy: ProviderPolicy, available: ExecutorName[]): ExecutorName[] {
  return policy.executors.filter(e => available.includes(e))
}

export function demandOf (r: dbc.task.v1.IResources | null | undefined): SlotDemand {
  return {
    cpus: Math.max(1, r?.cpuCores ?? 1),
    memoryMib: r?.memoryMib ?? 0,
    gpus: r?.gpuCount ?? 0,
    gpuModel: r?.gpuModel != null && r.gpuModel !== '' ? normalizeGpuModel(r.gpuModel) : '',
    gpuMemoryMib: r?.gpuMemoryMib ?? 0
  }
}

export function decideOffer (req: dbc.task.v1.ILeaseRequest, ctx: OfferContext): OfferDecision {
  const { policy, now } = ctx
  // `CODE: text`, the wire's convention for typed errors: a submitter waits on BUSY, not on the rest
  const refuse = (code: string, reason: string): OfferDecision => ({ kind: 'refuse', reason: `${code}: ${reason}` })
  if ((req.requestExpiresAt ?? 0) > 0 && (req.requestExpiresAt ?? 0) <= now) return refuse('REQUEST_EXPIRED', 'the lease request has expired')
  const executor = req.executor == null || req.executor === '' ? 'wasm' : req.executor
  if (!policy.executors.includes(executor as ExecutorName)) return refuse('EXECUTOR_DISABLED', `executor "${executor}" is not enabled by this provider (enabled: ${policy.executors.join(', ') || 'none'})`)
  if (!ctx.availableExecutors.includes(executor as ExecutorName)) return refuse('EXECUTOR_UNAVAILABLE', `executor "${executor}" is not available on this machine`)
  if (policy.regions.length > 0) {
    const region = ctx.requesterRegion
    if (region === undefined || !policy.regions.some(r => region === r || region.startsWith(r))) return refuse('REGION', `this provider serves only regions ${policy.regions.join(', ')}${region === undefined ? ' and the requester\'s region is unknown' : `, not ${region}`}`)
  }
  if ((req.maxInputBytes ?? 0) > policy.maxInputBytes) return refuse('INPUT_TOO_LARGE', `task inputs up to ${req.maxInputBytes ?? 0} bytes exceed this provider's limit of ${policy.maxInputBytes} bytes (provider.maxTask.inputBytes)`)
  if ((req.expectedTaskMs ?? 0) > policy.maxTaskMs) return refuse('TASK_TOO_LONG', `tasks of ${req.expectedTaskMs ?? 0} ms exceed this provider's limit of ${policy.maxTaskMs} ms (provider.maxTask.wallSeconds)`)
  const demand = demandOf(req.resources)
  if (policy.maxTaskMemoryMib > 0 && demand.memoryMib > policy.maxTaskMemoryMib) return refuse('TASK_MEMORY_TOO_LARGE', `tasks of ${demand.memoryMib} MiB exceed this provider's limit of ${policy.maxTaskMemoryMib} MiB per task (provider.maxTask.memoryMiB)`)
  let priceGpuHour = 0
  if (demand.gpus > 0) {
    const p = gpuPriceFor(policy, demand.gpuModel ?? '')
    if (p === undefined) return refuse('NO_GPU_PRICE', `no price set for GPU model ${demand.gpuModel ?? ''}`)
    priceGpuHour = p
  }
  const prices = { priceGpuHour, priceCpuHour: policy.priceCpuHour }
  const hourly = slotPriceHour(demand.gpus, demand.cpus, prices)
  if ((req.maxPriceHour ?? 0) > 0 && hourly > (req.maxPriceHour ?? 0)) return refuse('OVER_PRICE', `price ${+hourly.toPrecision(9)} per slot-hour is above the requester's maximum ${req.maxPriceHour ?? 0}`)
  if (ctx.capacityFor(demand) === 0) {
    const gpuPart = demand.gpus > 0 ? `${demand.gpus}x ${demand.gpuModel === '' ? 'GPU' : demand.gpuModel ?? ''}, ` : ''
    return refuse('NO_CAPACITY', `this peer cannot run tasks needing ${gpuPart}${demand.cpus} CPU(s) and ${demand.memoryMib} MiB`)
  }
  const free = ctx.freeSlotsFor(demand)
  if (free === 0) return refuse('BUSY', 'all slots for this shape are busy; ask again later')
  const slots = Math.min(Math.max(1, req.slots ?? 1), free, policy.maxSlotsPerOffer)
  return {
    kind: 'offer',
    terms: { slots, ...prices, minLeaseMs: policy.minLeaseMs, expiresAt: now + policy.offerTtlMs, perfScore: ctx.perfScore }
  }
}
