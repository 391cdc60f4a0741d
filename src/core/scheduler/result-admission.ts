// Admission of copies whose results come back on streams that cannot be paused (WebRTC): such a
// stream's bytes cannot be held back, so the node's cap on them (OUTBOUND_UNPAUSABLE_BYTES,
// src/net/guard/outbound.ts) is kept before dispatch instead: a copy goes out only while the result
// bounds of the copies in flight on such streams (each its lease's announced result frame bound) fit
// under the cap; else it waits, first come first served, for one of them to end. Honest results then
// never pass the cap; the guard's shed() stays the backstop for a provider sending more than announced.
// Each provider also holds at most its share (the guard's per-peer share, half the cap): before, one
// provider's copies could take the whole cap and, silent, hold it until their own timeouts while
// every other provider's copy waited behind them (review s12 M2). A copy held back only by its own
// provider's share does not hold up the line behind it.
// Pure: no I/O; the caller holds the returned release.

interface Waiter { bytes: number, key: string | undefined, wake: () => void, fail: (err: unknown) => void }

export class ResultAdmission {
  private held = 0
  private inFlight = 0
  private readonly queue: Waiter[] = []
  /** Bytes reserved per provider (only those holding some: bounded by the copies in flight). */
  private readonly byKey = new Map<string, number>()
  /** Copies that had to wait (for the report and tests). */
  waited = 0

  /** `share`: the most one provider (a `key`) may hold; default the whole capacity (no share). */
  constructor (readonly capacity: number, readonly share = capacity) {}

  /** Bytes reserved by copies in flight. */
  get heldBytes (): number { return this.held }
  get copies (): number { return this.inFlight }
  get waiting (): number { return this.queue.length }
  /** Bytes `key`'s copies hold. */
  heldBy (key: string): number { return this.byKey.get(key) ?? 0 }

  /**
   * Whether `bytes` fits the cap. A bound larger than the whole capacity goes only when nothing
   * else is in flight (it would never fit otherwise).
   */
  private fits (bytes: number): boolean {
    return this.inFlight === 0 || this.held + bytes <= this.capacity
  }

  /** Whether `key`'s copies may take `bytes` more: within its share, or it holds nothing (a bound above the share goes alone). */
  private inShare (bytes: number, key: string | undefined): boolean {
    if (key === undefined) return true
    const mine = this.byKey.get(key) ?? 0
    return mine === 0 || mine + bytes <= this.share
  }

  /**
   * Reserves `bytes` for a copy of provider `key` at once when it fits the cap and the provider's
   * share, and nobody waits ahead (a waiter held back only by its own provider's share is not
   * ahead: the line skips it; one of the same provider is); returns its release, else undefined.
   */
  tryTake (bytes: number, key?: string): (() => void) | undefined {
    if (this.queue.some(w => (key !== undefined && w.key === key) || this.inShare(w.bytes, w.key))) return undefined
    if (!this.fits(bytes) || !this.inShare(bytes, key)) return undefined
    return this.reserve(bytes, key)
  }

  /** Reserves `bytes` for a copy of `key`, waiting in line while it does not fit; rejects when `signal` aborts first. */
  async take (bytes: number, signal?: AbortSignal, key?: string): Promise<() => void> {
    const now = this.tryTake(bytes, key)
    if (now !== undefined) return now
    signal?.throwIfAborted()
    this.waited++
    return await new Promise<() => void>((resolve, reject) => {
      const w: Waiter = {
        bytes,
        key,
        wake: () => { signal?.removeEventListener('abort', onAbort); resolve(this.reserve(bytes, key)) },
        fail: reject
      }
      const onAbort = (): void => {
        const i = this.queue.indexOf(w)
        if (i >= 0) this.queue.splice(i, 1)
        reject(signal?.reason ?? new Error('aborted'))
        this.drain()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.queue.push(w)
    })
  }

  private reserve (bytes: number, key: string | undefined): () => void {
    this.held += bytes
    this.inFlight++
    if (key !== undefined) this.byKey.set(key, (this.byKey.get(key) ?? 0) + bytes)
    let done = false
    return () => {
      if (done) return
      done = true
      this.held -= bytes
      this.inFlight--
      if (key !== undefined) {
        const left = (this.byKey.get(key) ?? 0) - bytes
        if (left > 0) this.byKey.set(key, left)
        else this.byKey.delete(key)
      }
      this.drain()
    }
  }

  /**
   * Wakes the waiters that fit now, in order: one that does not fit the cap stops the line (a large
   * one is not overtaken); one held back only by its own provider's share is passed over, and so
   * are its provider's later ones (a provider's copies go in their order).
   */
  private drain (): void {
    const passed = new Set<string>()
    for (let i = 0; i < this.queue.length;) {
      const w = this.queue[i]
      if (w.key !== undefined && passed.has(w.key)) { i++; continue }
      if (!this.inShare(w.bytes, w.key)) { passed.add(w.key as string); i++; continue }
      if (!this.fits(w.bytes)) return
      this.queue.splice(i, 1)
      w.wake()
    }
  }
}
