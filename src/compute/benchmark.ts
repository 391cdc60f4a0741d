// The join benchmark: a few hundred ms that give this peer a performance score per device
// class, so the scheduler can predict run times (predictedMs = referenceMs * 100 / score).
// CPU: the Mandelbrot task module on one worker, measured in thread CPU time (less sensitive to
// other load than wall time). GPUs: the table in core/compute/gpu-spec.ts (nothing runs on them).
import { readFileSync } from 'node:fs'
import { gpuScore, type GpuSpec } from '../core/compute/gpu-spec.js'
import type { WasmExecutor } from './executors/wasm.js'

/** CPU ms for one reference tile on the reference core (score 100): the development VM's Intel Xeon core (2026). */
export const REFERENCE_TILE_CPU_MS = 4

export interface PerformanceScores {
  /** Per core; 100 = the reference core. */
  cpu: number
  /** Per GPU model; from the table (declared or probed alike). */
  gpus: Record<string, number>
  /** Best per-tile CPU time measured, ms. */
  cpuTileMs: number
  runs: number
}

export function referenceTileInput (): Uint8Array {
  const v = new DataView(new ArrayBuffer(36))
  v.setFloat64(0, -2.0, true)
  v.setFloat64(8, -1.25, true)
  v.setFloat64(16, 2.5 / 96, true)
  v.setUint32(24, 96, true)
  v.setUint32(28, 96, true)
  v.setUint32(32, 500, true)
  return new Uint8Array(v.buffer)
}

const MANDELBROT = new URL('./modules/mandelbrot.wasm', import.meta.url)

export async function benchmarkPeer (executor: WasmExecutor, gpus: GpuSpec[], opts: { budgetMs?: number, signal?: AbortSignal } = {}): Promise<PerformanceScores> {
  const code = new Uint8Array(readFileSync(MANDELBROT))
  const input = referenceTileInput()
  const budget = opts.budgetMs ?? 300
  const t0 = performance.now()
  let best = Infinity
  let runs = 0
  while (runs < 3 || (performance.now() - t0 < budget && runs < 50)) {
    const r = await executor.run({ taskId: 'benchmark', code, entry: 'run', input, timeoutMs: 10_000, memoryLimitMib: 16, maxOutputBytes: 1 << 20 }, { signal: opts.signal })
    best = Math.min(best, r.cpuMs > 0 ? r.cpuMs : r.wallMs)
    runs++
  }
  const scores: Record<string, number> = {}
  for (const g of gpus) scores[g.model] = gpuScore(g.model)
  return { cpu: Math.round(100 * REFERENCE_TILE_CPU_MS / best), gpus: scores, cpuTileMs: best, runs }
}
