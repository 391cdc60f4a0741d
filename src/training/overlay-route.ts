// Which training peers this node reaches over the overlay (sealed envelopes through relays,
// src/net/overlay/chunk-messenger.ts frames) instead of a connection: a peer no direct or relayed
// connection reached (a coordinator behind its own NAT, a member whose relayed dials fail), or one
// whose frames reach us that way while we hold no connection to it. The choice is sticky, so a
// round does not wait for a dial that keeps failing; once it lapses, a connection is tried in the
// background while frames keep flowing over the overlay, and each failed try doubles the wait.
import type { FrameLink } from '../net/overlay/chunk-messenger.js'

/** How training frames reach other peers: a connection else the overlay (auto), connections only (direct), the overlay only (overlay). */
export type TrainingRouting = 'auto' | 'direct' | 'overlay'

/** How long a peer stays on the overlay after no connection opened to it (doubled per failed retry, up to the max). */
export const OVERLAY_STICKY_MS = 60_000
export const OVERLAY_STICKY_MAX_MS = 10 * 60_000
/** Peers remembered at most (the oldest fall out: a stranger's frames cannot grow this). */
export const MAX_OVERLAY_PEERS = 4096

interface Fallback { until: number, failures: number, why: string, probing: boolean, heard?: boolean }

const stickyMs = (failures: number): number => Math.min(OVERLAY_STICKY_MAX_MS, OVERLAY_STICKY_MS * 2 ** Math.max(0, failures - 1))

/** What to do with the next frame to a peer. */
export interface OverlayChoice {
  /** Send it over the overlay. */
  overlay: boolean
  why?: string
  /** Try a connection in the background now (the stickiness lapsed); report with connected()/probeFailed(). */
  probe: boolean
}

export class OverlayFallbacks {
  private readonly peers = new Map<string, Fallback>()

  constructor (private readonly now: () => number = Date.now) {}

  /** No connection opened to `peer`: its frames take the overlay for a while. */
  fellBack (peer: string, why: string): void {
    const failures = (this.peers.get(peer)?.failures ?? 0) + 1
    this.set(peer, { until: this.now() + stickyMs(failures), failures, why, probing: false })
  }

  /** A connection to `peer` is slow to open: frames take the overlay until it opens (connected) or fails (fellBack). */
  dialing (peer: string): void {
    const old = this.peers.get(peer)
    this.set(peer, { until: Infinity, failures: old?.failures ?? 0, why: 'a connection is slow to open; it is used once it does', probing: true })
  }

  /** A frame from `peer` came over the overlay while we hold no connection to it: answer the same way. */
  heardVia (peer: string): void {
    const old = this.peers.get(peer)
    if (old !== undefined && (old.probing || old.until > this.now())) return
    const failures = Math.max(1, old?.failures ?? 1)
    this.set(peer, { until: this.now() + stickyMs(failures), failures, why: 'it reached us through the overlay and we hold no connection to it', probing: false, heard: true })
  }

  /** Whether `peer` is on the overlay only because it reached us that way (no dial of ours failed). */
  heardOnly (peer: string): boolean { return this.peers.get(peer)?.heard === true }

  /** A connection to `peer` opened (a background try, or the peer dialled us): frames take it again. */
  connected (peer: string): void { this.peers.delete(peer) }

  /** A background try found no connection: stay on the overlay, twice as long as before. */
  probeFailed (peer: string, why: string): void {
    const old = this.peers.get(peer)
    if (old === undefined) return
    const failures = old.failures + 1
    this.set(peer, { until: this.now() + stickyMs(failures), failures, why: `${old.why.replace(/; retried: .*$/, '')}; retried: ${why}`, probing: false })
  }

  choose (peer: string): OverlayChoice {
    const f = this.peers.get(peer)
    if (f === undefined) return { overlay: false, probe: false }
    if (f.probing || f.until > this.now()) return { overlay: true, why: f.why, probe: false }
    f.probing = true
    return { overlay: true, why: f.why, probe: true }
  }

  has (peer: string): boolean { return this.peers.has(peer) }
  get size (): number { return this.peers.size }

  private set (peer: string, f: Fallback): void {
    this.peers.delete(peer)
    this.peers.set(peer, f)
    if (this.peers.size > MAX_OVERLAY_PEERS) this.peers.delete(this.peers.keys().next().value as string)
  }
}

export interface OverlayRouteInit {
  /** The overlay's frames (absent: connections only). */
  link?: () => FrameLink | undefined
  /** The node's routing (config routing.mode). */
  routing?: () => TrainingRouting | undefined
  /** Opens a connection to `peer` (a background try; absent: the next frame tries one itself). */
  connect?: (peer: string, signal: AbortSignal) => Promise<void>
  /** Whether an open connection to `peer` is there now (the peer dialled us, say). */
  connectedNow?: (peer: string) => boolean
  now?: () => number
}

/** The training transport's overlay route: whether a frame takes it, and the background tries to leave it. */
export class OverlayRoute {
  readonly fallbacks: OverlayFallbacks
  private stopping = new AbortController()

  constructor (private readonly init: OverlayRouteInit = {}) {
    this.fallbacks = new OverlayFallbacks(init.now)
  }

  /**
   * The routing of one frame: the node's config `overlay` forces the overlay for every job; else
   * the frame's job's own routing (its spec's `routing`), else the node's (default auto).
   */
  mode (job?: TrainingRouting): TrainingRouting {
    const node = this.init.routing?.()
    return node === 'overlay' ? 'overlay' : job ?? node ?? 'auto'
  }

