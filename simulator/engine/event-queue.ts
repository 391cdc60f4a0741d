// The event queue of the discrete-event engine: a 4-ary min-heap ordered by (time, seq),
// kept entirely in typed arrays (one 32-byte record per event). An event is a kind plus
// three int payload slots, so the hot path allocates nothing: push() writes into a free
// slot, pop() copies the top event into the `cur*` fields and recycles its slot. `seq` breaks ties in insertion order,
// which keeps runs with the same seed identical byte for byte.

export class EventQueue {
  /** Fields of the event last returned by pop(). */
  curTime = 0
  curKind = 0
  curA = 0
  curB = 0
  curC = 0
  /** Events pushed since creation (for events/s figures). */
  pushed = 0

  private cap: number
  private size = 0
  private seq = 0
  private heap: Int32Array
  // One 32-byte record per event slot: time and seq (f64 at 4*slot, 4*slot+1), kind, a, b, c
  // (i32 at 8*slot+4..7). A sift compares time and seq from one cache line, and pop reads
  // the whole event from it (separate arrays cost a line each).
  private f: Float64Array
  private i: Int32Array
  private free: Int32Array
  private freeTop: number

  constructor (initialCapacity = 1024) {
    this.cap = Math.max(16, initialCapacity)
    this.heap = new Int32Array(this.cap)
    const buf = new ArrayBuffer(this.cap * 32)
    this.f = new Float64Array(buf); this.i = new Int32Array(buf)
    this.free = new Int32Array(this.cap)
    for (let i = 0; i < this.cap; i++) this.free[i] = this.cap - 1 - i
    this.freeTop = this.cap
  }

  get length (): number { return this.size }

  /** Capacity in events (the arrays grow by doubling). */
  get capacity (): number { return this.cap }

  push (time: number, kind: number, a: number, b: number, c: number): void {
    if (this.freeTop === 0) this.grow()
    const slot = this.free[--this.freeTop]
    const f = this.f; const ii = this.i
    const seq = this.seq++
    f[4 * slot] = time; f[4 * slot + 1] = seq
    ii[8 * slot + 4] = kind; ii[8 * slot + 5] = a; ii[8 * slot + 6] = b; ii[8 * slot + 7] = c
    this.pushed++
    // sift up
    const heap = this.heap
    let i = this.size++
    while (i > 0) {
      const p = (i - 1) >> 2
      const ps = heap[p]
      const pt = f[4 * ps]
      if (pt < time || (pt === time && f[4 * ps + 1] < seq)) break
      heap[i] = ps
      i = p
    }
    heap[i] = slot
  }

  /** Removes the earliest event into cur*; returns false when the queue is empty. */
  pop (): boolean {
    if (this.size === 0) return false
    const heap = this.heap; const f = this.f; const ii = this.i
    const top = heap[0]
    this.curTime = f[4 * top]; this.curKind = ii[8 * top + 4]
    this.curA = ii[8 * top + 5]; this.curB = ii[8 * top + 6]; this.curC = ii[8 * top + 7]
    this.free[this.freeTop++] = top
    const n = --this.size
    if (n === 0) return true
    const last = heap[n]
    const lt = f[4 * last]; const lo = f[4 * last + 1]
    let i = 0
    for (;;) {
      const c0 = 4 * i + 1
      if (c0 >= n) break
      let best = c0; let bt = f[4 * heap[c0]]; let bo = f[4 * heap[c0] + 1]
      const end = c0 + 4 < n ? c0 + 4 : n
      for (let c = c0 + 1; c < end; c++) {
        const s = heap[c]; const t = f[4 * s]
        if (t < bt || (t === bt && f[4 * s + 1] < bo)) { best = c; bt = t; bo = f[4 * s + 1] }
      }
      if (lt < bt || (lt === bt && lo < bo)) break
      heap[i] = heap[best]
      i = best
    }
    heap[i] = last
    return true
  }

  /** Time of the earliest event, or Infinity. */
  peekTime (): number { return this.size === 0 ? Infinity : this.f[4 * this.heap[0]] }

  private grow (): void {
    const old = this.cap; const cap = old * 2
    const heap = new Int32Array(cap); heap.set(this.heap); this.heap = heap
    const buf = new ArrayBuffer(cap * 32)
    new Uint8Array(buf).set(new Uint8Array(this.f.buffer)) // bytes: ints must not pass through f64 values
    this.f = new Float64Array(buf); this.i = new Int32Array(buf)
    this.free = new Int32Array(cap)
    for (let i = 0; i < old; i++) this.free[i] = cap - 1 - i
    this.freeTop = old
    this.cap = cap
  }
}
