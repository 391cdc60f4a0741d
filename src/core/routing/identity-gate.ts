// Fresh identities cost nothing to mint, so a penalty kept per key alone is reset by a new key.
// This gate keeps a token bucket per remote address (an IP): each identity the node has not seen
// before takes a token, and each ban of an identity that came from the address takes `banCost`
// more (the bucket may go into debt). Identities already known always pass (their own score
// decides about them), so honest peers that share an address with an attacker keep working;
// only NEW identities from an address that minted many quickly, or had identities banned, wait.
// Pure: time comes in as `now`; bounded: both tables forget their oldest entries (an address in
// debt only when the oldest few are all in debt, so cycling through many addresses does not
// wipe a debt).

export interface IdentityGateInit {
  /** New identities one address may introduce at once (a NAT'ed site, a test network on one host). */
  burst?: number
  /** One token comes back per this many ms. */
  refillMs?: number
  /** Tokens a ban of one of the address's identities costs the address. */
  banCost?: number
  /** Deepest debt an address can be in (bounds how long it waits after many bans). */
  maxDebt?: number
  /** Addresses tracked at most (the oldest untouched ones are forgotten). */
  maxAddresses?: number
  /** Identities remembered as known at most. */
  maxKnown?: number
}

export const IDENTITY_GATE_DEFAULTS = {
  // 32 at once: a rack or a home behind one NAT, or a local test network, joins in one go
  burst: 32,
  // 6 a minute after that: churn of honest nodes behind one address is far below this
  refillMs: 10_000,
  // a ban costs the address 8 identities' worth (80 s of refill): banned keys can not be replaced cheaply
  banCost: 8,
  // at most ~11 minutes of waiting, however many bans: the address may be a NAT shared with honest users
  maxDebt: 64,
  maxAddresses: 4096,
  maxKnown: 10_000
}

export type Admission = 'known' | 'new' | 'refused'

/** Credit is kept in ms of refill (a token = refillMs), so whole-ms clocks give exact arithmetic. */
interface Bucket { credit: number, at: number, bans: number, lastConnectionAt: number }

/**
 * An address in debt (its identities were banned) may open a connection at most this often
 * before the handshake: each refused identity otherwise costs the node a full TCP + Noise +
 * yamux handshake (~12 ms of CPU) and a banned attacker re-dials for free. One a second still
 * lets an honest, known peer behind the same address reconnect.
 */
export const DEBT_CONNECTION_INTERVAL_MS = 1000

/**
 * When the address table is full, this many of its least recently used entries are looked at
 * for one that is not in debt to forget (bounded work per new address); those in debt move to the
 * back. Only when all of them are in debt is one of them forgotten (the least in debt).
 */
export const EVICTION_SCAN = 16

export class IdentityGate<A = string, P = string> {
  private readonly burst: number
  private readonly refillMs: number
  private readonly banCost: number
  private readonly maxDebt: number
  private readonly maxAddresses: number
  private readonly maxKnown: number
  private readonly buckets = new Map<A, Bucket>()
  private readonly known = new Map<P, true>()

  constructor (init: IdentityGateInit = {}) {
    this.burst = init.burst ?? IDENTITY_GATE_DEFAULTS.burst
    this.refillMs = Math.max(1, init.refillMs ?? IDENTITY_GATE_DEFAULTS.refillMs)
    this.banCost = init.banCost ?? IDENTITY_GATE_DEFAULTS.banCost
    this.maxDebt = init.maxDebt ?? IDENTITY_GATE_DEFAULTS.maxDebt
    this.maxAddresses = Math.max(1, init.maxAddresses ?? IDENTITY_GATE_DEFAULTS.maxAddresses)
    this.maxKnown = Math.max(1, init.maxKnown ?? IDENTITY_GATE_DEFAULTS.maxKnown)
  }

  /** Tokens `addr` holds now (negative: in debt after bans). */
  tokens (now: number, addr: A): number {
    return this.credit(now, addr) / this.refillMs
  }

