// Which GPUs a provider offers: the operator's choice (config provider.gpusOffered, by nvidia-smi
// index or model) among the probed ones, then at most provider.slots.gpu of them. Pure.
import { normalizeGpuModel, type GpuSpec } from './gpu-spec.js'
import { summarizeGpus, type ProbedGpu } from './nvidia-smi.js'

export interface GpuOfferChoice {
  /** Probed GPUs to offer, by index (0) or model ("RTX4090", any spelling normalizeGpuModel knows); undefined: all. */
  offered?: Array<number | string>
  /** Most GPUs offered in all (probed first, then declared); undefined: no cap. */
  maxGpus?: number
}

export interface OfferedGpus {
  probed: ProbedGpu[]
  /** Declared (test-network) GPUs kept, counts trimmed by maxGpus. */
  declared: GpuSpec[]
  /** Probed specs grouped by model, then the declared ones: what the node advertises. */
  gpus: GpuSpec[]
  /** Probed GPUs left out by the choice, for the status report. */
  withheld: number[]
}

/** A digit-only string is an index (env and flag values arrive as text). */
function selector (s: number | string): number | string {
  return typeof s === 'string' && /^\d+$/.test(s.trim()) ? Number(s.trim()) : s
}

export function chooseOfferedGpus (probed: readonly ProbedGpu[], declared: readonly GpuSpec[], choice: GpuOfferChoice = {}): OfferedGpus {
  let kept = [...probed]
  if (choice.offered !== undefined) {
    const sel = choice.offered.map(selector)
    const indexes = new Set(sel.filter((x): x is number => typeof x === 'number'))
    const models = new Set(sel.filter((x): x is string => typeof x === 'string').map(m => normalizeGpuModel(m)))
    kept = kept.filter(g => indexes.has(g.index) || models.has(g.model))
  }
  let room = choice.maxGpus ?? Infinity
  kept = kept.slice(0, Math.max(0, Math.min(kept.length, room)))
  room -= kept.length
  const keptDeclared: GpuSpec[] = []
  for (const d of declared) {
    const count = Math.max(0, Math.min(d.count, room))
    room -= count
    if (count > 0) keptDeclared.push({ ...d, count })
  }
  const keptIdx = new Set(kept.map(g => g.index))
  return {
    probed: kept,
    declared: keptDeclared,
    gpus: [...summarizeGpus(kept), ...keptDeclared],
    withheld: probed.filter(g => !keptIdx.has(g.index)).map(g => g.index)
  }
}
