// Nodes joining and keeping their tables fresh, as kad-dht 16 does it:
// - join: the node knows 1 to 3 bootstrap servers (both ends add each other: the dial is a
//   connection, and kad-dht's topology listener adds a connected DHT server), then runs its
//   self-query (getClosestPeers on its own id; query-self.js; every other query waits for
//   it) and then the table refresh that kad-dht started at startup (routing-table/refresh.js:
//   one getClosestPeers walk to a random key per common prefix length 0..c, c = the largest
//   common prefix *in whole bytes* with any contact, computed when the refresh was called:
//   with the empty table at startup that is cpl 0 only);
// - every refreshIntervalMs (5 min) the self-query and the refresh (cpl 0..c, c <= 15) run again;
// - a node that comes back after being offline starts with an empty table and joins again.
// The walks are KadLookups getClosestPeers walks, so every table entry comes from a peer
// that answered or queried (the lookups' learn hooks).
import type { EventQueue } from '../engine/event-queue.js'
import type { SimRandom } from '../engine/random.js'
import { KAD_PARAMS } from '../../src/net/kad-params.js'
import type { KadIds } from './ids.js'
import type { KadLookups } from './lookup.js'
import type { TrieTables } from './trie-tables.js'

export const EVENT_JOIN = 20
export const EVENT_REFRESH = 21
/** No longer scheduled (walks wait for a lookup slot in KadLookups' queue); kept so drivers' dispatch stays valid. */
export const EVENT_WALK_RETRY = 22

export interface MaintenanceOptions {
  bootstrapMin: number
  bootstrapMax: number
  refreshIntervalMs: number
  /** No periodic refresh is scheduled at or after this virtual time. */
  until: number
}

export const DEFAULT_MAINTENANCE: MaintenanceOptions = { bootstrapMin: 1, bootstrapMax: 3, refreshIntervalMs: KAD_PARAMS.refreshIntervalMs, until: Infinity }

const JOIN_SELF = 0
const JOIN_REFRESH = 1
const PERIODIC = 2

export class KadMaintenance {
  readonly opts: MaintenanceOptions
  /** Servers that have joined and are online: bootstrap candidates (swap-remove set). */
  private readonly pool: Int32Array
  private readonly poolPos: Int32Array
  private poolLen = 0
  /** Join walks still running per node (0: not joining). */
  private readonly joining: Uint8Array
  /** Session number per node: a refresh scheduled in an earlier session is dropped. */
  private readonly epoch: Uint16Array
  private readonly key = new Float64Array(2)
  joinsStarted = 0
  joinsDone = 0
  /** Walks that found every lookup slot busy and waited for one. */
  retries = 0
  onJoined: ((n: number, now: number) => void) | null = null

  constructor (private readonly q: EventQueue, private readonly lookups: KadLookups, private readonly tables: TrieTables,
    private readonly ids: KadIds, private readonly online: Uint8Array, private readonly isServer: Uint8Array,
    private readonly rng: SimRandom, opts: Partial<MaintenanceOptions> = {}) {
    this.opts = { ...DEFAULT_MAINTENANCE, ...opts }
    const n = ids.count
    this.pool = new Int32Array(n); this.poolPos = new Int32Array(n).fill(-1)
    this.joining = new Uint8Array(n); this.epoch = new Uint16Array(n)
    lookups.onWalkDone = (tag, now) => { this.walkDone(tag, now) }
    // A walk that waited for a slot still runs only if its node is in the same session.
    lookups.admitWalk = (tag, ctx) => { const n = Math.floor(tag / 4); return this.online[n] === 1 && this.epoch[n] === ctx }
  }

