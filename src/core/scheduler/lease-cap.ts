// A job's lease cap (sans-IO): how many leases a job may hold. Each lease costs its submitter a
// lease stream to the provider and its heartbeats (every 200 ms), so the cap is a resource bound
// of the submitter daemon. It counts slots as well as leases: a lease keeps the slot count its
// offer had free when it was leased, often 1 under load, and a cap of leases alone then throttles
// a loaded job to a few dozen slots while capacity idles (simulator/README.md, the grid timeline).
// Rule: a job may open another lease while it holds fewer than `leases` leases, or fewer than
// `slots` slots in all; never more than `slots` leases (a lease has 1 slot at least) in a round
// that tops a running job up. A starved round (the job's first, or one whose leases can run
// nothing) leases at most `leases` offers anew, and never past `slots` leases in all: before it,
// the session releases held leases that can run nothing (starvedExcess; review s9 M2).

/** Most leases a job holds whatever their slots (the runner's default maxLeases). */
export const MAX_LEASES = 64
/** Past MAX_LEASES, a job leases on while its leases hold fewer slots than this; also its hard ceiling of leases. */
export const LEASE_SLOT_BUDGET = 256

export interface LeaseCap {
  /** Leases the job may hold whatever their slots. */
  leases: number
  /** Slot budget past `leases` (0: `leases` is a hard cap); also the most leases at all. */
  slots: number
}

/** Whether a job holding `leases` leases with `slots` slots in all may open one more. */
export function mayLease (cap: LeaseCap, leases: number, slots: number): boolean {
  return leases < cap.leases || (slots < cap.slots && leases < cap.slots)
}

/** An upper bound of the leases a job may still open (each of 1 slot at least). */
export function leasesLeft (cap: LeaseCap, leases: number, slots: number): number {
  if (!mayLease(cap, leases, slots)) return 0
  return Math.max(cap.leases - leases, Math.min(cap.slots - slots, cap.slots - leases))
}

/**
 * How many of these offers, in the order they would be leased (their slot counts), the job may
 * lease now while it holds `held`: each lease counts against the cap as it is opened.
 */
export function leasesAllowed (cap: LeaseCap, held: { leases: number, slots: number }, offerSlots: readonly number[]): number {
  let leases = held.leases
  let slots = held.slots
  let k = 0
  for (const s of offerSlots) {
    if (!mayLease(cap, leases, slots)) break
    leases++
    slots += Math.max(1, s)
    k++
  }
  return k
}

/**
 * How many of a round's offers (their slot counts, in lease order) it may lease: a `more` round
 * tops the job up to its cap; a starved one (its leases can run nothing) may lease anew up to the
 * cap's lease count only, as before the slot budget, so the escrow's reserve (one task per offer
 * leased by the job's first round, README) does not grow with it.
 */
export function leasesForRound (cap: LeaseCap, mode: 'starved' | 'more', held: { leases: number, slots: number }, offerSlots: readonly number[]): number {
  if (mode === 'more') return leasesAllowed(cap, held, offerSlots)
  const fresh = leasesAllowed({ leases: cap.leases, slots: 0 }, { leases: 0, slots: 0 }, offerSlots)
  return cap.slots > 0 ? Math.min(fresh, Math.max(0, cap.slots - held.leases)) : fresh
}

/**
 * Held leases a starved round should release first so that leasing `cap.leases` anew keeps the job
 * within `cap.slots` leases (0 when the cap has no slot budget: `leases` is then a hard cap the
 * machine never passes in a `more` round, and a starved one leases `leases` anew as it always did).
 */
export function starvedExcess (cap: LeaseCap, held: { leases: number }): number {
  if (cap.slots <= 0) return 0
  return Math.max(0, held.leases - Math.max(0, cap.slots - cap.leases))
}

/** The runner's cap from its options: an explicit `maxLeases` with no `maxLeaseSlots` is a hard cap of leases, as before the slot budget. */
export function leaseCapOf (o: { maxLeases?: number, maxLeaseSlots?: number }): LeaseCap {
  return { leases: o.maxLeases ?? MAX_LEASES, slots: o.maxLeaseSlots ?? (o.maxLeases === undefined ? LEASE_SLOT_BUDGET : 0) }
}
