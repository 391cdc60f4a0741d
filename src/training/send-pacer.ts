// What the all-reduce sends, paced: an optional cap in bytes/s over all peers (one clock: a shared
// uplink; benches throttle a member with it), and the time at least one write was in flight
// (bytes sent over it is the send bandwidth the coordinator's BandwidthEstimate reads).
import { performance } from 'node:perf_hooks'

export class SendPacer {
  /** Time at least one write was in flight, ms. */
  busyMs = 0
  private writing = 0
  private busySince = 0
  private slotAt = 0

  constructor (private readonly maxBytesPerSec?: number) {}

  /** One write of `len` bytes under the cap, counted in busyMs. */
  async write<R> (len: number, write: () => Promise<R>): Promise<R> {
    if (this.writing++ === 0) this.busySince = performance.now()
    try {
      await this.throttle(len)
      return await write()
    } finally {
      if (--this.writing === 0) this.busyMs += performance.now() - this.busySince
    }
  }

  /** Waits for this write's slot under the cap. */
  private async throttle (bytes: number): Promise<void> {
    const rate = this.maxBytesPerSec
    if (rate === undefined || !(rate > 0)) return
    const now = performance.now()
    const at = Math.max(now, this.slotAt)
    this.slotAt = at + (bytes / rate) * 1000
    if (at > now) await new Promise(resolve => setTimeout(resolve, at - now))
  }
}
