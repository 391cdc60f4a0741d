// The event queue of the discrete-event engine: a 4-ary min-heap ordered by (time, seq),
// kept entirely in typed arrays. An event is a kind plus three int payload slots, so the
// hot path allocates nothing: push() writes into a free slot, pop() copies the top event
// into the `cur*` fields and recycles its slot. `seq` breaks ties in insertion order,
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
  private time: Float64Array
  private order: Float64Array
  private kind: Int32Array
  private a: Int32Array
  private b: Int32Array
  private c: Int32Array
  private free: Int32Array
  private freeTop: number

  constructor (initialCapacity = 1024) {
    this.cap = Math.max(16, initialCapacity)
    this.heap = new Int32Array(this.cap)
    this.time = new Float64Array(this.cap)
    this.order = new Float64Array(this.cap)
    this.kind = new Int32Array(this.cap)
    this.a = new Int32Array(this.cap)
    this.b = new Int32Array(this.cap)
    this.c = new Int32Array(this.cap)
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
    this.time[slot] = time
    this.order[slot] = this.seq++
    this.kind[slot] = kind
    this.a[slot] = a
    this.b[slot] = b
    this.c[slot] = c
    this.pushed++
    // sift up
    const heap = this.heap; const tm = this.time; const od = this.order
    let i = this.size++
    while (i > 0) {
      const p = (i - 1) >> 2
      const ps = heap[p]
      if (tm[ps] < time || (tm[ps] === time && od[ps] < od[slot])) break
      heap[i] = ps
      i = p
    }
    heap[i] = slot
  }

  /** Removes the earliest event into cur*; returns false when the queue is empty. */
  pop (): boolean {
    if (this.size === 0) return false
    const heap = this.heap; const tm = this.time; const od = this.order
    const top = heap[0]
    this.curTime = tm[top]; this.curKind = this.kind[top]
    this.curA = this.a[top]; this.curB = this.b[top]; this.curC = this.c[top]
    this.free[this.freeTop++] = top
    const n = --this.size
    if (n === 0) return true
    const last = heap[n]
    const lt = tm[last]; const lo = od[last]
    let i = 0
    for (;;) {
      const c0 = 4 * i + 1
      if (c0 >= n) break
      let best = c0; let bt = tm[heap[c0]]; let bo = od[heap[c0]]
      const end = c0 + 4 < n ? c0 + 4 : n
      for (let c = c0 + 1; c < end; c++) {
        const s = heap[c]; const t = tm[s]
        if (t < bt || (t === bt && od[s] < bo)) { best = c; bt = t; bo = od[s] }
      }
      if (lt < bt || (lt === bt && lo < bo)) break
      heap[i] = heap[best]
      i = best
    }
    heap[i] = last
    return true
  }

  /** Time of the earliest event, or Infinity. */
  peekTime (): number { return this.size === 0 ? Infinity : this.time[this.heap[0]] }

  private grow (): void {
    const old = this.cap; const cap = old * 2
    const g64 = (x: Float64Array): Float64Array => { const y = new Float64Array(cap); y.set(x); return y }
    const g32 = (x: Int32Array): Int32Array => { const y = new Int32Array(cap); y.set(x); return y }
    this.heap = g32(this.heap); this.time = g64(this.time); this.order = g64(this.order)
    this.kind = g32(this.kind); this.a = g32(this.a); this.b = g32(this.b); this.c = g32(this.c)
    this.free = new Int32Array(cap)
    for (let i = 0; i < old; i++) this.free[i] = cap - 1 - i
    this.freeTop = old
    this.cap = cap
  }
}
