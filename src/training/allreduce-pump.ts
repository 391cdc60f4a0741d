// The worker's edge around its all-reduce machines (core/training/allreduce.ts, sans-IO): starts a
// round, sends what a machine produced, hands a finished round's result to whoever waits for it,
// and re-arms the machine's deadline timer. Nothing here decides anything.
import { performance } from 'node:perf_hooks'
import type { AllReducePeer, RoundResult, SliceChunk } from '../core/training/allreduce.js'

export interface AllReduceStart {
  round: number
  members: string[]
  vector: Float32Array
  deadlineAt: number
  weight: number
  /** Bandwidths the coordinator measured for the round's members (its RoundStart). */
  bandwidths?: number[]
  /** What a slice whose owner's gather never came becomes (the same on every survivor). */
  fallback?: Float32Array
}

export class AllReducePump {
  private readonly timers = new Map<AllReducePeer, NodeJS.Timeout>()
  private readonly waiting = new Map<AllReducePeer, (r: RoundResult) => void>()
  private stopped = false

  /** `send`: one chunk a machine produced, to a member; `minMs`: the least time a round is given. */
  constructor (private readonly send: (machine: AllReducePeer, to: string, chunk: SliceChunk) => void, private readonly minMs: number) {}

  /** Averages `s.vector` with the round's members through `machine`; resolves with the round's result. */
  async run (machine: AllReducePeer, s: AllReduceStart): Promise<RoundResult> {
    const now = performance.now()
    return await new Promise<RoundResult>(resolve => {
      this.waiting.set(machine, resolve)
      machine.start(now, s.round, s.members, s.vector, { deadlineMs: Math.max(this.minMs, s.deadlineAt - now), weight: s.weight, bandwidths: s.bandwidths, fallback: s.fallback })
      this.pump(machine)
    })
  }

  /** A member's chunk for `machine`. */
  chunk (machine: AllReducePeer, from: string, chunk: SliceChunk): void {
    machine.handleChunk(performance.now(), from, chunk)
    this.pump(machine)
  }

  /** Timers cleared; a result still awaited is never delivered (the round ends at its own pace). */
  stop (): void {
    this.stopped = true
    for (const t of this.timers.values()) clearTimeout(t)
    this.timers.clear()
    this.waiting.clear()
  }

  /** Sends what the machine produced, delivers a finished round, re-arms the deadline timer. */
  private pump (machine: AllReducePeer): void {
    for (const o of machine.pollOutbound()) this.send(machine, o.to, o.chunk)
    const r = machine.pollResult()
    const w = this.waiting.get(machine)
    if (r !== undefined && w !== undefined) {
      this.waiting.delete(machine)
      w(r)
    }
    const old = this.timers.get(machine)
    if (old !== undefined) { clearTimeout(old); this.timers.delete(machine) }
    const next = machine.nextTimeout()
    if (next !== undefined && !this.stopped) {
      this.timers.set(machine, setTimeout(() => {
        this.timers.delete(machine)
        machine.handleTimeout(performance.now())
        this.pump(machine)
      }, Math.max(0, next - performance.now()) + 1))
    }
  }
}
