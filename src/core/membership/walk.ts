// TTL-bounded random walks that look for a resource the index misses. The origin sends k
// walkers; each node that holds a match answers the origin directly and stops that walker,
// others pass it to one random view peer with ttl - 1. The origin collects answers until
// it has enough or the deadline passes.
import type { Rng } from '../rng.js'
import { SeenSet } from './seen.js'

export interface Walk<P, Q> {
  id: string
  origin: P
  ttl: number
  query: Q
}

export type WalkOutbound<P, Q, R> =
  | { to: P, type: 'walk', walk: Walk<P, Q> }
  | { to: P, type: 'walk-result', id: string, results: R[] }

export type WalkEvent<R> =
  | { type: 'walk-done', id: string, results: R[], reason: 'enough' | 'timeout' | 'no-peers' }

export interface RandomWalksInit<P> {
  self: P
  rng: Rng
  samplePeers: (n: number, exclude: readonly P[]) => P[]
  maxTtl?: number
  timeoutMs?: number
  /** Walk ids remembered per node so a walker looping back does not answer twice. */
  seenCapacity?: number
  /** Results kept per walk at most (a peer cannot flood us). */
  maxResults?: number
}

export const WALK_DEFAULTS = { maxTtl: 10, timeoutMs: 5_000, seenCapacity: 1024, maxResults: 64 }

interface PendingWalk<R> { id: string, want: number, deadline: number, results: R[] }

export class RandomWalks<P, Q, R> {
  private readonly pending = new Map<string, PendingWalk<R>>()
  private readonly answered: SeenSet<string>
  private outbound: Array<WalkOutbound<P, Q, R>> = []
  private events: Array<WalkEvent<R>> = []
  readonly maxTtl: number
  readonly timeoutMs: number
  readonly maxResults: number

  constructor (private readonly init: RandomWalksInit<P>) {
    this.maxTtl = init.maxTtl ?? WALK_DEFAULTS.maxTtl
    this.timeoutMs = init.timeoutMs ?? WALK_DEFAULTS.timeoutMs
    this.maxResults = init.maxResults ?? WALK_DEFAULTS.maxResults
    this.answered = new SeenSet(init.seenCapacity ?? WALK_DEFAULTS.seenCapacity)
  }

  /** Starts `walkers` walks for `query`; the walk ends with a 'walk-done' event. */
  start (now: number, id: string, query: Q, opts: { walkers?: number, ttl?: number, want?: number } = {}): void {
    const peers = this.init.samplePeers(Math.max(1, opts.walkers ?? 2), [])
    if (peers.length === 0) { this.events.push({ type: 'walk-done', id, results: [], reason: 'no-peers' }); return }
    this.pending.set(id, { id, want: Math.max(1, opts.want ?? 1), deadline: now + this.timeoutMs, results: [] })
    const ttl = Math.min(opts.ttl ?? this.maxTtl, this.maxTtl)
    for (const to of peers) this.outbound.push({ to, type: 'walk', walk: { id, origin: this.init.self, ttl, query } })
  }

  /**
   * A walker reached us. `localMatches` are what we can offer for its query (from our own
   * records or cache). Returns 'answered', 'forwarded', 'ended' (ttl spent) or 'invalid'.
   */
  handleWalk (now: number, from: P, walk: Walk<P, Q>, localMatches: R[]): 'answered' | 'forwarded' | 'ended' | 'invalid' {
    void now
    if (!Number.isInteger(walk.ttl) || walk.ttl < 0 || walk.ttl > this.maxTtl || walk.id === '') return 'invalid'
    if (localMatches.length > 0 && this.answered.add(walk.id)) {
      this.outbound.push({ to: walk.origin, type: 'walk-result', id: walk.id, results: localMatches.slice(0, this.maxResults) })
      return 'answered'
    }
    if (walk.ttl <= 1) return 'ended'
    const next = this.init.samplePeers(1, [from, walk.origin, this.init.self])
    if (next.length === 0) return 'ended'
    this.outbound.push({ to: next[0], type: 'walk', walk: { ...walk, ttl: walk.ttl - 1 } })
    return 'forwarded'
  }

  /** A result for one of our walks; ignored when the walk is unknown or done. */
  handleResult (now: number, from: P, id: string, results: R[]): boolean {
    void now; void from
    const p = this.pending.get(id)
    if (p === undefined) return false
    for (const r of results) if (p.results.length < this.maxResults) p.results.push(r)
    if (p.results.length >= p.want) {
      this.pending.delete(id)
      this.events.push({ type: 'walk-done', id, results: p.results, reason: 'enough' })
    }
    return true
  }

  tick (now: number): void {
    for (const [id, p] of this.pending) {
      if (p.deadline <= now) {
        this.pending.delete(id)
        this.events.push({ type: 'walk-done', id, results: p.results, reason: 'timeout' })
      }
    }
  }

  nextTimeout (): number {
    let t = Infinity
    for (const p of this.pending.values()) if (p.deadline < t) t = p.deadline
    return t
  }

  pollOutbound (): Array<WalkOutbound<P, Q, R>> {
    const out = this.outbound
    this.outbound = []
    return out
  }

  pollEvents (): Array<WalkEvent<R>> {
    const out = this.events
    this.events = []
    return out
  }
}
