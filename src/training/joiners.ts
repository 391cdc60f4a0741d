// The coordinator's waits for peers invited into a running training job (src/training/session.ts):
// each invitation waits for the peer's Join; one that accepted and loads the state waits longer,
// extended by its donors' reports that they serve it, up to its whole load; a wait that lapses
// lets the peer be invited again, a bounded number of times.
import { performance } from 'node:perf_hooks'

/** Invitations at most to one peer to join a running job (one, then again after each that brought no Join in time). */
export const MAX_INVITATIONS = 3
/** Donors named in an invitation to a running job (the joiner tries each in turn). */
export const MAX_JOIN_DONORS = 8

export interface JoinerWaitsInit {
  /** How long an invited joiner has to load the state and ask to join, ms. */
  joinTimeoutMs: number
  /** What an accepted joiner's load may take per donor it was given, ms. */
  joinLoadTimeoutMs: number
  /** A wait lapsed with no Join: `invitations` is how many the peer was sent. */
  onLapse: (peer: string, invitations: number) => void
}

export class JoinerWaits {
  /** Peers invited to join the running job, each with its wait: admitted (from the next round) once they ask. */
  private readonly waits = new Map<string, NodeJS.Timeout>()
  /** Invitations sent to each peer asked to join the running job. */
  private readonly invitations = new Map<string, number>()
  /** Invited joiners that accepted and load the state: each invitation's wait grows once, to the joiner's whole load. */
  private readonly loading = new Set<string>()
  /** Each invited joiner's donors (the members told to serve it the state). */
  private readonly donors = new Map<string, string[]>()
  /** An accepted joiner whose donors all report whom they serve: when its wait ends at the latest (performance.now ms). */
  private readonly loadCap = new Map<string, number>()
  /** Members whose reports fill `serving` (RoundReport.reports_serving): only their word can extend a joiner's wait. */
  private readonly servingReporters = new Set<string>()

  constructor (private readonly init: JoinerWaitsInit) {}

  has (peer: string): boolean { return this.waits.has(peer) }
  get size (): number { return this.waits.size }
  peers (): IterableIterator<string> { return this.waits.keys() }

  /** A member's report says it names whom it serves (bounded: only members are passed in). */
  reportsServing (member: string): void { if (this.servingReporters.size < 1024) this.servingReporters.add(member) }

  /** `peer` is invited with these donors: its wait starts; returns how many invitations it has had. */
  invited (peer: string, donors: string[]): number {
    const tries = (this.invitations.get(peer) ?? 0) + 1
    this.invitations.set(peer, tries)
    this.forgetLoad(peer)
    this.waitFor(peer, this.init.joinTimeoutMs)
    this.donors.set(peer, donors)
    return tries
  }

  /**
   * An invited joiner accepted: it now loads the state (up to joinLoadTimeoutMs from each of the
   * `memberCount` donors it may try) and asks to join when done, loaded or not. Inviting it again
   * meanwhile would restart its load (its node treats an invitation for a job it runs as a resume):
   * wait for the whole load. `lastDeadlineMs`: the last round's deadline (0 before any round).
   */
  accepted (peer: string, memberCount: number, lastDeadlineMs: number): void {
    if (!this.waits.has(peer) || this.loading.has(peer)) return
    this.loading.add(peer)
    const donors = Math.max(1, Math.min(MAX_JOIN_DONORS, memberCount))
    const joinMs = this.init.joinTimeoutMs
    const wholeLoad = joinMs + donors * this.init.joinLoadTimeoutMs
    // its acceptance is only its word: with donors that report whom they serve, it waits joinTimeout,
    // extended by each report that it loads, up to the whole load (review s12 L6: a silent invitee
    // held the slot for the whole load); a donor from before reports nothing: the whole load at once
    const named = this.donors.get(peer) ?? []
    if (named.length > 0 && named.every(d => this.servingReporters.has(d))) {
      this.loadCap.set(peer, performance.now() + wholeLoad)
      // the donors report once a round: with rounds longer than joinTimeout, wait two round deadlines
      // for the first report, or an honest loader's wait lapses before any donor could name it (review s14 L5)
      this.waitFor(peer, Math.min(wholeLoad, Math.max(joinMs, 2 * lastDeadlineMs)))
    } else this.waitFor(peer, wholeLoad)
  }

  /** A donor of `peer` reported sending it the state: its wait runs on, up to its whole load. */
  served (peer: string, donor: string): void {
    const cap = this.loadCap.get(peer)
    if (cap === undefined || !this.loading.has(peer) || !(this.donors.get(peer) ?? []).includes(donor)) return
    const ms = Math.min(this.init.joinTimeoutMs + this.init.joinLoadTimeoutMs, cap - performance.now())
    if (ms > 0) this.waitFor(peer, ms)
  }

  /** `peer` asked to join: its wait ends. */
  joined (peer: string): void {
    clearTimeout(this.waits.get(peer))
    this.waits.delete(peer)
    this.forgetLoad(peer)
  }

  /** The job ended: no wait left running. */
  clear (): void {
    for (const t of this.waits.values()) clearTimeout(t)
    this.waits.clear()
    this.loadCap.clear()
    this.donors.clear()
  }

  /**
   * Waits `ms` for an invited joiner's Join; after that, the peer may be invited again (a bounded
   * number of times: an invitation that was lost, refused as busy, or a trainer that took too long).
   */
  private waitFor (peer: string, ms: number): void {
    clearTimeout(this.waits.get(peer))
    this.waits.set(peer, setTimeout(() => {
      this.waits.delete(peer)
      this.forgetLoad(peer)
      this.init.onLapse(peer, this.invitations.get(peer) ?? 0)
    }, ms))
  }

  private forgetLoad (peer: string): void {
    this.loading.delete(peer)
    this.loadCap.delete(peer)
    this.donors.delete(peer)
  }
}
