// Slot accounting for a compute peer: which tasks fit now given CPU slots, memory and GPUs.
// Pure bookkeeping; the runtime (src/compute/slots.ts) owns the queue, timers and executors.

export interface GpuDevice { index: number, model: string, memoryMib: number }

export interface SlotCapacity {
  /** Concurrent CPU tasks (normally the core count, minus what the provider keeps for itself). */
  cpuSlots: number
  memoryMib: number
  gpus: GpuDevice[]
}

export interface SlotDemand {
  cpus: number
  memoryMib: number
  gpus: number
  /** Normalised model wanted; empty or absent: any. */
  gpuModel?: string
  gpuMemoryMib?: number
}

export interface SlotGrant { cpus: number, memoryMib: number, gpuIndexes: number[] }

export type Admission =
  | { kind: 'fits', grant: SlotGrant }
  /** Does not fit now, but will when running tasks finish. */
  | { kind: 'wait', reason: string }
  /** Can never fit on this peer, however long it waits. */
  | { kind: 'never', reason: string }

export function normalizeDemand (d: Partial<SlotDemand>): SlotDemand {
  return {
    cpus: Math.max(1, Math.ceil(d.cpus ?? 1)),
    memoryMib: Math.max(0, Math.ceil(d.memoryMib ?? 0)),
    gpus: Math.max(0, Math.floor(d.gpus ?? 0)),
    gpuModel: d.gpuModel ?? '',
    gpuMemoryMib: d.gpuMemoryMib ?? 0
  }
}

export class SlotLedger {
  readonly capacity: SlotCapacity
  private readonly grants = new Map<string, SlotGrant>()
  private usedCpus = 0
  private usedMemoryMib = 0
  private readonly gpuBusy: boolean[]

  constructor (capacity: SlotCapacity) {
    this.capacity = capacity
    this.gpuBusy = capacity.gpus.map(() => false)
  }

  get running (): number { return this.grants.size }

  free (): { cpus: number, memoryMib: number, gpus: number } {
    return {
      cpus: this.capacity.cpuSlots - this.usedCpus,
      memoryMib: this.capacity.memoryMib - this.usedMemoryMib,
      gpus: this.gpuBusy.filter(b => !b).length
    }
  }

  private matchingGpus (d: SlotDemand): GpuDevice[] {
    return this.capacity.gpus.filter(g =>
      (d.gpuModel === undefined || d.gpuModel === '' || g.model === d.gpuModel) &&
      (d.gpuMemoryMib === undefined || g.memoryMib >= d.gpuMemoryMib))
  }

  /** Whether `demand` fits now, later, or never; allocates nothing. */
  check (demand: Partial<SlotDemand>): Admission {
    const d = normalizeDemand(demand)
    const cap = this.capacity
    if (d.cpus > cap.cpuSlots) return { kind: 'never', reason: `needs ${d.cpus} CPU slots, this peer has ${cap.cpuSlots}` }
    if (d.memoryMib > cap.memoryMib) return { kind: 'never', reason: `needs ${d.memoryMib} MiB of memory, this peer offers ${cap.memoryMib} MiB` }
    const matching = this.matchingGpus(d)
    if (d.gpus > matching.length) {
      const what = d.gpuModel !== '' ? `${d.gpus}x ${d.gpuModel ?? ''}${(d.gpuMemoryMib ?? 0) > 0 ? ` with >= ${d.gpuMemoryMib ?? 0} MiB` : ''}` : `${d.gpus} GPU(s)`
      return { kind: 'never', reason: `needs ${what}, this peer has ${matching.length} matching GPU(s)` }
    }
    if (d.cpus > cap.cpuSlots - this.usedCpus) return { kind: 'wait', reason: 'all CPU slots are busy' }
    if (d.memoryMib > cap.memoryMib - this.usedMemoryMib) return { kind: 'wait', reason: 'not enough free memory' }
    const freeGpus = matching.filter(g => !this.gpuBusy[cap.gpus.indexOf(g)])
    if (d.gpus > freeGpus.length) return { kind: 'wait', reason: 'the matching GPUs are busy' }
    return { kind: 'fits', grant: { cpus: d.cpus, memoryMib: d.memoryMib, gpuIndexes: freeGpus.slice(0, d.gpus).map(g => g.index) } }
  }

  /** Allocates when the demand fits now; otherwise returns why not and changes nothing. */
  allocate (id: string, demand: Partial<SlotDemand>): Admission {
    if (this.grants.has(id)) return { kind: 'never', reason: `task ${id} already holds a slot` }
    const a = this.check(demand)
    if (a.kind !== 'fits') return a
    this.grants.set(id, a.grant)
    this.usedCpus += a.grant.cpus
    this.usedMemoryMib += a.grant.memoryMib
    for (const i of a.grant.gpuIndexes) this.gpuBusy[this.capacity.gpus.findIndex(g => g.index === i)] = true
    return a
  }

  /** Frees the slot a task held; false when it held none (already released). */
  release (id: string): boolean {
    const g = this.grants.get(id)
    if (g === undefined) return false
    this.grants.delete(id)
    this.usedCpus -= g.cpus
    this.usedMemoryMib -= g.memoryMib
    for (const i of g.gpuIndexes) this.gpuBusy[this.capacity.gpus.findIndex(x => x.index === i)] = false
    return true
  }

  /** How many tasks of this shape could run at once on an idle peer (what an offer can promise). */
  concurrentCapacity (demand: Partial<SlotDemand>): number {
    const d = normalizeDemand(demand)
    let n = Math.floor(this.capacity.cpuSlots / d.cpus)
    if (d.memoryMib > 0) n = Math.min(n, Math.floor(this.capacity.memoryMib / d.memoryMib))
    if (d.gpus > 0) n = Math.min(n, Math.floor(this.matchingGpus(d).length / d.gpus))
    return Math.max(0, n)
  }

  /** How many more tasks of this shape fit right now. */
  freeSlotsFor (demand: Partial<SlotDemand>): number {
    const d = normalizeDemand(demand)
    const f = this.free()
    let n = Math.floor(f.cpus / d.cpus)
    if (d.memoryMib > 0) n = Math.min(n, Math.floor(f.memoryMib / d.memoryMib))
    if (d.gpus > 0) {
      const freeMatching = this.matchingGpus(d).filter(g => !this.gpuBusy[this.capacity.gpus.indexOf(g)]).length
      n = Math.min(n, Math.floor(freeMatching / d.gpus))
    }
    return Math.max(0, n)
  }
}
