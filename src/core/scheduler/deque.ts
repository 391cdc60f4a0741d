// A growable ring buffer of integers: the task queue pushes retries at the front and new
// copies at the back, both O(1).
export class IntDeque {
  private buf: Int32Array
  private head = 0
  private size = 0

  constructor (capacity = 16) { this.buf = new Int32Array(Math.max(4, capacity)) }

  get length (): number { return this.size }

  private grow (): void {
    const next = new Int32Array(this.buf.length * 2)
    for (let i = 0; i < this.size; i++) next[i] = this.buf[(this.head + i) % this.buf.length]
    this.buf = next
    this.head = 0
  }

  pushBack (v: number): void {
    if (this.size === this.buf.length) this.grow()
    this.buf[(this.head + this.size) % this.buf.length] = v
    this.size++
  }

  pushFront (v: number): void {
    if (this.size === this.buf.length) this.grow()
    this.head = (this.head - 1 + this.buf.length) % this.buf.length
    this.buf[this.head] = v
    this.size++
  }

  popFront (): number | undefined {
    if (this.size === 0) return undefined
    const v = this.buf[this.head]
    this.head = (this.head + 1) % this.buf.length
    this.size--
    return v
  }
}
