// A provider's memory of the offers it issued and the leases it closed, so that it opens a
// lease only for its own open offer (checkLease decides) and tells a task for a lease it never
// opened (a protocol violation: charged) from one racing its lease's close (an honest race).
import type { dbc } from '../wire/gen/wire.js'
import { DbcError, WireError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import { checkLease, type IssuedOffer, type LeaseRefusal, type PeerIdVerifier } from '../core/scheduler/ownership.js'

/**
 * Offers remembered at most. An offer lives 30-60 s (offerTtlMs); 10,000 holds ~170 offers a
 * second for a minute, far above what one provider answers honestly, in ~3 MB. Lease requests
 * are free, so past this cap the requester holding the most offers loses its oldest: a flood
 * from a few identities pushes out their own offers, never an honest submitter's one or two.
 */
export const MAX_ISSUED_OFFERS = 10_000
/**
 * Offers one requester may hold at once; its 65th pushes out its own oldest. An honest runner
 * asks a provider once per placement round (at most 4 a second while it looks for leases) and
 * leases the offers it uses at once, so it holds a handful.
 */
export const MAX_OFFERS_PER_REQUESTER = 64
/** An expired offer is kept this long, so a lease that comes just late is told apart from a forged one. */
export const EXPIRED_OFFER_GRACE_MS = 60_000
/** Lease ids remembered after their close (a task may still be on its way). */
export const MAX_CLOSED_LEASES = 4096
/** Offer ids remembered after their lease (a second lease on one is charged, not a forgotten offer). */
export const MAX_USED_OFFERS = 4096

/** A lease refused by checkLease; a WireError (the sender is charged) when no honest submitter sends it. */
export class LeaseRefusedError extends WireError {
  override name = 'LeaseRefusedError'
  constructor (r: LeaseRefusal) { super(r.code, `lease refused: ${r.reason}`, { hint: 'ask the provider for an offer, then lease it before it expires' }) }
}
/** The same refusal where an honest submitter may have caused it (not charged). */
export class LeaseDeclinedError extends DbcError {
  override name = 'LeaseDeclinedError'
  constructor (r: LeaseRefusal) { super(r.code, `lease refused: ${r.reason}`, { hint: 'ask the provider for a new offer' }) }
}
/** A task under a lease this provider never opened (or forgot when it restarted). */
export class TaskWithoutLeaseError extends WireError {
  override name = 'TaskWithoutLeaseError'
  constructor () { super('TASK_NO_LEASE', 'refused: no such lease here', { hint: 'open a lease on an offer of this provider before sending tasks' }) }
}

export interface LeaseBookInit { maxOffers?: number, maxPerRequester?: number, maxClosed?: number, maxUsed?: number }

export class LeaseBook {
  /** Open offers in issue order (offers share one TTL, so this is expiry order too). */
  private readonly offers = new Map<string, IssuedOffer>()
  /** Each requester's open offers, oldest first (the per-requester cap and the global eviction). */
  private readonly byRequester = new Map<string, Set<string>>()
  private readonly used = new Set<string>()
  private readonly closed = new Set<string>()
  private readonly maxOffers: number
  private readonly maxPerRequester: number
  private readonly maxClosed: number
  private readonly maxUsed: number

  constructor (init: LeaseBookInit = {}) {
    this.maxOffers = init.maxOffers ?? MAX_ISSUED_OFFERS
    this.maxPerRequester = init.maxPerRequester ?? MAX_OFFERS_PER_REQUESTER
    this.maxClosed = init.maxClosed ?? MAX_CLOSED_LEASES
    this.maxUsed = init.maxUsed ?? MAX_USED_OFFERS
  }

  get size (): number { return this.offers.size }

  /** Open offers `requester` holds now. */
  heldBy (requester: Uint8Array): number { return this.byRequester.get(toHex(requester))?.size ?? 0 }

  /**
   * Remembers an offer sent to `requester` (refusals back no lease: not kept), with the input
   * bytes its request announced (the lease's task frame limit) and the slot one task takes (with
   * the offer's prices: the most a task under its lease is billed).
   */
  issued (offer: dbc.task.v1.IOffer, requester: Uint8Array | null | undefined, now: number, inputBytes?: number, slot?: { gpus: number, cores: number }, resultBytes?: number): void {
    const offerId = offer.offerId ?? new Uint8Array()
    if (offerId.length === 0 || (offer.refusal ?? '') !== '' || requester == null || requester.length === 0) return
    // drop the long-expired from the front (insertion order is expiry order)
    for (const [k, o] of this.offers) {
      if (o.expiresAt + EXPIRED_OFFER_GRACE_MS > now) break
      this.forget(k, o)
    }
    const who = toHex(requester)
    const mine = this.byRequester.get(who)
    if (mine !== undefined && mine.size >= this.maxPerRequester) this.forgetOldestOf(mine)
    else if (this.offers.size >= this.maxOffers) this.forgetOldestOf(this.heaviest(mine))
    const key = toHex(offerId)
    const old = this.offers.get(key)
    if (old !== undefined) this.forget(key, old)
    this.offers.set(key, {
      offerId,
      jobId: offer.jobId ?? new Uint8Array(),
      requester,
      expiresAt: Number(offer.expiresAt ?? 0),
      prices: { priceGpuHour: offer.priceGpuHour ?? 0, priceCpuHour: offer.priceCpuHour ?? 0 },
      slots: offer.slots ?? 0,
      ...((offer.bundleMax ?? 0) > 1 ? { bundleMax: offer.bundleMax ?? 0 } : {}),
      ...(inputBytes !== undefined ? { inputBytes } : {}),
      ...(slot !== undefined ? { slot } : {}),
      ...(resultBytes !== undefined && resultBytes > 0 ? { resultBytes } : {})
    })
    let set = this.byRequester.get(who)
    if (set === undefined) { set = new Set(); this.byRequester.set(who, set) }
    set.add(key)
  }

  /** The requester holding the most offers: `asking` when it is one of them, else the longest-standing. */
  private heaviest (asking: Set<string> | undefined): Set<string> | undefined {
    let most: Set<string> | undefined
    for (const s of this.byRequester.values()) if (most === undefined || s.size > most.size) most = s
    return asking !== undefined && most !== undefined && asking.size >= most.size ? asking : most
  }

  private forgetOldestOf (keys: Set<string> | undefined): void {
    const k = keys?.values().next().value
    if (k === undefined) return
    const o = this.offers.get(k)
    if (o !== undefined) this.forget(k, o)
  }

  private forget (key: string, o: IssuedOffer): void {
    this.offers.delete(key)
    const who = toHex(o.requester)
    const set = this.byRequester.get(who)
    set?.delete(key)
    if (set?.size === 0) this.byRequester.delete(who)
  }

  /**
   * Admits a lease (checkLease with this book's offer) and uses its offer up; returns that offer
   * (with the input bytes its request announced); throws LeaseRefusedError (charged) or
   * LeaseDeclinedError (not) when refused.
   */
  admit (p: { lease: dbc.task.v1.ILease, sender: Uint8Array, self: Uint8Array, now: number, verify?: PeerIdVerifier }): IssuedOffer {
    const key = toHex(p.lease.offerId ?? new Uint8Array())
    const issuedOffer = this.offers.get(key)
    const r = checkLease({ ...p, issuedOffer, offerUsed: this.used.has(key) })
    if (!r.ok) throw r.action === 'reject' ? new LeaseRefusedError(r) : new LeaseDeclinedError(r)
    this.forget(key, issuedOffer!)
    this.used.add(key)
    if (this.used.size > this.maxUsed) this.used.delete(this.used.values().next().value as string)
    return issuedOffer!
  }
  /** Remembers a closed lease, so a task still on its way is refused without a charge. */
  closedLease (leaseId: Uint8Array): void {
    const k = toHex(leaseId)
    this.closed.delete(k)
    this.closed.add(k)
    if (this.closed.size > this.maxClosed) this.closed.delete(this.closed.values().next().value as string)
  }

  /**
   * A task names a lease not open here: refused quietly when the lease closed lately (the
   * holder may not know yet); otherwise throws TaskWithoutLeaseError (charged).
   */
  missingLease (leaseId: Uint8Array): { ok: false, reason: string } {
    if (this.closed.has(toHex(leaseId))) return { ok: false, reason: 'the lease is closed' }
    throw new TaskWithoutLeaseError()
  }
}
