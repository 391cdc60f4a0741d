// GPU models: name normalisation, the declared-GPU flag parser (`dbc node start --gpus SPEC`)
// and a small table of relative performance used when a GPU is declared or not benchmarked.

export interface GpuSpec {
  /** Normalised model, upper-case without vendor words or spaces: "RTX4090", "A100". */
  model: string
  count: number
  memoryMib: number
  /** True when the GPU was declared by flag (test networks), never when probed. */
  declared: boolean
}

/** A GPU spec flag that does not parse; `part` is the offending comma-separated piece. */
export class GpuSpecError extends Error {
  override name = 'GpuSpecError'
  readonly part: string
  constructor (part: string, problem: string) {
    super(`GPU spec "${part}": ${problem}`)
    this.part = part
  }
}

const VENDOR_WORDS = new Set(['NVIDIA', 'GEFORCE', 'TESLA', 'QUADRO', 'AMD', 'RADEON'])
// Tokens after the model name that describe memory or form factor, not the model.
const SUFFIX_TOKEN = /^(\d+GB|\d+G|PCIE|SXM\d*|HBM\d*E?|NVL|MIG.*|SXM\d-\d+GB)$/

/** "NVIDIA GeForce RTX 4090" → "RTX4090", "NVIDIA A100-SXM4-80GB" → "A100", "Tesla T4" → "T4". */
export function normalizeGpuModel (name: string): string {
  const tokens = name.toUpperCase().split(/[\s_-]+/).filter(t => t !== '' && !VENDOR_WORDS.has(t))
  const kept: string[] = []
  for (const t of tokens) {
    if (kept.length > 0 && SUFFIX_TOKEN.test(t)) break
    kept.push(t)
  }
  return kept.join('').replace(/[^A-Z0-9]/g, '')
}

interface GpuModelInfo { score: number, memoryMib: number }

/**
 * Relative throughput (RTX 3090 = 100, from public dense FP16 tensor figures, rounded) and the
 * usual memory size. Used for declared GPUs and as the prior for probed ones: the scheduler
 * predicts a run time as referenceMs * 100 / score.
 */
export const GPU_MODELS: Readonly<Record<string, GpuModelInfo>> = {
  T4: { score: 45, memoryMib: 15360 },
  V100: { score: 90, memoryMib: 16384 },
  RTX3080: { score: 85, memoryMib: 10240 },
  RTX3090: { score: 100, memoryMib: 24576 },
  RTX3090TI: { score: 112, memoryMib: 24576 },
  RTXA6000: { score: 108, memoryMib: 49152 },
  A10: { score: 88, memoryMib: 24576 },
  L4: { score: 85, memoryMib: 23034 },
  RTX4080: { score: 195, memoryMib: 16384 },
  RTX4090: { score: 235, memoryMib: 24576 },
  L40S: { score: 255, memoryMib: 46068 },
  A100: { score: 220, memoryMib: 81920 },
  H100: { score: 700, memoryMib: 81559 },
  H200: { score: 700, memoryMib: 143771 },
  RTX5090: { score: 300, memoryMib: 32607 }
}

/** Score for a model from the table; unknown models get the RTX 3090 reference (100). */
export function gpuScore (model: string): number {
  return GPU_MODELS[normalizeGpuModel(model)]?.score ?? 100
}

const PART = /^(?:(\d+)\s*[x×*]\s*)?([A-Za-z][A-Za-z0-9 _-]*?)\s*(?::\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*))?$/
const UNIT_MIB: Record<string, number> = { '': 1024, G: 1024, GB: 1000 * 1000 * 1000 / (1024 * 1024), GIB: 1024, M: 1, MB: 1000 * 1000 / (1024 * 1024), MIB: 1 }
const MAX_COUNT = 64

/**
 * Parses "2xRTX4090:24GiB,A100:80GiB" into specs marked declared. Memory is optional for models
 * in GPU_MODELS; a bare number means GiB. Throws GpuSpecError naming the bad part.
 */
export function parseGpuSpec (spec: string): GpuSpec[] {
  const out: GpuSpec[] = []
  const parts = spec.split(',').map(p => p.trim())
  if (spec.trim() === '') throw new GpuSpecError(spec, 'is empty; expected e.g. "2xRTX4090:24GiB,A100:80GiB"')
  for (const part of parts) {
    if (part === '') throw new GpuSpecError(spec, 'has an empty entry between commas')
    const m = PART.exec(part)
    if (m === null) throw new GpuSpecError(part, 'expected [COUNTx]MODEL[:MEMORY], e.g. "2xRTX4090:24GiB"')
    const count = m[1] === undefined ? 1 : Number(m[1])
    if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) throw new GpuSpecError(part, `count must be 1..${MAX_COUNT}`)
    const model = normalizeGpuModel(m[2])
    if (model === '') throw new GpuSpecError(part, 'has no model name')
    let memoryMib: number
    if (m[3] === undefined) {
      const known = GPU_MODELS[model]
      if (known === undefined) throw new GpuSpecError(part, `model ${model} is not in the table, so give its memory, e.g. "${part}:24GiB"`)
      memoryMib = known.memoryMib
    } else {
      const unit = m[4].toUpperCase()
      const factor = UNIT_MIB[unit]
      if (factor === undefined) throw new GpuSpecError(part, `unknown memory unit "${m[4]}" (use GiB, GB, MiB or MB)`)
      memoryMib = Math.round(Number(m[3]) * factor)
      if (!(memoryMib >= 1 && memoryMib <= 4 * 1024 * 1024)) throw new GpuSpecError(part, 'memory must be between 1 MiB and 4 TiB')
    }
    out.push({ model, count, memoryMib, declared: true })
  }
  return out
}
