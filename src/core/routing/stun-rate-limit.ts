// How many STUN binding responses a public node sends: a token bucket per source address and one
// for all sources together. A binding response is a few bytes larger than its request, and UDP
// sources can be forged, so without a bound the responder would reflect traffic at anyone's
// address. Pure: time comes in as `now`; bounded: the table forgets its least recently used
// source when full (a forged source gains one burst by it, never more than the global bucket).

export interface StunRateInit {
  /** Responses one source may get at once (ICE sends a few binding requests per gathering). */
  burst?: number
  /** One token comes back per this many ms, per source. */
  refillMs?: number
  /** Responses per second over all sources together. */
  globalPerSecond?: number
  /** Sources tracked at most. */
  maxSources?: number
  /**
   * Requests fully checked (decoded) per second over all sources together, well formed or not:
   * header-valid garbage from a forged new source each packet gets a fresh source bucket every
   * time, so without this every such packet cost a decode (~20 us; review s11 L10).
   */
  decodesPerSecond?: number
}

/**
 * burst / refillMs: one ICE gathering (one UDP socket) sends one binding request when answered, five
 * over 12 s when not (measured with node-datachannel); a NATed submitter's round first-contacting
 * many relayed providers runs 8 attempts at once, each ~0.5 s, and an attempt left without a
 * server-reflexive candidate is not tried again: 64 at once, then 8 a second (was 8, then 1: review
 * s10 L9). A forged victim address gets at most that (64 answers of ~44 B, then ~350 B/s); the
 * global 500/s bounds the total.
 */
export const STUN_RATE_DEFAULTS = { burst: 64, refillMs: 125, globalPerSecond: 500, maxSources: 4096, decodesPerSecond: 2000 }

interface Bucket { tokens: number, at: number }

export class StunRateLimit {
  private readonly o: Required<StunRateInit>
  private readonly sources = new Map<string, Bucket>()
  private readonly global: Bucket
  private readonly decodes: Bucket

  constructor (init: StunRateInit = {}, now = 0) {
    this.o = { ...STUN_RATE_DEFAULTS, ...init }
    this.global = { tokens: this.o.globalPerSecond, at: now }
    this.decodes = { tokens: this.o.decodesPerSecond, at: now }
  }

  /** Whether a response to `source` may go out at `now` (it takes both tokens when it may). */
  allow (source: string, now: number): boolean {
    return this.admitSource(source, now) && this.takeGlobal(now)
  }

  /**
   * The cheap first step, before the request is fully checked (review s11 M3): false when the
   * global bucket or the decode bucket is empty (nothing taken) or `source` has no token; else it takes the source's
   * token (not the global one). A flood over either limit is then cut before the decode; a
   * malformed request spends its own source's token only.
   */
  admitSource (source: string, now: number): boolean {
    refill(this.global, now, this.o.globalPerSecond, 1000 / this.o.globalPerSecond)
    if (this.global.tokens < 1) return false
    // the decode bucket must have a token too (takeDecode takes it): a forged-source flood past it skips the table
    refill(this.decodes, now, this.o.decodesPerSecond, 1000 / this.o.decodesPerSecond)
    if (this.decodes.tokens < 1) return false
    let b = this.sources.get(source)
    if (b === undefined) {
      if (this.sources.size >= this.o.maxSources) this.sources.delete(this.sources.keys().next().value as string)
      b = { tokens: this.o.burst, at: now }
    } else {
      this.sources.delete(source) // re-insert: the Map's order is least recently used first
      refill(b, now, this.o.burst, this.o.refillMs)
    }
    this.sources.set(source, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /**
   * Between the source's token and the decode: a token of the global decode bucket (every decode
   * takes one, well formed or not). A flood of forged sources past it costs the header check and
   * the bucket lookups only; while it lasts, honest requests are cut too (as a flood of well-formed
   * forged requests past the global bucket already does).
   */
  takeDecode (now: number): boolean {
    refill(this.decodes, now, this.o.decodesPerSecond, 1000 / this.o.decodesPerSecond)
    if (this.decodes.tokens < 1) return false
    this.decodes.tokens -= 1
    return true
  }

  /** The second step, once the request is known to be well formed: takes a global token. */
  takeGlobal (now: number): boolean {
    refill(this.global, now, this.o.globalPerSecond, 1000 / this.o.globalPerSecond)
    if (this.global.tokens < 1) return false
    this.global.tokens -= 1
    return true
  }

  get tracked (): number { return this.sources.size }
}

function refill (b: Bucket, now: number, cap: number, perTokenMs: number): void {
  if (now <= b.at) return
  b.tokens = Math.min(cap, b.tokens + (now - b.at) / perTokenMs)
  b.at = now
}
