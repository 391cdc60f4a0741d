// The route each training peer was last reached on (a connection as the route book classifies
// it, or the overlay through which relays), with the frames and bytes sent on each kind of route:
// GET /v1/status shows it (trainingRoutes), tests read the shares. Bounded, oldest out.
import type { Connection } from '@libp2p/interface'
import type { RouteInfo, RouteKind } from '../net/routes/index.js'

/** How this node reaches one training peer: the route of its outbound stream, and what went each way. */
export interface TrainingRoute extends RouteInfo {
  /** Frames and bytes sent to this peer on each kind of route. */
  frames: Partial<Record<RouteKind, number>>
  bytes: Partial<Record<RouteKind, number>>
  /** Relayed connections opened afresh because one was used up (bytes or age). */
  freshRelayed: number
}

/** Peers whose route this transport remembers (for status and tests; the oldest fall out). */
export const MAX_ROUTES = 1024

export class TrainingRouteLog {
  private readonly routeTo = new Map<string, TrainingRoute>()

  all (): Record<string, TrainingRoute> { return Object.fromEntries(this.routeTo) }
  forget (peer: string): void { this.routeTo.delete(peer) }

  /** A stream to `to` opened on `conn` (classified as `info`); `previous` was the stream's connection before. */
  noteConnection (to: string, info: RouteInfo, conn: Connection, previous: Connection | undefined): void {
    const old = this.routeTo.get(to)
    const fresh = previous !== undefined && previous !== conn && previous.limits !== undefined && conn.limits !== undefined
    this.set(to, { ...info, frames: old?.frames ?? {}, bytes: old?.bytes ?? {}, freshRelayed: (old?.freshRelayed ?? 0) + (fresh ? 1 : 0) })
  }

  /** A frame to `to` went over the overlay through `relays` (the acks' via), because `why`. */
  noteOverlay (to: string, relays: string[], why: string): void {
    const old = this.routeTo.get(to)
    const all = [...new Set([...relays, ...(old?.kind === 'overlay' ? old.relays ?? [] : [])])].slice(0, 8)
    this.set(to, { kind: 'overlay', relays: all, remoteAddr: '', direction: 'outbound', at: Date.now(), facts: `sealed envelopes through overlay relays ${all.length > 0 ? all.join(', ') : '(direct path)'}; ${why}`, frames: old?.frames ?? {}, bytes: old?.bytes ?? {}, freshRelayed: old?.freshRelayed ?? 0 })
  }

  /** One frame of `len` bytes sent to `to` on its current route. */
  count (to: string, len: number): void {
    const r = this.routeTo.get(to)
    if (r === undefined) return
    r.frames[r.kind] = (r.frames[r.kind] ?? 0) + 1
    r.bytes[r.kind] = (r.bytes[r.kind] ?? 0) + len
    r.at = Date.now()
  }

  private set (to: string, r: TrainingRoute): void {
    this.routeTo.delete(to)
    this.routeTo.set(to, r)
    // bounded: peers of past jobs fall out oldest first
    if (this.routeTo.size > MAX_ROUTES) this.routeTo.delete(this.routeTo.keys().next().value as string)
  }
}
