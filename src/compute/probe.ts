// Resource probe: CPU, memory, disk and GPUs of this machine. GPUs come from nvidia-smi; a
// machine without one may declare GPUs (`--gpus`), which are kept apart and marked declared.
import { execFile } from 'node:child_process'
import { statfs } from 'node:fs/promises'
import { cpus, totalmem, freemem } from 'node:os'
import { NVIDIA_SMI_QUERY, parseNvidiaSmi, summarizeGpus, type ProbedGpu } from '../core/compute/nvidia-smi.js'
import type { GpuSpec } from '../core/compute/gpu-spec.js'
import type { GpuDevice, SlotDemand } from '../core/compute/slot-ledger.js'

export interface ResourceProbe {
  cpu: { model: string, cores: number }
  memory: { totalMib: number, freeMib: number }
  disk: { path: string, totalMib: number, freeMib: number }
  /** GPUs nvidia-smi reported (empty when there is none or it failed). */
  probedGpus: ProbedGpu[]
  /** Why no GPU was probed, when none was (missing binary, driver failure...). */
  gpuProbeError?: string
  /** Probed GPUs grouped by model, then declared ones (declared: true). */
  gpus: GpuSpec[]
}

export interface ProbeOptions {
  /** nvidia-smi binary (default "nvidia-smi" on PATH). */
  nvidiaSmi?: string
  /** Directory whose filesystem is measured (the task directory's). */
  diskPath?: string
  declaredGpus?: GpuSpec[]
  timeoutMs?: number
  signal?: AbortSignal
}

/** Runs nvidia-smi; returns its stdout, or an error saying why there is none. */
export async function runNvidiaSmi (bin = 'nvidia-smi', opts: { timeoutMs?: number, signal?: AbortSignal } = {}): Promise<{ stdout: string } | { error: string }> {
  return await new Promise(resolve => {
    execFile(bin, NVIDIA_SMI_QUERY, { timeout: opts.timeoutMs ?? 5000, signal: opts.signal, maxBuffer: 1 << 20, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (err, stdout, stderr) => {
      if (err === null) { resolve({ stdout }); return }
      const e = err as NodeJS.ErrnoException & { killed?: boolean }
      if (e.code === 'ENOENT') resolve({ error: `${bin} not found: no NVIDIA driver on this machine, so no GPUs were probed` })
      else if (e.killed === true) resolve({ error: `${bin} did not answer within ${opts.timeoutMs ?? 5000} ms` })
      else {
        // nvidia-smi prints its failure text on stdout and exits non-zero: let the parser name it.
        const parsed = parseNvidiaSmi(`${stdout}\n${stderr}`)
        resolve({ error: parsed.error ?? `${bin} failed: ${e.message.split('\n')[0]}` })
      }
    })
  })
}

export async function probeResources (opts: ProbeOptions = {}): Promise<ResourceProbe> {
  const c = cpus()
  const diskPath = opts.diskPath ?? process.cwd()
  let disk = { path: diskPath, totalMib: 0, freeMib: 0 }
  try {
    const s = await statfs(diskPath)
    disk = { path: diskPath, totalMib: Math.floor(s.blocks * s.bsize / 1048576), freeMib: Math.floor(s.bavail * s.bsize / 1048576) }
  } catch { /* an unreadable path leaves the disk at zero */ }
  const smi = await runNvidiaSmi(opts.nvidiaSmi, opts)
  let probedGpus: ProbedGpu[] = []
  let gpuProbeError: string | undefined
  if ('error' in smi) gpuProbeError = smi.error
  else {
    const parsed = parseNvidiaSmi(smi.stdout)
    probedGpus = parsed.gpus
    gpuProbeError = parsed.error
  }
  return {
    cpu: { model: c[0]?.model.trim() ?? 'unknown', cores: c.length },
    memory: { totalMib: Math.floor(totalmem() / 1048576), freeMib: Math.floor(freemem() / 1048576) },
    disk,
    probedGpus,
    gpuProbeError,
    gpus: [...summarizeGpus(probedGpus), ...(opts.declaredGpus ?? [])]
  }
}

/**
 * Whether the GPUs `demand` asks for can all be probed ones: at least that many probed devices of
 * the model and memory it names (what an offer says in gpus_probed; placement trusts only those).
 */
export function demandOnProbedGpus (probe: Pick<ResourceProbe, 'probedGpus'>, devices: readonly GpuDevice[], demand: SlotDemand): boolean {
  if (demand.gpus <= 0) return false
  const probed = new Set(probe.probedGpus.map(g => g.index))
  const matching = devices.filter(g => probed.has(g.index) &&
    (demand.gpuModel === undefined || demand.gpuModel === '' || g.model === demand.gpuModel) &&
    (demand.gpuMemoryMib === undefined || g.memoryMib >= demand.gpuMemoryMib))
  return matching.length >= demand.gpus
}

/** One device per GPU, probed ones first (nvidia-smi index), then declared ones. */
export function gpuDevices (probe: Pick<ResourceProbe, 'probedGpus' | 'gpus'>): GpuDevice[] {
  const devices: GpuDevice[] = probe.probedGpus.map(g => ({ index: g.index, model: g.model, memoryMib: g.memoryMib ?? 0 }))
  let next = devices.length
  for (const spec of probe.gpus.filter(g => g.declared)) {
    for (let i = 0; i < spec.count; i++) devices.push({ index: next++, model: spec.model, memoryMib: spec.memoryMib })
  }
  return devices
}