  /**
   * Node n comes online (first time or again, with an empty table) and joins, from
   * `bootstrap` when given (calibration replays real joins) or 1-3 random joined servers.
   */
  join (now: number, n: number, bootstrap?: number[]): void {
    this.online[n] = 1
    this.epoch[n]++
    this.tables.clear(n)
    this.joinsStarted++
    const boot = bootstrap ?? []
    if (bootstrap === undefined) {
      const want = this.opts.bootstrapMin + this.rng.int(this.opts.bootstrapMax - this.opts.bootstrapMin + 1)
      for (let i = 0; i < want && this.poolLen > 0; i++) boot.push(this.pool[this.rng.int(this.poolLen)])
    }
    for (const b of boot) {
      this.tables.learn(n, b)
      if (this.isServer[n] === 1) this.tables.learn(b, n)
    }
    this.joining[n] = 0
    this.walks(now, n, JOIN_SELF)
  }

  /** Node n goes offline: it stays in others' tables; it is no longer a bootstrap candidate. */
  leave (n: number): void {
    this.online[n] = 0
    this.epoch[n]++
    this.joining[n] = 0
    this.dropFromPool(n)
  }

  /** Handles EVENT_REFRESH popped from the queue (EVENT_WALK_RETRY is no longer scheduled). */
  handle (now: number, kind: number, a: number, b: number): void {
    if (kind === EVENT_REFRESH) {
      if (this.online[a] === 0 || this.epoch[a] !== b || now >= this.opts.until) return
      this.walks(now, a, PERIODIC)
      this.scheduleRefresh(now, a)
    }
  }

  /** Starts the self-query (JOIN_SELF), the refresh walks (JOIN_REFRESH) or both (PERIODIC). */
  private walks (now: number, n: number, phase: number): void {
    if (phase !== JOIN_REFRESH) this.start(now, n, phase, this.ids.hi[n], this.ids.lo[n])
    if (phase !== JOIN_SELF) {
      const maxCpl = phase === JOIN_REFRESH ? 0 : Math.min(KAD_PARAMS.maxRefreshCpl, this.tables.maxCommonPrefixBytes(n))
      for (let cpl = 0; cpl <= maxCpl; cpl++) {
        this.ids.randomKeyWithCpl(n, cpl, this.rng, this.key)
        this.start(now, n, phase, this.key[0], this.key[1])
      }
    }
  }

  private start (now: number, n: number, phase: number, hi: number, lo: number): void {
    if (phase !== PERIODIC) this.joining[n]++ // counted until the walk ends, a wait for a slot included
    const waited = this.lookups.stats.waited
    this.lookups.startWalkOrWait(now, n, hi, lo, n * 4 + phase, this.epoch[n])
    if (this.lookups.stats.waited !== waited) this.retries++
  }

  private walkDone (tag: number, now: number): void {
    const n = Math.floor(tag / 4); const phase = tag - n * 4
    if (phase === PERIODIC || this.online[n] === 0 || this.joining[n] === 0) return
    // kad-dht's refresh waits for peers in the table; here it follows the self-query.
    if (phase === JOIN_SELF) this.walks(now, n, JOIN_REFRESH)
    if (--this.joining[n] === 0) {
      this.joinsDone++
      if (this.isServer[n] === 1) this.addToPool(n)
      this.scheduleRefresh(now, n)
      this.onJoined?.(n, now)
    }
  }

  private scheduleRefresh (now: number, n: number): void {
    const at = now + this.opts.refreshIntervalMs
    if (at < this.opts.until) this.q.push(at, EVENT_REFRESH, n, this.epoch[n], 0)
  }

  private addToPool (n: number): void {
    if (this.poolPos[n] >= 0) return
    this.poolPos[n] = this.poolLen; this.pool[this.poolLen++] = n
  }

  private dropFromPool (n: number): void {
    const p = this.poolPos[n]
    if (p < 0) return
    const last = this.pool[--this.poolLen]
    this.pool[p] = last; this.poolPos[last] = p
    this.poolPos[n] = -1
  }

  /** The current session number of n (refresh events carry it). */
  epochOf (n: number): number { return this.epoch[n] }

  /** Joined, online servers right now. */
  get joinedServers (): number { return this.poolLen }
}
