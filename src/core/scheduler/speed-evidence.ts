// What the job knows of its providers' speed (sans-IO), so speculation acts on evidence and not on
// offers' unverified perf_score alone: a provider's copy time once the job measured one, the fastest
// offer of recent lease rounds (not a lifetime minimum: a fast provider seen once and busy since, or
// a liar's one claim, must not count for ever), one release (of one or more slow leases) per lease
// round, and no more releases for a claimed speed that a release already failed to obtain.

/** Releases for a faster slot that obtained none, after which the job stops releasing for good. */
/**
 * The fastest offer counts for rounds this recent only (a lifetime minimum keeps a gone or lying
 * offer for ever). The loaded grid stream: the latest round alone gave 3.02 / 3.28 / 3.83x (seeds
 * 1-3), 2 min 3.22 / 4.00 / 2.98x, 10 min 2.98 / 2.91 / 2.61x (a lifetime 3.00 / 2.87 / 2.61x).
 */
export const FASTEST_WINDOW_MS = 600_000
/** Releases in a row after which no lease round leased anything faster: the job stops releasing. */
export const MAX_FRUITLESS_RELEASES = 4

export class SpeedEvidence {
  /** Copy time (ms, start to ok answer) last measured per provider in this job. */
  private readonly measured = new Map<string, number>()
  /** The latest lease round's least predicted copy time on a usable offer (Infinity: none). */
  fastestRunMs = Infinity
  /** Copy time of the (fastest) lease released for a faster slot since the last round; undefined: none. */
  private releasedRunMs: number | undefined
  /** A lease leased since that release is faster than the released one. */
  private paid = false
  private fruitless = 0
  /** A claimed fastest time a release already failed to obtain: the same claim releases nothing more. */
  private distrustAtOrAbove = Infinity

  /** The copy time to reckon with on a lease of `provider`: measured if the job has it, else its offer's claim. */
  runMsOf (provider: string, claimed: number | undefined): number | undefined {
    return this.measured.get(provider) ?? claimed
  }


  /** An ok copy ended: its provider's measured copy time (latest). */
  copyMeasured (provider: string, ms: number): void {
    if (ms >= 0) this.measured.set(provider, ms)
  }

  /** A lease was granted with this copy time: did it pay off a release made for a faster slot? */
  leased (runMs: number | undefined): void {
    if (this.releasedRunMs !== undefined && runMs !== undefined && runMs < this.releasedRunMs) this.paid = true
  }

  /** Recent rounds' fastest offers (at, ms), oldest first. */
  private readonly recent: Array<{ at: number, ms: number }> = []

  /** A lease round ended with its fastest usable offer. */
  roundEnded (now: number, runMs: number | undefined): void {
    if (this.releasedRunMs !== undefined) {
      if (this.paid) { this.fruitless = 0; this.distrustAtOrAbove = Infinity } else { this.fruitless++; this.distrustAtOrAbove = Math.min(this.distrustAtOrAbove, this.fastestRunMs) }
    }
    this.releasedRunMs = undefined
    this.paid = false
    if (runMs !== undefined && runMs > 0) this.recent.push({ at: now, ms: runMs })
    while (this.recent.length > 0 && (this.recent[0].at < now - FASTEST_WINDOW_MS || this.recent.length > 64)) this.recent.shift()
    let best = Infinity
    for (const r of this.recent) best = Math.min(best, r.ms)
    this.fastestRunMs = best
  }

  /** Whether a slow lease may be released now (one per round, none once claims proved empty). */
  mayRelease (): boolean {
    return this.releasedRunMs === undefined && this.fruitless < MAX_FRUITLESS_RELEASES && this.fastestRunMs < this.distrustAtOrAbove
  }

  /** A slow lease was released to make room for a faster slot. */
  released (runMs: number): void { this.releasedRunMs = runMs }
}
