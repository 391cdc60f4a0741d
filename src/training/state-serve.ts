// How often a node hands its training state to one peer. A StateRequest is a few bytes and its
// answer the whole model (up to 64 MiB): without a limit, a member that asks again and again (or
// reads slowly while asking) makes the donor encode, sign and queue copy after copy (review s11 H1).
// A joiner asks again after 5 s and 15 s when no answer came (src/training/worker.ts loadState):
// the 5 s one is ignored when the first was answered (its answer may still be on its way: a large
// state over a slow link), the 15 s one is answered again; a request for a later round at once.

/** Least time between two answers of the same round's state to one peer, ms. */
export const STATE_SERVE_GAP_MS = 12_000
/** Peers remembered (the oldest fall out; members and admitted joiners are far fewer). */
const MAX_PEERS = 256

export class StateServeLog {
  private readonly last = new Map<string, { round: number, at: number }>()

  constructor (private readonly gapMs = STATE_SERVE_GAP_MS) {}

  /** Whether `peer` may be handed the state of `round` now (and records it when so). */
  allow (peer: string, round: number, now: number): boolean {
    const prev = this.last.get(peer)
    if (prev !== undefined && prev.round === round && now - prev.at < this.gapMs) return false
    this.last.delete(peer)
    if (this.last.size >= MAX_PEERS) this.last.delete(this.last.keys().next().value as string)
    this.last.set(peer, { round, at: now })
    return true
  }
}
