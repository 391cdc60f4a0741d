// Peer scores for bad input: every protocol violation costs the sending peer; a peer whose
// score falls below the threshold is disconnected and refused for a while.
// (The overlay's own score book in src/core/routing may replace the bookkeeping; the
// runtime action, closing connections, stays here.)

export interface PeerScoreInit {
  /** Score at which a peer is disconnected. */
  disconnectBelow?: number
  /** Points a peer regains per second of good behaviour. */
  recoveryPerSecond?: number
  /** Most peers tracked (oldest forgotten first). */
  maxPeers?: number
}

export const PENALTY = {
  malformed: 10,
  oversized: 20,
  forged: 50,
  replayed: 5,
  expired: 2
} as const

interface Entry { score: number, updatedAt: number }

export class PeerScores {
  private readonly entries = new Map<string, Entry>()
  private readonly threshold: number
  private readonly recovery: number
  private readonly maxPeers: number

  constructor (init: PeerScoreInit = {}) {
    this.threshold = init.disconnectBelow ?? -100
    this.recovery = init.recoveryPerSecond ?? 0.1
    this.maxPeers = init.maxPeers ?? 10_000
  }

  score (peer: string, now: number): number {
    const e = this.entries.get(peer)
    if (e === undefined) return 0
    return Math.min(0, e.score + ((now - e.updatedAt) / 1000) * this.recovery)
  }

  /** Lowers the peer's score; returns true when it fell below the disconnect threshold. */
  penalize (peer: string, points: number, now: number): boolean {
    const score = this.score(peer, now) - points
    this.entries.delete(peer)
    this.entries.set(peer, { score, updatedAt: now })
    if (this.entries.size > this.maxPeers) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    return score < this.threshold
  }

  isBanned (peer: string, now: number): boolean {
    return this.score(peer, now) < this.threshold
  }

  snapshot (now: number): Array<{ peer: string, score: number }> {
    return [...this.entries.keys()].map(peer => ({ peer, score: this.score(peer, now) })).filter(e => e.score < 0)
  }
}
