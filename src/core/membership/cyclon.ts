// Cyclon partial view (Voulgaris et al. 2005) as a sans-IO machine. Every period the node ages
// its entries, removes the oldest peer Q and sends Q a random subset plus a fresh descriptor of
// itself; Q answers with a subset of its own view and both merge, replacing what they sent.
// A peer that does not answer in time stays removed: liveness falls out of the shuffles.
// Generic over the peer key P (a peer id string at runtime, a dense integer in the simulator)
// and the descriptor payload D (addresses, location, Vivaldi coordinate).
import type { Rng } from '../rng.js'

export interface ViewEntry<P, D> {
  peer: P
  /** Shuffle rounds since this descriptor was created by its peer. */
  age: number
  data?: D
}

export type CyclonMessage<P, D> =
  | { type: 'shuffle-request', entries: Array<ViewEntry<P, D>> }
  | { type: 'shuffle-response', entries: Array<ViewEntry<P, D>> }

export type MembershipEvent<P> =
  | { type: 'peer-added', peer: P }
  | { type: 'peer-removed', peer: P, reason: 'replaced' | 'failed' | 'timeout' }

export interface CyclonInit<P, D> {
  self: P
  rng: Rng
  /** Time of the first shuffle (ms); defaults to `periodMs` after 0. */
  start?: number
  /** Fresh data about ourselves to put in our own descriptor. */
  selfData?: () => D | undefined
  viewSize?: number
  shuffleLength?: number
  periodMs?: number
  responseTimeoutMs?: number
  /** Fraction of the period the next shuffle time is jittered by, so nodes do not synchronise. */
  jitter?: number
}

export const CYCLON_DEFAULTS = { viewSize: 16, shuffleLength: 6, periodMs: 10_000, responseTimeoutMs: 5_000, jitter: 0.1 }

/**
 * Descriptors one shuffle message may carry: an honest peer sends at most its shuffleLength (a
 * request is its own descriptor plus shuffleLength - 1 others); twice ours leaves room for peers
 * configured differently. A message with more is refused whole, before anything is stored.
 */
export function shuffleEntryLimit (shuffleLength: number): number {
  return 2 * Math.max(1, shuffleLength)
}

/**
 * Screens a shuffle's descriptors before the runtime stores anything about them: undefined when
 * the message carries more than shuffleEntryLimit (the sender is charged); otherwise the entries
 * worth merging: not ourselves, each peer once, a finite non-negative age, at most shuffleLength.
 */
export function screenShuffle<P, D> (self: P, entries: ReadonlyArray<ViewEntry<P, D>>, shuffleLength: number): Array<ViewEntry<P, D>> | undefined {
  if (entries.length > shuffleEntryLimit(shuffleLength)) return undefined
  const out: Array<ViewEntry<P, D>> = []
  const seen = new Set<P>()
  for (const e of entries) {
    if (out.length >= shuffleLength) break
    if (e.peer === self || seen.has(e.peer) || !Number.isFinite(e.age) || e.age < 0) continue
    seen.add(e.peer)
    out.push(e)
  }
  return out
}

interface PendingShuffle<P, D> { peer: P, sent: Array<ViewEntry<P, D>>, deadline: number }

export class CyclonView<P, D = undefined> {
  readonly self: P
  readonly viewSize: number
  readonly shuffleLength: number
  readonly periodMs: number
  readonly responseTimeoutMs: number
  private readonly jitter: number
  private readonly rng: Rng
  private readonly selfData?: () => D | undefined
  private view: Array<ViewEntry<P, D>> = []
  private pending: Array<PendingShuffle<P, D>> = []
  private nextShuffleAt: number
  private outbound: Array<{ to: P, msg: CyclonMessage<P, D> }> = []
  private events: Array<MembershipEvent<P>> = []

  constructor (init: CyclonInit<P, D>) {
    this.self = init.self
    this.rng = init.rng
    this.selfData = init.selfData
    this.viewSize = init.viewSize ?? CYCLON_DEFAULTS.viewSize
    this.shuffleLength = Math.min(init.shuffleLength ?? CYCLON_DEFAULTS.shuffleLength, this.viewSize)
    this.periodMs = init.periodMs ?? CYCLON_DEFAULTS.periodMs
    this.responseTimeoutMs = init.responseTimeoutMs ?? CYCLON_DEFAULTS.responseTimeoutMs
    this.jitter = init.jitter ?? CYCLON_DEFAULTS.jitter
    this.nextShuffleAt = (init.start ?? 0) + this.periodMs
  }

  /** Adds known peers (bootstrap, or a peer that connected to us). Ignores self and duplicates. */
  addPeers (entries: Iterable<ViewEntry<P, D> | P>): void {
    for (const e of entries) {
      const entry: ViewEntry<P, D> = isEntry<P, D>(e) ? e : { peer: e, age: 0 }
      if (entry.peer === this.self || this.indexOf(entry.peer) >= 0) continue
      if (this.view.length >= this.viewSize) break
      this.view.push({ ...entry })
      this.events.push({ type: 'peer-added', peer: entry.peer })
    }
  }

