// Results checked by default (sans-IO decisions): which tasks get a second copy on another
// provider, which provider should run it, and what a provider caught lying loses.
// BOINC-style adaptive replication: a provider's results are all checked until it has
// `trustAfter` results in a row confirmed by another provider ("established"); after that only
// a random `rate` share is. A copy that disagrees with the accepted result catches its provider
// once: every result it gave in the job is invalidated and re-run elsewhere (the job machine
// does that), its reputation is gone, and the payer signs nothing more for it.
import type { ReputationBook } from './reputation.js'
import type { Rng } from '../rng.js'

export interface SpotCheckPolicy {
  /** Share of an established provider's tasks still re-run on a second provider. */
  rate: number
  /** Results in a row confirmed by another provider before a provider is only spot-checked. */
  trustAfter: number
}

export const DEFAULT_SPOT_CHECKS: Readonly<SpotCheckPolicy> = Object.freeze({ rate: 0.1, trustAfter: 10 })

/**
 * Agreeing copies a task needs once its copies disagree: 3, so a pair of colluders returning
 * the same wrong value can not out-vote an honest copy (and get the honest provider caught).
 */
export const DISAGREEMENT_QUORUM = 3

/** Most copies of a checked task: two disagreeing, two liars' more, three agreeing. */
export const SPOT_CHECK_MAX_COPIES = 7

/** Established: `trustAfter` confirmed results in a row (a caught provider starts from zero). */
export function established (rep: ReputationBook, provider: string, p: SpotCheckPolicy): boolean {
  return rep.streak(provider) >= p.trustAfter
}

/**
 * Does a task whose first copy runs on `provider` get a second copy? Always for a provider
 * with little history; for an established one, a `rate` share drawn from the job's seeded rng
 * (the runner seeds it from the CSPRNG, so a provider can not predict which tasks are checked).
 */
export function needsCheck (rep: ReputationBook, provider: string, p: SpotCheckPolicy, rng: Rng): boolean {
  if (!established(rep, provider, p)) return true
  return rng.next() < p.rate
}

/**
 * Should a checking copy (a second opinion or a tie-break) wait for an established provider
 * instead of running on `provider`? Yes when `provider` is new and an established provider that
 * may run it holds a live lease: two new providers (possibly colluding) should not be each
 * other's only check when someone with a record is there.
 */
export function deferCheckTo (rep: ReputationBook, provider: string, p: SpotCheckPolicy, candidates: readonly string[]): boolean {
  if (established(rep, provider, p)) return false
  for (const c of candidates) if (c !== provider && established(rep, c, p)) return true
  return false
}

/**
 * Expected copies per task once every provider is established (the steady-state cost of the
 * default checks, before failures and tie-breaks): 1 + rate.
 */
export function steadyCopiesPerTask (p: SpotCheckPolicy): number { return 1 + p.rate }

/**
 * What one copy of a caught provider's becomes, for a task already decided: its vote is
 * withdrawn. The task stays accepted when the other providers' agreeing copies still make its
 * quorum, and is reopened (re-run elsewhere) when they do not.
 */
export function keepsQuorum (agreeingOthers: number, quorum: number): boolean {
  return agreeingOthers >= quorum
}
