// Speculation against the predicted time on a faster slot (sans-IO, LATE-style): a copy whose
// predicted end (its start + its lease's predicted run) lies far beyond what a fresh copy would
// take on a free slot of a faster lease gets a twin there; the first answer wins and the other
// copy is cancelled (job-verification.ts accept). The job's own mean (the older rule, kept for
// leases with no prediction) cannot see this: when a late job got only slow leftovers, all its
// copies are slow alike. Measured on the loaded grid stream (simulator/README.md).

/**
 * A twin goes out only when it is predicted to end within 1/SPECULATION_GAIN of the time the
 * running copy still needs: benchmark scores differ up to 2.6x between identical machines
 * (placement.ts QUEUE_WAIT_RUNS), so a smaller lead is noise, and every twin takes a slot
 * another task could use.
 */
export const SPECULATION_GAIN = 3
/** Most speculative copies of one task (a twin lost to churn may be replaced once). */
export const MAX_TWINS_PER_TASK = 2
/**
 * A twin must save at least this much (remaining - its predicted run): for short tasks the
 * predictions are mostly overhead and noise (a loaded host makes every copy late), and a twin
 * would only move work away from where placement put it.
 */
export const MIN_TWIN_SAVING_MS = 10_000
/** Least time between two lease rounds asked only to find a faster slot for stragglers (the `more` search's cap). */
export const FASTER_ROUND_GAP_MS = 30_000
/**
 * Past its predicted end, a copy is taken to need at least this share of its elapsed time again
 * (its task is longer than the mean). 1, not 0.5: task lengths vary per task, and at 0.5 a twin
 * SPECULATION_GAIN x faster went out only once the copy had run 6 twin-runs (a 1,460 s copy on
 * a lease predicted at 783 s was twinned at 1,765 s); at 1, once it has run 3.
 */
export const OVERDUE_SHARE = 1
/**
 * The same share when the job decides whether to ask for a lease round only to find a faster slot
 * (wantsFaster): 0.5 as before. At 1 the default stream (0.04 load) ran twice the lease rounds
 * (818 against 427 a run, seeds 1-10) for no earlier end; each round asks up to 200 providers.
 */
export const FASTER_ROUND_OVERDUE_SHARE = 0.5

export interface StragglerView {
  index: number
  /** Predicted end of its one running copy (absolute ms). */
  endsAt: number
}

export interface FreeLeaseView {
  leaseId: string
  /** Predicted time of one copy there (transfer + run), ms. */
  runMs: number
  /** Free slots. */
  free: number
}

/**
 * Pairs stragglers (latest predicted end first) with the free lease where a twin would end
 * soonest, as long as the twin ends within 1/gain of the straggler's remaining time.
 * `allowed(index, leaseId)`: the task may run there (not on a provider that holds or failed it).
 */
export function pickTwins (now: number, stragglers: readonly StragglerView[], leases: readonly FreeLeaseView[], allowed: (index: number, leaseId: string) => boolean, gain = SPECULATION_GAIN): Array<{ index: number, leaseId: string }> {
  const free = leases.filter(l => l.free > 0 && Number.isFinite(l.runMs)).map(l => ({ ...l })).sort((a, b) => a.runMs - b.runMs)
  if (free.length === 0) return []
  const out: Array<{ index: number, leaseId: string }> = []
  for (const s of [...stragglers].sort((a, b) => b.endsAt - a.endsAt)) {
    const remaining = s.endsAt - now
    // the fastest free lease first; none faster enough: later stragglers end sooner, so stop
    if (!saves(remaining, free[0].runMs, gain)) break
    const l = free.find(x => x.free > 0 && saves(remaining, x.runMs, gain) && allowed(s.index, x.leaseId))
    if (l === undefined) continue
    l.free--
    out.push({ index: s.index, leaseId: l.leaseId })
    if (l.free === 0) free.splice(free.indexOf(l), 1)
    if (free.length === 0) break
  }
  return out
}

/** Whether a faster slot than the job holds would pay for a twin: some straggler's remaining time is over gain x the fastest run seen. */
export function wantsFasterSlot (now: number, stragglers: readonly StragglerView[], fastestRunMs: number, gain = SPECULATION_GAIN): boolean {
  if (!Number.isFinite(fastestRunMs)) return false
  for (const s of stragglers) if (saves(s.endsAt - now, fastestRunMs, gain)) return true
  return false
}

/** A twin of `runMs` pays against a copy that still needs `remaining`: gain x faster, and by MIN_TWIN_SAVING_MS at least. */
function saves (remaining: number, runMs: number, gain: number): boolean {
  return gain * runMs <= remaining && remaining - runMs >= MIN_TWIN_SAVING_MS
}
