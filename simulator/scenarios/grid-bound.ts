// The offline lower bound of a grid job stream: no schedule, even one that knows every arrival,
// every task's length and every provider's downtime in advance, finishes sooner. Work is counted
// in perf-1 milliseconds (a copy on provider p holds a slot for transfer + work ÷ perf), and
// capacity only while a provider is up. Two bounds, the larger wins:
//  - capacity: the work of the jobs that arrive at or after a_k fits only into the capacity that
//    is up between a_k and the end (for every k; k = 0 is "sum of work ÷ capacity");
//  - critical path: a job ends no sooner than its longest task on the provider fastest for it.

/** Capacity (Σ slots × perf of the providers up) from time `t` on; sorted by t. */
export interface CapacityStep { t: number, cap: number }

export interface StreamBoundInput {
  /** Job arrival times, ascending. */
  arrivals: Float64Array
  /** Each job's work (perf-1 ms, the least a copy of each task can cost). */
  work: Float64Array
  /** Each job's longest task on the provider fastest for it (ms). */
  longest: Float64Array
  steps: readonly CapacityStep[]
}

/** The earliest time by which all the stream's work can be done (absolute, same clock as arrivals). */
export function streamLowerBound (b: StreamBoundInput): number {
  const steps = b.steps
  // prefix integral of capacity at each step's start
  const at = new Float64Array(steps.length)
  for (let i = 1; i < steps.length; i++) at[i] = at[i - 1] + steps[i - 1].cap * (steps[i].t - steps[i - 1].t)
  const integral = (t: number): number => {
    const i = stepAt(steps, t)
    return i < 0 ? 0 : at[i] + steps[i].cap * (t - steps[i].t)
  }
  const inverse = (area: number): number => {
    let lo = 0; let hi = steps.length - 1
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (at[mid] <= area) lo = mid; else hi = mid - 1 }
    const s = steps[lo]
    return s.cap > 0 ? s.t + (area - at[lo]) / s.cap : Infinity
  }
  let end = 0
  let suffix = 0
  for (let k = b.arrivals.length - 1; k >= 0; k--) {
    suffix += b.work[k]
    end = Math.max(end, inverse(integral(b.arrivals[k]) + suffix), b.arrivals[k] + b.longest[k])
  }
  return end
}

/** Index of the step in force at t (-1 before the first). */
function stepAt (steps: readonly CapacityStep[], t: number): number {
  let lo = 0; let hi = steps.length - 1
  if (steps.length === 0 || t < steps[0].t) return -1
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (steps[mid].t <= t) lo = mid; else hi = mid - 1 }
  return lo
}

/** Folds capacity changes (time, delta) into steps from `t0` on, starting at `cap0`. */
export function capacitySteps (t0: number, cap0: number, changes: ReadonlyArray<{ t: number, delta: number }>): CapacityStep[] {
  const sorted = [...changes].sort((a, b) => a.t - b.t)
  const steps: CapacityStep[] = [{ t: t0, cap: cap0 }]
  let cap = cap0
  for (const c of sorted) {
    cap += c.delta
    const last = steps[steps.length - 1]
    if (c.t <= last.t) last.cap = cap
    else steps.push({ t: c.t, cap })
  }
  return steps
}
