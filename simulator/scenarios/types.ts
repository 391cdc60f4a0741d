// What every scenario returns: deterministic results (same seed, same JSON) kept apart
// from the performance figures of this particular run (wall time, memory).

export interface ChartSeries { label: string, data: Array<{ x: number, y: number }> }

export interface ChartSpec {
  id: string
  title: string
  kind: 'line' | 'bar' | 'scatter'
  xLabel: string
  yLabel: string
  series: ChartSeries[]
  /** Log-scale x axis. */
  logX?: boolean
}

export interface InvariantCheck { name: string, ok: boolean, detail: string }

export interface RunPerf {
  wallMs: number
  setupMs: number
  events: number
  eventsPerSec: number
  /** (heapUsed + arrayBuffers) after setup and a forced GC, divided by the node count. */
  liveBytesPerNode: number
  heapUsedBytes: number
  arrayBufferBytes: number
  rssBytes: number
  forcedGc: boolean
  /** Scenario-specific rates, e.g. completed lookups per wall-second. */
  rates: Record<string, number>
}

export interface ScenarioResult {
  scenario: string
  seed: number
  nodes: number
  params: Record<string, unknown>
  summary: Record<string, number | string | boolean>
  charts: ChartSpec[]
  invariants: InvariantCheck[]
  notes: string[]
  /** Not deterministic: excluded from the determinism comparison. */
  perf: RunPerf
}

export interface ScenarioOptions {
  nodes: number
  seed: number
  /** Scenario-specific count (lookups, messages, jobs, rounds); each scenario has a default. */
  count?: number
  /** Progress callback: done of total units. */
  onProgress?: (done: number, total: number) => void
  /** Extra scenario parameters from the CLI (--set key=value). */
  extra?: Record<string, number>
}

export type Scenario = (opts: ScenarioOptions) => ScenarioResult | Promise<ScenarioResult>
