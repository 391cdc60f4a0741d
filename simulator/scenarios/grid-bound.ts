// The offline lower bound of a grid job stream: no schedule, even one that knows every arrival,
// every task's length and every provider's downtime in advance, finishes sooner. Work is counted
// in perf-1 milliseconds (a copy on provider p holds a slot for transfer + work ÷ perf), and
// capacity only while a provider is up. Two bounds, the larger wins:
//  - capacity: the work of the jobs that arrive at or after a_k fits only into the capacity that
//    is up between a_k and the end (for every k; k = 0 is "sum of work ÷ capacity");
//  - critical path: a job ends no sooner than its longest task on the provider fastest for it;
//  - task sizes (sizeLowerBound): a copy runs whole on one slot (no copy is split across
//    providers), so by an end T a task of work w arriving at a can run only on a slot of perf
//    >= w ÷ (T - a); for each k, the tasks arriving at or after a_k that need perf >= σ must fit
//    into the capacity of the providers of perf >= σ over [a_k, T] (for every σ). Slow providers
//    cannot take a loaded stream's long tasks near its end; and a task runs on one slot at a
//    time, so the c largest of those use c slots at most: the c fastest. (Capacity there is
//    counted as if always up: weaker, still a bound.) This is the classic bound for uniform
//    machines (the i longest tasks need the i fastest slots) with arrivals and a horizon.

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

export interface SizeBoundInput {
  /** Job arrival times, ascending. */
  arrivals: Float64Array
  /** Each job's tasks' work (perf-1 ms: the least slot time x perf a copy can take). */
  tasks: readonly Float64Array[]
  /** Providers' perf and slots. */
  perf: Float64Array
  slots: Int32Array
  /** A known bound to start from (the answer is at least this), and an end known feasible (a real schedule's). */
  from: number
  feasible: number
  /** Most suffixes k checked (evenly spread, k = 0 always): fewer gives a weaker bound, never a wrong one. */
  maxSuffixes?: number
}

/** The earliest end the task-size constraints allow (absolute), between `from` and `feasible`; see the header. */
export function sizeLowerBound (b: SizeBoundInput): number {
  const n = b.arrivals.length
  if (n === 0) return b.from
  // all tasks by work, largest first
  let count = 0
  for (const t of b.tasks) count += t.length
  const work = new Float64Array(count); const job = new Int32Array(count)
  let o = 0
  for (let j = 0; j < n; j++) for (const w of b.tasks[j]) { work[o] = w; job[o] = j; o++ }
  const order = Array.from({ length: count }, (_, i) => i).sort((x, y) => work[y] - work[x])
  // slots by perf, fastest first, with the capacity of the fastest m
  let slotCount = 0
  for (const n of b.slots) slotCount += n
  const perf = new Float64Array(slotCount)
  o = 0
  for (let p = 0; p < b.perf.length; p++) for (let x = 0; x < b.slots[p]; x++) perf[o++] = b.perf[p]
  perf.sort().reverse()
  const capOf = new Float64Array(slotCount + 1)
  for (let i = 0; i < slotCount; i++) capOf[i + 1] = capOf[i] + perf[i]
  const stride = Math.max(1, Math.ceil(n / (b.maxSuffixes ?? 64)))
  const ks: number[] = []
  for (let k = 0; k < n; k += stride) ks.push(k)
  const fits = (T: number): boolean => {
    for (const k of ks) {
      const h = T - b.arrivals[k]
      if (h <= 0) return false
      // tasks by falling work need falling perf: the slots fast enough only grow in number; the c
      // largest tasks run on c slots at most at any moment, so on the c fastest of those
      let sum = 0; let fast = 0; let c = 0
      for (const i of order) {
        if (job[i] < k) continue
        sum += work[i]; c++
        const need = work[i] / h
        while (fast < perf.length && perf[fast] >= need) fast++
        if (fast === 0 || sum > h * capOf[Math.min(c, fast)]) return false
      }
    }
    return true
  }
  let lo = b.from; let hi = Math.max(b.from, b.feasible)
  if (fits(lo)) return lo
  if (!fits(hi)) return lo // not expected: a real schedule meets every constraint
  for (let it = 0; it < 50 && hi - lo > 1; it++) {
    const mid = (lo + hi) / 2
    if (fits(mid)) hi = mid; else lo = mid
  }
  return hi
}
