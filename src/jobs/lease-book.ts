// A provider's memory of the offers it issued and the leases it closed, so that it opens a
// lease only for its own open offer (checkLease decides) and tells a task for a lease it never
// opened (a protocol violation: charged) from one racing its lease's close (an honest race).
import type { dbc } from '../wire/gen/wire.js'
import { DbcError, WireError } from '../errors.js'
import { toHex } from '../core/identity/index.js'
import { checkLease, type IssuedOffer, type LeaseRefusal, type PeerIdVerifier } from '../core/scheduler/ownership.js'

/**
 * Offers remembered at most. An offer lives 30-60 s (offerTtlMs); 10,000 holds ~170 offers a
 * second for a minute, far above what one provider answers honestly, in ~3 MB. Past the cap
 * the oldest goes first: a flood of lease requests makes an old offer unknown, never the
 * memory grow.
 */
export const MAX_ISSUED_OFFERS = 10_000
/** An expired offer is kept this long, so a lease that comes just late is told apart from a forged one. */
export const EXPIRED_OFFER_GRACE_MS = 60_000
/** Lease ids remembered after their close (a task may still be on its way). */
export const MAX_CLOSED_LEASES = 4096

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

export interface LeaseBookInit { maxOffers?: number, maxClosed?: number }

export class LeaseBook {
  private readonly offers = new Map<string, IssuedOffer>()
  private readonly closed = new Set<string>()
  private readonly maxOffers: number
  private readonly maxClosed: number

  constructor (init: LeaseBookInit = {}) {
    this.maxOffers = init.maxOffers ?? MAX_ISSUED_OFFERS
    this.maxClosed = init.maxClosed ?? MAX_CLOSED_LEASES
  }

  get size (): number { return this.offers.size }

  /** Remembers an offer sent to `requester` (refusals back no lease: not kept). */
  issued (offer: dbc.task.v1.IOffer, requester: Uint8Array | null | undefined, now: number): void {
    const offerId = offer.offerId ?? new Uint8Array()
    if (offerId.length === 0 || (offer.refusal ?? '') !== '' || requester == null || requester.length === 0) return
    // offers share one TTL, so insertion order is expiry order: drop the long-expired from the front
    for (const [k, o] of this.offers) {
      if (o.expiresAt + EXPIRED_OFFER_GRACE_MS > now && this.offers.size < this.maxOffers) break
      this.offers.delete(k)
    }
    this.offers.set(toHex(offerId), { offerId, jobId: offer.jobId ?? new Uint8Array(), requester, expiresAt: Number(offer.expiresAt ?? 0) })
  }

  /**
   * Admits a lease (checkLease with this book's offer) and uses its offer up; throws
   * LeaseRefusedError (charged) or LeaseDeclinedError (not) when refused.
   */
  admit (p: { lease: dbc.task.v1.ILease, sender: Uint8Array, self: Uint8Array, now: number, verify?: PeerIdVerifier }): void {
    const key = toHex(p.lease.offerId ?? new Uint8Array())
    const r = checkLease({ ...p, issuedOffer: this.offers.get(key) })
    if (!r.ok) throw r.action === 'reject' ? new LeaseRefusedError(r) : new LeaseDeclinedError(r)
    this.offers.delete(key)
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
