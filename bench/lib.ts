// Shared pieces of the benchmarks: the result shape, percentiles, the machine description.
import { cpus, totalmem } from 'node:os'

export interface Metric {
  value: number
  unit: string
  /** The same quantity for the baseline, measured in the same run. */
  baseline?: number
  /** value / baseline (how many times the baseline). */
  ratio?: number
  /** Goal, as text, e.g. "<= 1.3x baseline". */
  goal?: string
  /** Whether the goal is met (absent when there is no goal). */
  met?: boolean
}

export interface BenchResult {
  name: string
  machine: string
  date: string
  metrics: Record<string, Metric>
  /** Extra series for charts (e.g. latency CDFs), free shape. */
  series?: Record<string, unknown>
  notes?: string[]
}

export interface BenchModule {
  /** Runs the benchmark and returns metrics; the harness writes JSON and prints the table. */
  run: (opts: { quick: boolean }) => Promise<Omit<BenchResult, 'name' | 'machine' | 'date'>>
}

export function machine (): string {
  const c = cpus()
  return `${c.length} x ${c[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}-${process.arch}`
}

export function metric (value: number, unit: string, baseline?: number, goal?: string, met?: boolean): Metric {
  const m: Metric = { value, unit }
  if (baseline !== undefined) {
    m.baseline = baseline
    m.ratio = baseline === 0 ? 0 : value / baseline
  }
  if (goal !== undefined) m.goal = goal
  if (met !== undefined) m.met = met
  return m
}

export function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

export function summarize (samples: number[]): { p50: number, p90: number, p99: number, mean: number, n: number } {
  const s = [...samples].sort((a, b) => a - b)
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)
  return { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), mean, n: s.length }
}

export function liveHeapBytes (): number {
  const g = (globalThis as { gc?: () => void }).gc
  if (g !== undefined) { g(); g() }
  return process.memoryUsage().heapUsed
}
