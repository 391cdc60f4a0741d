// Adaptive round deadlines: an EWMA of measured round times, times a safety factor, plus a
// margin, clamped to [min, max]. Hivemind's fixed timeouts either stall a round on a dead
// peer (too long) or drop healthy stragglers (too short); measuring removes the guess.

export interface DeadlinePolicy {
  /** Deadline before any round was measured. */
  initialMs: number
  minMs: number
  maxMs: number
  /** Multiplier on the smoothed round time (headroom for jitter). */
  factor: number
  /** Added after the multiplier (covers fixed costs such as one more RTT). */
  marginMs: number
  /** EWMA weight of the newest sample, in (0, 1]. */
  alpha: number
}

export const DEFAULT_DEADLINE_POLICY: DeadlinePolicy = {
  initialMs: 30_000,
  minMs: 500,
  maxMs: 120_000,
  factor: 2,
  marginMs: 500,
  alpha: 0.3
}

export interface DeadlineState {
  /** Smoothed round time in ms; undefined until the first sample. */
  ewmaMs: number | undefined
  samples: number
}

export const INITIAL_DEADLINE_STATE: DeadlineState = { ewmaMs: undefined, samples: 0 }

/** Folds one measured round time into the estimate (only rounds that finished on their own). */
export function observeRoundTime (state: DeadlineState, roundMs: number, policy: DeadlinePolicy = DEFAULT_DEADLINE_POLICY): DeadlineState {
  if (!Number.isFinite(roundMs) || roundMs < 0) return state
  const ewmaMs = state.ewmaMs === undefined ? roundMs : policy.alpha * roundMs + (1 - policy.alpha) * state.ewmaMs
  return { ewmaMs, samples: state.samples + 1 }
}

/** The deadline for the next round. */
export function roundDeadline (state: DeadlineState, policy: DeadlinePolicy = DEFAULT_DEADLINE_POLICY): number {
  if (state.ewmaMs === undefined) return clamp(policy.initialMs, policy.minMs, policy.maxMs)
  return clamp(state.ewmaMs * policy.factor + policy.marginMs, policy.minMs, policy.maxMs)
}

function clamp (x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x))
}