  private credit (now: number, addr: A): number {
    const full = this.burst * this.refillMs
    const b = this.buckets.get(addr)
    if (b === undefined) return full
    return Math.min(full, b.credit + Math.max(0, now - b.at))
  }

  private bucket (now: number, addr: A): Bucket {
    const credit = this.credit(now, addr)
    let b = this.buckets.get(addr)
    if (b === undefined) {
      b = { credit, at: now, bans: 0, lastConnectionAt: -Infinity }
      if (this.buckets.size >= this.maxAddresses) this.evict(now)
    } else {
      this.buckets.delete(addr) // re-inserted below: Map order is least recently touched first
      b.credit = credit
      b.at = now
    }
    this.buckets.set(addr, b)
    return b
  }

  /**
   * Forgets one address: the least recently used of the oldest EVICTION_SCAN that is not in
   * debt. The ones in debt that were looked at move to the back (their debt is kept, so cycling
   * through fresh addresses never reaches them first); when all were in debt, the one closest to
   * paying it off is forgotten.
   */
  private evict (now: number): void {
    const scanned: Array<[A, Bucket]> = []
    for (const [addr, b] of this.buckets) {
      if (this.credit(now, addr) >= 0) {
        this.buckets.delete(addr)
        for (const [a, d] of scanned) { this.buckets.delete(a); this.buckets.set(a, d) }
        return
      }
      scanned.push([addr, b])
      if (scanned.length >= EVICTION_SCAN) break
    }
    let best: A | undefined
    let bestCredit = -Infinity
    for (const [a] of scanned) {
      const c = this.credit(now, a)
      if (c > bestCredit) { best = a; bestCredit = c }
    }
    for (const [a, d] of scanned) { this.buckets.delete(a); if (a !== best) this.buckets.set(a, d) }
  }

  /** Whether `peer`, arriving from `addr`, may connect: known ones always, new ones for a token. */
  admit (now: number, addr: A, peer: P): Admission {
    if (this.known.has(peer)) {
      this.known.delete(peer)
      this.known.set(peer, true)
      return 'known'
    }
    const b = this.bucket(now, addr)
    if (b.credit < this.refillMs) return 'refused'
    b.credit -= this.refillMs
    if (this.known.size >= this.maxKnown) this.known.delete(this.known.keys().next().value as P)
    this.known.set(peer, true)
    return 'new'
  }

  /**
   * Whether a connection from `addr` may start its handshake: always, unless the address is in
   * debt, which allows one every DEBT_CONNECTION_INTERVAL_MS (the identity is not known yet).
   */
  admitConnection (now: number, addr: A): boolean {
    if (!this.buckets.has(addr) || this.credit(now, addr) >= 0) return true
    const b = this.bucket(now, addr)
    if (now - b.lastConnectionAt < DEBT_CONNECTION_INTERVAL_MS) return false
    b.lastConnectionAt = now
    return true
  }

  /** One of `addr`'s identities was banned: the address pays for it. */
  recordBan (now: number, addr: A): void {
    const b = this.bucket(now, addr)
    b.credit = Math.max(-this.maxDebt * this.refillMs, b.credit - this.banCost * this.refillMs)
    b.bans++
  }

  /** Forgets a known identity (it will count as new when it comes back). */
  forget (peer: P): void { this.known.delete(peer) }

  isKnown (peer: P): boolean { return this.known.has(peer) }

  /** Addresses that may not introduce a new identity now, for status output. */
  restricted (now: number): Array<{ addr: A, tokens: number, bans: number }> {
    const out: Array<{ addr: A, tokens: number, bans: number }> = []
    for (const [addr, b] of this.buckets) {
      const tokens = this.tokens(now, addr)
      if (tokens < 1) out.push({ addr, tokens, bans: b.bans })
    }
    return out.sort((x, y) => x.tokens - y.tokens)
  }
}