  /** Drives time: times out unanswered shuffles and starts one when due. */
  tick (now: number): void {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const p = this.pending[i]
      if (p.deadline <= now) {
        this.pending.splice(i, 1)
        this.events.push({ type: 'peer-removed', peer: p.peer, reason: 'timeout' })
      }
    }
    if (now < this.nextShuffleAt) return
    const j = this.periodMs * this.jitter
    this.nextShuffleAt = now + this.periodMs + (j > 0 ? (this.rng.next() * 2 - 1) * j : 0)
    this.startShuffle(now)
  }

  private startShuffle (now: number): void {
    if (this.view.length === 0) return
    for (const e of this.view) e.age++
    let oldest = 0
    for (let i = 1; i < this.view.length; i++) {
      if (this.view[i].age > this.view[oldest].age || (this.view[i].age === this.view[oldest].age && this.rng.next() < 0.5)) oldest = i
    }
    const q = this.view[oldest]
    this.view.splice(oldest, 1)
    // A peer whose previous shuffle is still open is not asked twice.
    this.pending = this.pending.filter(p => p.peer !== q.peer)
    const sent = this.randomEntries(this.shuffleLength - 1, q.peer)
    const self: ViewEntry<P, D> = { peer: this.self, age: 0 }
    const data = this.selfData?.()
    if (data !== undefined) self.data = data
    this.pending.push({ peer: q.peer, sent, deadline: now + this.responseTimeoutMs })
    this.outbound.push({ to: q.peer, msg: { type: 'shuffle-request', entries: [self, ...sent.map(copy)] } })
  }

  /** A peer's shuffle request: answer with a random subset, then merge what it sent. */
  handleShuffleRequest (now: number, from: P, entries: Array<ViewEntry<P, D>>): void {
    void now
    const sent = this.randomEntries(this.shuffleLength, from)
    this.outbound.push({ to: from, msg: { type: 'shuffle-response', entries: sent.map(copy) } })
    this.merge(entries.slice(0, this.shuffleLength), sent)
  }

  /** The answer to our request; unsolicited responses are ignored. */
  handleShuffleResponse (now: number, from: P, entries: Array<ViewEntry<P, D>>): boolean {
    void now
    const i = this.pending.findIndex(p => p.peer === from)
    if (i < 0) return false
    const { sent } = this.pending[i]
    this.pending.splice(i, 1)
    this.merge(entries.slice(0, this.shuffleLength), sent)
    return true
  }

  /** A dial or stream to `peer` failed, or it left: forget it. */
  peerFailed (now: number, peer: P): void {
    void now
    const i = this.indexOf(peer)
    const wasPending = this.pending.some(p => p.peer === peer)
    this.pending = this.pending.filter(p => p.peer !== peer)
    if (i >= 0) this.view.splice(i, 1)
    if (i >= 0 || wasPending) this.events.push({ type: 'peer-removed', peer, reason: 'failed' })
  }

  private merge (received: Array<ViewEntry<P, D>>, sent: Array<ViewEntry<P, D>>): void {
    const replaceable = sent.map(e => e.peer)
    for (const r of received) {
      if (r.peer === this.self || !Number.isFinite(r.age) || r.age < 0) continue
      const i = this.indexOf(r.peer)
      if (i >= 0) {
        // Keep the fresher descriptor.
        if (r.age < this.view[i].age) this.view[i] = copy(r)
        continue
      }
      if (this.view.length < this.viewSize) {
        this.view.push(copy(r))
        this.events.push({ type: 'peer-added', peer: r.peer })
        continue
      }
      while (replaceable.length > 0) {
        const victim = replaceable.pop() as P
        const j = this.indexOf(victim)
        if (j < 0) continue
        this.view[j] = copy(r)
        this.events.push({ type: 'peer-removed', peer: victim, reason: 'replaced' })
        this.events.push({ type: 'peer-added', peer: r.peer })
        break
      }
    }
  }

  private randomEntries (n: number, exclude: P): Array<ViewEntry<P, D>> {
    const pool = this.view.filter(e => e.peer !== exclude)
    shuffleInPlace(pool, this.rng)
    return pool.slice(0, Math.max(0, n))
  }

  private indexOf (peer: P): number {
    for (let i = 0; i < this.view.length; i++) if (this.view[i].peer === peer) return i
    return -1
  }

  /** Up to n distinct random peers from the view, excluding `exclude`. */
  sample (n: number, exclude: readonly P[] = []): P[] {
    const pool: P[] = []
    for (const e of this.view) if (!exclude.includes(e.peer)) pool.push(e.peer)
    shuffleInPlace(pool, this.rng)
    return pool.length > n ? pool.slice(0, n) : pool
  }

  has (peer: P): boolean { return this.indexOf(peer) >= 0 }
  peers (): P[] { return this.view.map(e => e.peer) }
  entries (): ReadonlyArray<Readonly<ViewEntry<P, D>>> { return this.view }
  get size (): number { return this.view.length }

  pollOutbound (): Array<{ to: P, msg: CyclonMessage<P, D> }> {
    const out = this.outbound
    this.outbound = []
    return out
  }

  pollEvents (): Array<MembershipEvent<P>> {
    const out = this.events
    this.events = []
    return out
  }

  /** When `tick` next has work: the next shuffle or the earliest response deadline. */
  nextTimeout (): number {
    let t = this.nextShuffleAt
    for (const p of this.pending) if (p.deadline < t) t = p.deadline
    return t
  }
}

function copy<P, D> (e: ViewEntry<P, D>): ViewEntry<P, D> {
  return e.data === undefined ? { peer: e.peer, age: e.age } : { peer: e.peer, age: e.age, data: e.data }
}

function isEntry<P, D> (e: ViewEntry<P, D> | P): e is ViewEntry<P, D> {
  return typeof e === 'object' && e !== null && 'peer' in e && 'age' in e
}

export function shuffleInPlace<T> (a: T[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1)
    const t = a[i]; a[i] = a[j]; a[j] = t
  }
}
