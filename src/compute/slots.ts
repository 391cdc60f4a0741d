// Admission for a compute peer: a task gets a slot now, waits in a bounded queue, or is refused
// with a reason. Queued tasks can be cancelled; events report queueing, start, progress and end.
// The bookkeeping is core/compute/slot-ledger.ts; this adds the queue and the waiting.
import { EventEmitter } from 'node:events'
import { SlotLedger, normalizeDemand, type SlotCapacity, type SlotDemand, type SlotGrant } from '../core/compute/slot-ledger.js'
import { ExecutorError } from '../errors.js'

export const SlotErrorCode = {
  QUEUE_FULL: 'SLOT_QUEUE_FULL',
  NEVER_FITS: 'SLOT_NEVER_FITS',
  CANCELLED: 'TASK_CANCELLED',
  STOPPED: 'PEER_STOPPED'
} as const

export type SlotEvent =
  | { type: 'queued', taskId: string, position: number, reason: string }
  | { type: 'started', taskId: string, grant: SlotGrant }
  | { type: 'progress', taskId: string, fraction: number }
  | { type: 'finished', taskId: string, ok: boolean }
  | { type: 'refused', taskId: string, reason: string }
  | { type: 'cancelled', taskId: string }

export interface SlotManagerInit {
  capacity: SlotCapacity
  /** Tasks that may wait for a slot; more are refused. Default 64. */
  maxQueue?: number
}

interface Waiter { taskId: string, demand: SlotDemand, resolve: (g: SlotGrant) => void, reject: (e: Error) => void, cleanup: () => void }

export class SlotManager {
  readonly ledger: SlotLedger
  readonly events = new EventEmitter<{ event: [SlotEvent] }>()
  private readonly maxQueue: number
  private readonly queue: Waiter[] = []

  constructor (init: SlotManagerInit) {
    this.ledger = new SlotLedger(init.capacity)
    this.maxQueue = init.maxQueue ?? 64
  }

  get queued (): number { return this.queue.length }
  get running (): number { return this.ledger.running }

  emit (e: SlotEvent): void { this.events.emit('event', e) }

  /**
   * Resolves with the slot grant when the task may start. Rejects with an ExecutorError when
   * the task can never fit here, the queue is full, or `signal` aborts while it waits.
   */
  async acquire (taskId: string, demand: Partial<SlotDemand>, opts: { signal?: AbortSignal } = {}): Promise<SlotGrant> {
    const d = normalizeDemand(demand)
    if (opts.signal?.aborted === true) throw new ExecutorError(SlotErrorCode.CANCELLED, `task ${taskId} was cancelled before it got a slot`)
    // Backfill: a task that fits now starts now, even past queued ones waiting for other
    // resources (a CPU task need not wait behind a GPU task). Big tasks could starve under a
    // steady stream of small ones; the queue bound and lease admission keep that in check.
    const a = this.ledger.allocate(taskId, d)
    if (a.kind === 'fits') {
      this.emit({ type: 'started', taskId, grant: a.grant })
      return a.grant
    }
    if (a.kind === 'never') {
      this.emit({ type: 'refused', taskId, reason: a.reason })
      throw new ExecutorError(SlotErrorCode.NEVER_FITS, `task ${taskId} refused: it ${a.reason}`, { hint: 'ask a peer with more resources, or lower the task\'s resource needs' })
    }
    if (this.queue.length >= this.maxQueue) {
      const reason = `the queue is full (${this.maxQueue} tasks waiting)`
      this.emit({ type: 'refused', taskId, reason })
      throw new ExecutorError(SlotErrorCode.QUEUE_FULL, `task ${taskId} refused: ${reason}`, { hint: 'retry later or send the task to another peer' })
    }
    return await new Promise<SlotGrant>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter)
        if (i >= 0) this.queue.splice(i, 1)
        this.emit({ type: 'cancelled', taskId })
        reject(new ExecutorError(SlotErrorCode.CANCELLED, `task ${taskId} was cancelled while it waited for a slot`))
      }
      const waiter: Waiter = { taskId, demand: d, resolve, reject, cleanup: () => opts.signal?.removeEventListener('abort', onAbort) }
      opts.signal?.addEventListener('abort', onAbort, { once: true })
      this.queue.push(waiter)
      this.emit({ type: 'queued', taskId, position: this.queue.length, reason: a.kind === 'wait' ? a.reason : 'other tasks are waiting' })
    })
  }

  /** Starts no queued task from now on (a drain: they wait for drain() at the stop). */
  hold (): void { this.held = true }
  private held = false

  /** Frees a task's slot and starts the queued tasks that now fit (in order; smaller ones may pass). `quiet`: no 'finished' event (a held slot, not a task). */
  release (taskId: string, ok = true, quiet = false): void {
    if (!this.ledger.release(taskId)) return
    if (!quiet) this.emit({ type: 'finished', taskId, ok })
    if (this.held) return
    for (let i = 0; i < this.queue.length;) {
      const w = this.queue[i]
      const a = this.ledger.allocate(w.taskId, w.demand)
      if (a.kind !== 'fits') { i++; continue }
      this.queue.splice(i, 1)
      w.cleanup()
      this.emit({ type: 'started', taskId: w.taskId, grant: a.grant })
      w.resolve(a.grant)
    }
  }

  /** Refuses every queued task (the peer is stopping). */
  drain (): void {
    for (const w of this.queue.splice(0)) {
      w.cleanup()
      w.reject(new ExecutorError(SlotErrorCode.STOPPED, `task ${w.taskId} was dropped: the compute peer is stopping`))
    }
  }
}
