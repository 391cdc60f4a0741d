// Churn: every node alternates online sessions (Pareto, heavy-tailed: most sessions are
// short, a few last very long, as measured in deployed P2P networks) and offline gaps
// (exponential). The start is stationary: a node is up with probability equal to the
// long-run availability.
import type { EventQueue } from '../engine/event-queue.js'
import type { SimRandom } from '../engine/random.js'

export const EVENT_NODE_DOWN = 3
export const EVENT_NODE_UP = 4

export interface ChurnOptions {
  /** Mean online session, ms. */
  meanSessionMs: number
  /** Pareto shape (> 1); 1.5 is a common fit. */
  paretoShape: number
  /** Mean offline gap, ms. */
  meanOfflineMs: number
}

export class ChurnProcess {
  downs = 0
  ups = 0
  constructor (private readonly q: EventQueue, private readonly rng: SimRandom, readonly opts: ChurnOptions) {}

  session (): number {
    const a = this.opts.paretoShape
    return this.rng.pareto(this.opts.meanSessionMs * (a - 1) / a, a)
  }

  /** Sets the initial online flags and schedules every node's first transition. */
  start (online: Uint8Array, now: number): void {
    const avail = this.opts.meanSessionMs / (this.opts.meanSessionMs + this.opts.meanOfflineMs)
    for (let i = 0; i < online.length; i++) {
      if (this.rng.next() < avail) {
        online[i] = 1
        this.q.push(now + this.rng.next() * this.session(), EVENT_NODE_DOWN, i, 0, 0)
      } else {
        online[i] = 0
        this.q.push(now + this.rng.exp(this.opts.meanOfflineMs), EVENT_NODE_UP, i, 0, 0)
      }
    }
  }

  /** Applies a popped NODE_DOWN/NODE_UP event and schedules the next one (none after `until`). */
  handle (now: number, kind: number, node: number, online: Uint8Array, until = Infinity): void {
    if (kind === EVENT_NODE_DOWN) {
      online[node] = 0; this.downs++
      if (now < until) this.q.push(now + this.rng.exp(this.opts.meanOfflineMs), EVENT_NODE_UP, node, 0, 0)
    } else {
      online[node] = 1; this.ups++
      if (now < until) this.q.push(now + this.session(), EVENT_NODE_DOWN, node, 0, 0)
    }
  }
}
