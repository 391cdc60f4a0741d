// A bounded set of recently seen ids (a ring buffer + a Set): duplicate suppression whose memory
// a flood can not grow. An id older than `capacity` insertions is forgotten. The ring grows on
// demand, so 100k simulated nodes with a large capacity but little traffic stay small.
export class SeenSet<K = string> {
  private readonly ring: K[] = []
  private readonly set = new Set<K>()
  private next = 0

  constructor (readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('SeenSet capacity must be a positive integer')
  }

  has (id: K): boolean { return this.set.has(id) }

  /** Records `id`; returns false when it was already there. */
  add (id: K): boolean {
    if (this.set.has(id)) return false
    if (this.ring.length < this.capacity) {
      this.ring.push(id)
      this.set.add(id)
      return true
    }
    this.set.delete(this.ring[this.next])
    this.ring[this.next] = id
    this.next = (this.next + 1) % this.capacity
    this.set.add(id)
    return true
  }

  get size (): number { return this.set.size }
}
