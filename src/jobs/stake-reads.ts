// The submitter's reads of provider stake (Settlement.providers(owner)), for the lease round's
// stake check (core/settlement/stake-check.ts). One read per owner (payout address), not per
// offer; kept `ttlMs` (an owner seen unstaked only `unstakedTtlMs`: it may be staking now);
// at most `maxOwners` staked and `maxUnstakedOwners` unstaked owners kept, apart (fresh payout
// keys are free: they never push a staked figure out); a read shared by every round and job that asks meanwhile.
// A round waits for reads at most `waitMs`: a slow or unreachable chain never holds it longer.
// What the round gets then: the last figure read, up to `maxStaleMs` old, when a refresh fails
// or is late; else nothing (the owner's offers are refused STAKE_UNKNOWN, a transient refusal:
// the job waits for the chain as for a busy provider, up to task.waitS). A read that lands after
// the round's wait still fills the cache for the next round.
import type { StakeFigure } from '../core/settlement/stake-check.js'

export const STAKE_TTL_MS = 60_000
export const UNSTAKED_TTL_MS = 5_000
export const STAKE_MAX_STALE_MS = 10 * 60_000
export const STAKE_WAIT_MS = 2_000
export const MAX_STAKE_OWNERS = 4096
/**
 * Owners read unstaked, kept apart (at most this many): payout keys are free, so a stranger's
 * fresh unstaked owners must not push the staked figures out (those serve while the chain is down).
 */
export const MAX_UNSTAKED_OWNERS = 1024
/** Reads in flight at once: owners past it are unknown this round (read in a later one). */
export const MAX_STAKE_READS = 64
/**
 * Of those, the reads kept for owners read staked before (refreshes): owners never read, or read
 * unstaked, may hold the rest. Fresh payout keys are free, so with a slow chain a stranger's new
 * owners could otherwise hold every read and leave the known honest owners unrefreshed
 * (review16a L2). A quarter of the cap, at most this many.
 */
export const STAKE_READS_KEPT_FOR_KNOWN = 16

export interface StakeReadsInit {
  /** Reads one owner's stake from the chain (throws when the chain cannot be read). */
  read: (owner: string) => Promise<StakeFigure>
  now: () => number
  ttlMs?: number
  unstakedTtlMs?: number
  maxStaleMs?: number
  waitMs?: number
  maxOwners?: number
  maxUnstakedOwners?: number
  maxReads?: number
  /** Reads of `maxReads` only owners read staked before may take (default min(16, maxReads / 4)). */
  keptForKnown?: number
  /** A read failed (logged by the caller; the round goes on with what it has). */
  onError?: (err: Error, owner: string) => void
}

interface Entry { at: number, figure: StakeFigure }

export class StakeReads {
  /** Staked owners' figures; `unstaked` holds those read as 0 (each bounded on its own). */
  private readonly cache = new Map<string, Entry>()
  private readonly unstaked = new Map<string, Entry>()
  private readonly inflight = new Map<string, Promise<void>>()
  /** Reads in flight for owners with no staked figure here (never read, or read unstaked). */
  private inflightNew = 0
  /** Chain reads started (tests and metrics: one per owner and TTL, not one per offer). */
  reads = 0

  constructor (private readonly init: StakeReadsInit) {}

  /** The stake of each owner (lower-case addresses): a figure, or undefined when none could be had in time. */
  async stakesOf (owners: Iterable<string>, signal?: AbortSignal): Promise<Map<string, StakeFigure | undefined>> {
    const now = this.init.now()
    const want = [...new Set([...owners].map(o => o.toLowerCase()))]
    const pending: Array<Promise<void>> = []
    for (const o of want) {
      const e = this.entry(o)
      if (e !== undefined && now - e.at < (e.figure.gpus > 0 ? this.init.ttlMs ?? STAKE_TTL_MS : this.init.unstakedTtlMs ?? UNSTAKED_TTL_MS)) continue
      const p = this.inflight.get(o) ?? this.start(o)
      if (p !== undefined) pending.push(p)
    }
    if (pending.length > 0) await waitAtMost(Promise.allSettled(pending), this.init.waitMs ?? STAKE_WAIT_MS, signal)
    const at = this.init.now()
    const out = new Map<string, StakeFigure | undefined>()
    for (const o of want) {
      const e = this.entry(o)
      out.set(o, e !== undefined && at - e.at <= (this.init.maxStaleMs ?? STAKE_MAX_STALE_MS) ? e.figure : undefined)
    }
    return out
  }

  private entry (owner: string): Entry | undefined { return this.cache.get(owner) ?? this.unstaked.get(owner) }

  private start (owner: string): Promise<void> | undefined {
    const max = this.init.maxReads ?? MAX_STAKE_READS
    if (this.inflight.size >= max) return undefined
    // an owner with no staked figure here may not take the reads kept for refreshing known ones
    const known = this.cache.has(owner)
    const kept = this.init.keptForKnown ?? Math.min(STAKE_READS_KEPT_FOR_KNOWN, Math.floor(max / 4))
    if (!known && this.inflightNew >= max - kept) return undefined
    if (!known) this.inflightNew++
    this.reads++
    const p = this.init.read(owner).then(figure => {
      const staked = figure.gpus > 0
      const map = staked ? this.cache : this.unstaked
      const max = staked ? this.init.maxOwners ?? MAX_STAKE_OWNERS : this.init.maxUnstakedOwners ?? MAX_UNSTAKED_OWNERS
      this.cache.delete(owner) // re-inserted last: the oldest read goes first when full
      this.unstaked.delete(owner)
      if (map.size >= max) map.delete(map.keys().next().value as string)
      map.set(owner, { at: this.init.now(), figure: { gpus: figure.gpus } })
    }, (err: unknown) => {
      this.init.onError?.(err instanceof Error ? err : new Error(String(err)), owner)
    }).finally(() => {
      this.inflight.delete(owner)
      if (!known) this.inflightNew--
    })
    this.inflight.set(owner, p)
    return p
  }
}

/** Resolves when `p` settles, `ms` pass or `signal` fires, whichever is first (never rejects). */
async function waitAtMost (p: Promise<unknown>, ms: number, signal?: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  let onAbort: (() => void) | undefined
  await Promise.race([
    p.then(() => {}, () => {}),
    new Promise<void>(resolve => {
      timer = setTimeout(resolve, ms)
      onAbort = () => { resolve() }
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  ])
  clearTimeout(timer)
  if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort)
}
