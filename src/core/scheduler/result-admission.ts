// Admission of copies whose results come back on streams that cannot be paused (WebRTC): such a
// stream's bytes cannot be held back, so the node's cap on them (OUTBOUND_UNPAUSABLE_BYTES,
// src/net/guard/outbound.ts) is kept before dispatch instead: a copy goes out only while the result
// bounds of the copies in flight on such streams (each its lease's announced result frame bound) fit
// under the cap; else it waits, first come first served, for one of them to end. Honest results then
// never pass the cap; the guard's shed() stays the backstop for a provider sending more than announced.
// Pure: no I/O; the caller holds the returned release.

interface Waiter { bytes: number, wake: () => void, fail: (err: unknown) => void }

export class ResultAdmission {
  private held = 0
  private inFlight = 0
  private readonly queue: Waiter[] = []
  /** Copies that had to wait (for the report and tests). */
  waited = 0

  constructor (readonly capacity: number) {}

  /** Bytes reserved by copies in flight. */
  get heldBytes (): number { return this.held }
  get copies (): number { return this.inFlight }
  get waiting (): number { return this.queue.length }

  /**
   * Whether `bytes` may be reserved now: it fits, and nobody waits ahead. A bound larger than the
   * whole capacity goes only when nothing else is in flight (it would never fit otherwise).
   */
  private fits (bytes: number): boolean {
    return this.inFlight === 0 || this.held + bytes <= this.capacity
  }

  /** Reserves `bytes` at once when it fits and nobody waits; returns its release, else undefined. */
  tryTake (bytes: number): (() => void) | undefined {
    if (this.queue.length > 0 || !this.fits(bytes)) return undefined
    return this.reserve(bytes)
  }

  /** Reserves `bytes`, waiting in line while it does not fit; rejects when `signal` aborts first. */
  async take (bytes: number, signal?: AbortSignal): Promise<() => void> {
    const now = this.tryTake(bytes)
    if (now !== undefined) return now
    signal?.throwIfAborted()
    this.waited++
    return await new Promise<() => void>((resolve, reject) => {
      const w: Waiter = {
        bytes,
        wake: () => { signal?.removeEventListener('abort', onAbort); resolve(this.reserve(bytes)) },
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

  private reserve (bytes: number): () => void {
    this.held += bytes
    this.inFlight++
    let done = false
    return () => {
      if (done) return
      done = true
      this.held -= bytes
      this.inFlight--
      this.drain()
    }
  }

  /** Wakes the waiters at the head of the line that fit now (in order: a large one is not overtaken). */
  private drain (): void {
    while (this.queue.length > 0 && this.fits(this.queue[0].bytes)) {
      const w = this.queue.shift()!
      w.wake()
    }
  }
}
