// Peer scores: misbehaviour costs points, good service earns a few back, everything decays
// toward zero with a half-life. Below the threshold the runtime disconnects the peer and refuses
// it until its score has decayed back above the threshold.

export type Offence =
  | 'forged' | 'undecryptable' | 'oversized' | 'malformed' | 'replayed' | 'expired' | 'wrong-recipient'
  | 'invalid-gossip' | 'invalid-record' | 'timeout' | 'protocol-error'
  /** Broke a resource budget: too many streams, too many bytes buffered (src/net/guard). */
  | 'over-budget'
  /** Held a frame open past its read deadline (slowloris), or opened a stream and sent nothing. */
  | 'slow-frame'

export const DEFAULT_PENALTIES: Readonly<Record<Offence, number>> = {
  forged: 50,
  undecryptable: 25,
  oversized: 25,
  malformed: 20,
  'invalid-record': 20,
  replayed: 15,
  'invalid-gossip': 10,
  'protocol-error': 10,
  // an honest peer stays inside its budgets and deadlines; ten such offences within a half-life ban
  'over-budget': 10,
  'slow-frame': 10,
  expired: 5,
  'wrong-recipient': 5,
  timeout: 2
}

export interface ScoreBookInit {
  /** Disconnect at or below this score. */
  threshold?: number
  /** Scores halve toward zero in this many ms. */
  halfLifeMs?: number
  /** Highest positive score (good behaviour can not buy unlimited credit). */
  maxScore?: number
  maxPeers?: number
  penalties?: Partial<Record<Offence, number>>
}

export const SCORE_DEFAULTS = { threshold: -100, halfLifeMs: 10 * 60_000, maxScore: 20, maxPeers: 10_000 }

export class PeerScoreBook<P = string> {
  private readonly scores = new Map<P, { score: number, at: number }>()
  readonly threshold: number
  private readonly halfLifeMs: number
  private readonly maxScore: number
  private readonly maxPeers: number
  private readonly penalties: Record<Offence, number>

  constructor (init: ScoreBookInit = {}) {
    this.threshold = init.threshold ?? SCORE_DEFAULTS.threshold
    this.halfLifeMs = init.halfLifeMs ?? SCORE_DEFAULTS.halfLifeMs
    this.maxScore = init.maxScore ?? SCORE_DEFAULTS.maxScore
    this.maxPeers = init.maxPeers ?? SCORE_DEFAULTS.maxPeers
    this.penalties = { ...DEFAULT_PENALTIES, ...init.penalties }
  }

  score (now: number, peer: P): number {
    const s = this.scores.get(peer)
    if (s === undefined) return 0
    return s.score * Math.pow(0.5, Math.max(0, now - s.at) / this.halfLifeMs)
  }

  private set (now: number, peer: P, score: number): void {
    if (!this.scores.has(peer) && this.scores.size >= this.maxPeers) {
      // Forget the peer whose score is closest to neutral: it carries the least information.
      let victim: P | undefined; let best = Infinity
      for (const [p] of this.scores) { const a = Math.abs(this.score(now, p)); if (a < best) { best = a; victim = p } }
      if (victim !== undefined) this.scores.delete(victim)
    }
    this.scores.set(peer, { score, at: now })
  }

  /** Charges `peer` for an offence; `disconnect` says whether it is now at or below the threshold. */
  penalize (now: number, peer: P, offence: Offence): { score: number, disconnect: boolean } {
    const score = this.score(now, peer) - this.penalties[offence]
    this.set(now, peer, score)
    return { score, disconnect: score <= this.threshold }
  }

  reward (now: number, peer: P, points = 1): number {
    const score = Math.min(this.maxScore, this.score(now, peer) + points)
    this.set(now, peer, score)
    return score
  }

  /** Whether to refuse this peer now (connections, relaying, answers). */
  isBanned (now: number, peer: P): boolean {
    return this.score(now, peer) <= this.threshold
  }

  /** Peers with a negative score now, worst first (for status output). */
  penalized (now: number): Array<{ peer: P, score: number }> {
    const out: Array<{ peer: P, score: number }> = []
    for (const p of this.scores.keys()) { const score = this.score(now, p); if (score < 0) out.push({ peer: p, score }) }
    return out.sort((a, b) => a.score - b.score)
  }

  forget (peer: P): void { this.scores.delete(peer) }
  get size (): number { return this.scores.size }
}
