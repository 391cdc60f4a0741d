// Copies that reached us through a relay and failed to open or verify. The relay is not charged
// for them: it forwards a sender's bytes without checking what it can not check (by design), so
// a stranger could otherwise make us disconnect an honest relay by sending junk through it. The
// envelope's sender is not proven by a failed copy either (nothing signed it, or the signature is
// what failed), so neither is charged: failures are counted per (relay, sender) pair instead, and
// a pair with too many has its copies dropped unopened for a while. Pure: the caller passes time.

/** Failures from one (relay, sender) pair before its relayed copies are dropped unopened. */
export const RELAY_PAIR_MAX_FAILURES = 8
/** How long a pair stays muted; also how long its failures are remembered. */
export const RELAY_PAIR_MUTE_MS = 10 * 60_000
/** Pairs remembered at most (least recently touched forgotten first). */
export const RELAY_PAIR_MAX = 1024

interface PairState { failures: number, since: number, mutedUntil: number }

export class RelayFailureBook {
  private readonly pairs = new Map<string, PairState>()

  constructor (private readonly opts: { maxFailures?: number, muteMs?: number, maxPairs?: number } = {}) {}

  get size (): number { return this.pairs.size }

  /** Whether copies of `sender` via `relay` are to be dropped without opening now. */
  muted (now: number, relay: string, sender: string): boolean {
    if (this.pairs.size === 0) return false
    const s = this.pairs.get(pairKey(relay, sender))
    return s !== undefined && s.mutedUntil > now
  }

  /** Counts one failed copy; returns true when this failure mutes the pair. */
  fail (now: number, relay: string, sender: string): boolean {
    const key = pairKey(relay, sender)
    const muteMs = this.opts.muteMs ?? RELAY_PAIR_MUTE_MS
    let s = this.pairs.get(key)
    // failures older than the mute window are forgotten: a rare failure must not add up forever
    if (s === undefined || (s.mutedUntil <= now && now - s.since >= muteMs)) s = { failures: 0, since: now, mutedUntil: 0 }
    this.pairs.delete(key) // re-inserted last: Map order is the LRU order
    if (this.pairs.size >= (this.opts.maxPairs ?? RELAY_PAIR_MAX)) this.pairs.delete(this.pairs.keys().next().value as string)
    s.failures++
    let mutedNow = false
    if (s.failures >= (this.opts.maxFailures ?? RELAY_PAIR_MAX_FAILURES) && s.mutedUntil <= now) {
      s.mutedUntil = now + muteMs
      mutedNow = true
    }
    this.pairs.set(key, s)
    return mutedNow
  }
}

function pairKey (relay: string, sender: string): string {
  return `${relay}\n${sender}`
}
