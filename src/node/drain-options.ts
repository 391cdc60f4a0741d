// How a node stops: gracefully (the tasks running finish first, new leases are refused meanwhile)
// or at once. Shared by the daemon and the CLI (which must not load the daemon to read a default).

/** How long a graceful stop waits for the tasks running to end (`dbc node stop --drain S`). */
export const DRAIN_DEFAULT_S = 30
/** The longest drain an API caller may ask for. */
export const DRAIN_MAX_S = 600

export interface StopOptions {
  /** Stop at once: what runs is cut short (a second Ctrl-C, `dbc node stop --now`). */
  now?: boolean
  /** The drain's deadline in seconds (default DRAIN_DEFAULT_S). */
  drainS?: number
}

/** A POST /v1/stop body as options (bounded; anything else reads as the defaults). */
export function stopOptionsOf (body: unknown): Required<StopOptions> {
  const b = (typeof body === 'object' && body !== null ? body : {}) as StopOptions
  const now = b.now === true
  const drainS = typeof b.drainS === 'number' && Number.isFinite(b.drainS) ? Math.max(0, Math.min(DRAIN_MAX_S, b.drainS)) : DRAIN_DEFAULT_S
  return { now, drainS: now ? 0 : drainS }
}

/**
 * What the `n`th stop signal (SIGINT/SIGTERM, from 1) asks of `dbc node start`: the first drains,
 * the second stops at once, a third exits without waiting for a stop that hangs (review17 L2: with
 * the handler installed, Node's default exit on a signal no longer applies).
 */
export function signalAction (n: number): 'drain' | 'now' | 'exit' {
  return n <= 1 ? 'drain' : n === 2 ? 'now' : 'exit'
}
