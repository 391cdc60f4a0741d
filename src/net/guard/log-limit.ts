// A repeated log line (same key) is written once per window; the lines it stood for are counted
// and reported with the next one written. A hostile peer must not be able to fill the log.

export class RepeatLimiter {
  private readonly seen = new Map<string, { at: number, suppressed: number }>()

  constructor (private readonly windowMs: number, private readonly maxKeys = 1024) {}

  /**
   * Whether to write the line for `key` now; when it is written, `suppressed` says how many
   * lines of the same key were held back since the last one written.
   */
  check (now: number, key: string): { write: boolean, suppressed: number } {
    const s = this.seen.get(key)
    if (s !== undefined && now - s.at < this.windowMs) {
      s.suppressed++
      return { write: false, suppressed: 0 }
    }
    const suppressed = s?.suppressed ?? 0
    this.seen.delete(key)
    if (this.seen.size >= this.maxKeys) this.seen.delete(this.seen.keys().next().value as string)
    this.seen.set(key, { at: now, suppressed: 0 })
    return { write: true, suppressed }
  }
}
