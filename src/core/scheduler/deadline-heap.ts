// A binary min-heap of (deadline, key) pairs in two flat arrays: the job machine's copy timeouts.
// Entries are never removed early; the machine skips a popped key whose copy already ended.

export class DeadlineHeap {
  private readonly at: number[] = []
  private readonly keys: number[] = []

  get size (): number { return this.at.length }
  /** The earliest deadline (Infinity when empty). */
  get nextAt (): number { return this.at.length > 0 ? this.at[0] : Infinity }

  push (at: number, key: number): void {
    const a = this.at; const k = this.keys
    let j = a.length
    a.push(at); k.push(key)
    while (j > 0) {
      const p = (j - 1) >> 1
      if (a[p] <= at) break
      a[j] = a[p]; k[j] = k[p]; j = p
    }
    a[j] = at; k[j] = key
  }

  /** Removes the earliest entry and returns its key (call only when size > 0). */
  pop (): number {
    const a = this.at; const k = this.keys
    const top = k[0]
    const lastA = a.pop()!; const lastK = k.pop()!
    if (a.length === 0) return top
    let j = 0
    for (;;) {
      let c = 2 * j + 1
      if (c >= a.length) break
      if (c + 1 < a.length && a[c + 1] < a[c]) c++
      if (a[c] >= lastA) break
      a[j] = a[c]; k[j] = k[c]; j = c
    }
    a[j] = lastA; k[j] = lastK
    return top
  }
}