  /** The node's own routing (config routing.mode; undefined: not set). */
  node (): TrainingRouting | undefined { return this.init.routing?.() }

  /** The overlay's frames when a frame under `mode` may use them now (never under routing: direct). */
  link (mode: TrainingRouting = this.mode()): FrameLink | undefined {
    return mode === 'direct' ? undefined : this.init.link?.()
  }

  /**
   * Why the next frame to `to` (under `mode`) takes the overlay, or undefined (a connection): its
   * routing forces it, or no connection opened to the peer lately (once that lapses, a connection
   * is tried in the background while frames keep going over the overlay).
   */
  why (to: string, mode: TrainingRouting = this.mode()): string | undefined {
    if (this.link(mode) === undefined) return undefined
    if (mode === 'overlay') return this.init.routing?.() === 'overlay' ? 'routing: overlay (the node\'s config: no connection between the peers)' : 'routing: overlay (this job: no connection between the peers)'
    // it reached us over the overlay while no connection was there, and one is there now (it dialled
    // us): take it. Before, a joiner's StateRequests that went over the overlay while its dials were
    // opening had their 200 KB answers held on the overlay for 60 s, behind each other (session 13)
    if (this.fallbacks.heardOnly(to) && this.init.connectedNow?.(to) === true) this.fallbacks.connected(to)
    const c = this.fallbacks.choose(to)
    if (c.probe) void this.tryConnection(to)
    return c.overlay ? `fallback: ${c.why ?? '?'}` : undefined
  }

  start (): void { this.stopping = new AbortController() }
  stop (): void { this.stopping.abort(new Error('training transport stopped')) }
  get signal (): AbortSignal { return this.stopping.signal }

  private async tryConnection (to: string): Promise<void> {
    const connect = this.init.connect
    if (connect === undefined) { this.fallbacks.connected(to); return }
    try {
      await connect(to, AbortSignal.any([AbortSignal.timeout(15_000), this.stopping.signal]))
      this.fallbacks.connected(to)
    } catch (err) {
      this.fallbacks.probeFailed(to, (err as Error).message.slice(0, 120))
    }
  }
}

/** Job routings remembered at most (jobs this node coordinates or works in; the oldest fall out). */
export const MAX_JOB_ROUTES = 1024

/**
 * The routing a member applies to its own frames of a job another node coordinates: the member's
 * operator's config wins (review F5). Node `overlay` forces the overlay; node `direct` keeps
 * connections (an `auto` job stays direct here; an `overlay` job conflicts: 'refuse', the
 * invitation is refused ROUTING_REFUSED); else the job's own routing, else the node's.
 */
export function memberRouting (node: TrainingRouting | undefined, job: TrainingRouting | undefined): TrainingRouting | 'refuse' {
  if (node === 'overlay') return 'overlay'
  if (node === 'direct') return job === 'overlay' ? 'refuse' : 'direct'
  return job ?? node ?? 'auto'
}

/** Peers remembered per job at most (the ones this node sent the job's frames to). */
export const MAX_JOB_PEERS = 1024

/**
 * Each training job's own routing, by (coordinator, job id): a remote coordinator picks its job
 * ids, so one can never overwrite or end the route of a job this node (or another coordinator)
 * runs. Set while the job runs here (its session: coordinator this node; or this node's worker
 * in it): the frames of the job follow it. `onEnd` hears a job leave (ended, or pushed out past
 * the bound) with its coordinator and the peers this node sent its frames to (`notePeer`).
 */
export class JobRoutes {
  private readonly jobs = new Map<string, { jobId: string, coordinator: string, mode: TrainingRouting, peers: Set<string> }>()

  constructor (private readonly self: string, private readonly onEnd?: (jobId: string, coordinator: string, peers: ReadonlySet<string>) => void) {}

  private key (jobId: string, coordinator: string): string { return `${coordinator}/${jobId}` }

  set (jobId: string, mode: TrainingRouting | undefined, coordinator: string = this.self): void {
    if (mode === undefined) { this.delete(jobId, coordinator); return }
    const k = this.key(jobId, coordinator)
    const peers = this.jobs.get(k)?.peers ?? new Set<string>()
    this.jobs.delete(k)
    this.jobs.set(k, { jobId, coordinator, mode, peers })
    if (this.jobs.size > MAX_JOB_ROUTES) {
      const [oldKey, old] = this.jobs.entries().next().value as [string, { jobId: string, coordinator: string, peers: Set<string> }]
      this.jobs.delete(oldKey)
      this.onEnd?.(old.jobId, old.coordinator, old.peers)
    }
  }

  get (jobId: string | undefined, coordinator: string = this.self): TrainingRouting | undefined { return jobId === undefined ? undefined : this.jobs.get(this.key(jobId, coordinator))?.mode }

  delete (jobId: string, coordinator: string = this.self): void {
    const k = this.key(jobId, coordinator)
    const j = this.jobs.get(k)
    if (j === undefined) return
    this.jobs.delete(k)
    this.onEnd?.(jobId, coordinator, j.peers)
  }

  /** `peer` takes frames of a running job (not remembered for a job not running here). */
  notePeer (jobId: string | undefined, coordinator: string, peer: string): void {
    const j = jobId === undefined ? undefined : this.jobs.get(this.key(jobId, coordinator))
    if (j !== undefined && j.peers.size < MAX_JOB_PEERS) j.peers.add(peer)
  }

  /** Whether a job still running here sends frames to `peer`. */
  busy (peer: string): boolean {
    for (const j of this.jobs.values()) if (j.peers.has(peer)) return true
    return false
  }
}
