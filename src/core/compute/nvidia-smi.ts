// Parses `nvidia-smi --query-gpu=name,memory.total,driver_version,utilization.gpu,uuid
// --format=csv,noheader,nounits`. Pure: the probe runs the binary and hands the text here.
import { normalizeGpuModel, type GpuSpec } from './gpu-spec.js'

export const NVIDIA_SMI_QUERY = ['--query-gpu=name,memory.total,driver_version,utilization.gpu,uuid', '--format=csv,noheader,nounits']

export interface ProbedGpu {
  index: number
  /** As reported, e.g. "NVIDIA GeForce RTX 4090". */
  name: string
  model: string
  memoryMib?: number
  driver?: string
  utilizationPct?: number
  uuid?: string
}

export interface NvidiaSmiParse {
  gpus: ProbedGpu[]
  /** Why no GPU could be read (driver error text, unparsable lines); absent when all is well. */
  error?: string
  /** Lines that were skipped, with the reason. */
  skipped: string[]
}

const NOT_AVAILABLE = /^\[(N\/A|Not Supported|Unknown Error|Insufficient Permissions|GPU is lost)\]$|^N\/A$/i

function optionalNumber (field: string | undefined): number | undefined {
  if (field === undefined) return undefined
  const f = field.trim().replace(/\s*(MiB|%)$/i, '')
  if (f === '' || NOT_AVAILABLE.test(f)) return undefined
  const n = Number(f)
  return Number.isFinite(n) && n >= 0 ? n : undefined
}

function optionalText (field: string | undefined): string | undefined {
  const f = field?.trim()
  return f === undefined || f === '' || NOT_AVAILABLE.test(f) ? undefined : f
}

/**
 * Robust to: a header line (if someone forgot noheader), units left in ("24564 MiB", "3 %"),
 * [N/A] / [Not Supported] fields, commas inside the name (fields are read from the right),
 * driver failure messages ("NVIDIA-SMI has failed ...", "No devices were found").
 */
export function parseNvidiaSmi (stdout: string): NvidiaSmiParse {
  const gpus: ProbedGpu[] = []
  const skipped: string[] = []
  const lines = stdout.split(/\r?\n/).map(l => l.trim()).filter(l => l !== '')
  const failure = lines.find(l => /NVIDIA-SMI has failed|couldn't communicate|No devices were found|Failed to initialize NVML|Driver\/library version mismatch/i.test(l))
  if (failure !== undefined) return { gpus, skipped, error: failure }
  for (const line of lines) {
    const fields = line.split(',')
    if (fields.length < 5) { skipped.push(`${line} (expected 5 comma-separated fields)`); continue }
    if (/^name$/i.test(fields[0].trim())) continue // header
    const [memory, driver, util, uuid] = fields.slice(-4)
    const name = fields.slice(0, -4).join(',').trim()
    if (name === '' || NOT_AVAILABLE.test(name)) { skipped.push(`${line} (no GPU name)`); continue }
    gpus.push({
      index: gpus.length,
      name,
      model: normalizeGpuModel(name),
      memoryMib: optionalNumber(memory),
      driver: optionalText(driver),
      utilizationPct: optionalNumber(util),
      uuid: optionalText(uuid)
    })
  }
  if (gpus.length === 0 && lines.length > 0) return { gpus, skipped, error: `no GPU line could be read from nvidia-smi output: ${lines[0].slice(0, 200)}` }
  return { gpus, skipped }
}

/** Groups probed GPUs into specs by (model, memory): two RTX 4090s become { count: 2 }. */
export function summarizeGpus (gpus: ProbedGpu[]): GpuSpec[] {
  const byKey = new Map<string, GpuSpec>()
  for (const g of gpus) {
    const memoryMib = g.memoryMib ?? 0
    const key = `${g.model}:${memoryMib}`
    const spec = byKey.get(key)
    if (spec === undefined) byKey.set(key, { model: g.model, count: 1, memoryMib, declared: false })
    else spec.count++
  }
  return [...byKey.values()]
}
