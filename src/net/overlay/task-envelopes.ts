// The task protocol's third route: lease requests, leases, tasks, results and vouchers as sealed
// envelopes through relays that cannot read them (src/net/overlay/envelopes.ts), chunked
// (chunk-messenger.ts). The provider answers the same TaskMessages it answers on /dbc/task
// streams, with the same limits: a peer holding no lease here may send only a small request, a
// lease holder up to what its lease request announced. A lease has no stream here: the provider
// pushes one-way heartbeats while the lease is open and ends it when the holder closes it or
// its heartbeats stop being delivered (the stream's "a beat unread ends the lease").
import { peerIdBytesOf } from '../peer-ids.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { decodeMessage } from '../../wire/decode.js'
import { dbc } from '../../wire/gen/wire.js'
import { DbcError, WireError } from '../../errors.js'
import { toHex } from '../../core/identity/index.js'
import { withOwnCode, type LocalProvider } from '../../core/scheduler/ports.js'
import { TASK_MAX_FRAME, TASK_REQUEST_MAX_FRAME, taskFrameCap, type VoucherTaker } from '../tasks.js'
import { ChunkMessenger, type EnvelopeLink, type ChunkMessengerInit } from './chunk-messenger.js'
import type { ChunkRefusal } from '../../core/routing/chunker.js'

const TaskMessage = dbc.task.v1.TaskMessage
/** Consecutive heartbeats the holder did not take before the provider ends the lease. */
const MAX_MISSED_BEATS = 3
/** Heartbeats on their way to one holder at once. */
const MAX_BEATS_IN_FLIGHT = 4
const ONE_WAY_MAX_BYTES = 4096

export type TaskProvider = LocalProvider & { acceptVoucher?: VoucherTaker }

export interface TaskEnvelopesInit extends Omit<ChunkMessengerInit, 'onRequest' | 'onOneWay' | 'maxMessageBytes'> {
  /** The provider this node runs (absent: the node only submits). */
  provider?: () => TaskProvider | undefined
  heartbeatMs?: number
  /** A peer broke the protocol (garbage chunks, a task under no lease): charge it. */
  onBadInput?: (peer: string, err: WireError) => void
  /** How long a request waits for its reply (ms; a task's own deadline is added). */
  replyTimeoutMs?: number
}

/** A lease held over the overlay: heartbeats come as one-way messages; close tells the provider. */
export interface OverlayLease { close: () => Promise<void> }

export class TaskEnvelopes {
  readonly messenger: ChunkMessenger
  private readonly beats = new Map<string, { holder: string, timer: ReturnType<typeof setInterval>, missed: number, sending: number }>()
  private readonly held = new Map<string, () => void>()

  constructor (link: EnvelopeLink, private readonly init: TaskEnvelopesInit = {}) {
    this.messenger = new ChunkMessenger(link, {
      ...init,
      maxMessageBytes: (peer, kind) => this.maxMessageBytes(peer, kind),
      onRequest: async (peer, payload) => await this.serve(peer, payload),
      onOneWay: (peer, kind, payload) => { this.oneWay(peer, kind, payload) },
      onRefused: (peer, code, reason) => {
        init.onRefused?.(peer, code, reason)
        // a malformed chunk no honest sender builds is charged; a limit may be an honest peer's bad luck
        if (code === 'CHUNK_MALFORMED' || code === 'CHUNK_MISMATCH') init.onBadInput?.(peer, new WireError(code as ChunkRefusal, reason))
      }
    })
  }

  close (): void {
    for (const b of this.beats.values()) clearInterval(b.timer)
    this.beats.clear()
    this.held.clear()
    this.messenger.close()
  }

  // ---- submitter side ----

  /** One TaskMessage out, its answer back (an offer, a result, a voucher); refusals reject typed. */
  async request (peer: string, msg: dbc.task.v1.ITaskMessage, signal?: AbortSignal): Promise<{ reply: dbc.task.v1.TaskMessage, relays: string[] }> {
    const bytes = TaskMessage.encode(msg).finish()
    const extra = msg.task?.deadlineMs ?? 0
    const r = await this.messenger.request(peer, bytes, { signal, timeoutMs: (this.init.replyTimeoutMs ?? 60_000) + extra })
    // an answer proves the provider alive as well as a beat does (beats share the slower overlay path)
    for (const [key, beat] of this.held) if (key.startsWith(`${peer}\n`)) beat()
    const m = decodeMessage(TaskMessage, r.payload)
    if (!m.ok) throw m.error
    const v = m.value
    if (v.offer == null && v.result == null && v.heartbeat == null && v.voucher == null) throw new WireError('UNEXPECTED_MESSAGE', 'the provider answered with no offer, result, heartbeat or voucher')
    return { reply: v, relays: r.relays }
  }

  /** Opens a lease; `onHeartbeat` runs for the acknowledging beat and every pushed one. */
  async openLease (peer: string, lease: dbc.task.v1.ILease, opts: { signal?: AbortSignal, onHeartbeat: () => void }): Promise<OverlayLease & { relays: string[] }> {
    const key = `${peer}\n${toHex(lease.leaseId ?? new Uint8Array())}`
    this.held.set(key, opts.onHeartbeat)
    let r
    try {
      r = await this.request(peer, { lease }, opts.signal)
    } catch (err) {
      this.held.delete(key)
      throw err
    }
    if (r.reply.heartbeat == null) { this.held.delete(key); throw new DbcError('LEASE_REFUSED', `provider ${peer} did not accept the lease`) }
    return {
      relays: r.relays,
      close: async () => {
        if (!this.held.delete(key)) return
        await this.messenger.oneWay(peer, 'close', lease.leaseId ?? new Uint8Array(), AbortSignal.timeout(10_000)).catch(() => {})
      }
    }
  }

  // ---- provider side ----

  private maxMessageBytes (peer: string, kind: string): number {
    if (kind !== 'request') return ONE_WAY_MAX_BYTES
    const p = this.init.provider?.()
    if (p === undefined) return 0
    if (p.leasedInputBytes === undefined) return TASK_MAX_FRAME
    const leased = p.leasedInputBytes(bytesOf(peer))
    return leased === undefined ? TASK_REQUEST_MAX_FRAME : taskFrameCap(leased)
  }

  private async serve (peer: string, payload: Uint8Array): Promise<Uint8Array> {
    const provider = this.init.provider?.()
    if (provider === undefined) throw new DbcError('NOT_A_PROVIDER', 'this node serves no tasks')
    const sender = bytesOf(peer)
    const m = decodeMessage(TaskMessage, payload)
    try {
      if (!m.ok) throw m.error
      const msg = m.value
      if (msg.leaseRequest != null) return TaskMessage.encode({ offer: await provider.offer(msg.leaseRequest, sender) }).finish()
      if (msg.lease != null) {
        await provider.openLease(msg.lease, sender)
        this.startBeats(peer, msg.lease)
        return TaskMessage.encode({ heartbeat: { leaseId: msg.lease.leaseId, at: Date.now() } }).finish()
      }
      if (msg.task != null) {
        const code = msg.task.code ?? new Uint8Array()
        const task = code.length > 0 && (msg.task.codeHash == null || msg.task.codeHash.length === 0) ? { ...msg.task, codeHash: sha256(code) } : msg.task
        let result: dbc.task.v1.ITaskResult
        try {
          result = withOwnCode(await provider.runTask(task, sender, { charge: err => this.init.onBadInput?.(peer, err instanceof WireError ? err : new WireError(err.code, err.message)) }))
        } catch (err) {
          if (err instanceof WireError) throw err
          const e = err as DbcError
          const code = e.code ?? 'TASK_FAILED'
          result = { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: false, code, error: `${code}: ${e.message}` }
        }
        return TaskMessage.encode({ result }).finish()
      }
      if (msg.voucher != null) {
        if (provider.acceptVoucher === undefined) throw new DbcError('PAYMENT_OFF', 'this provider takes no vouchers')
        return TaskMessage.encode({ voucher: await provider.acceptVoucher(msg.voucher, sender) }).finish()
      }
      throw new WireError('UNEXPECTED_MESSAGE', 'the task application expects a lease request, a lease, a task or a voucher')
    } catch (err) {
      if (err instanceof WireError) this.init.onBadInput?.(peer, err)
      throw err
    }
  }

  /** Pushes heartbeats for a lease until its holder closes it or stops taking them. */
  private startBeats (holder: string, lease: dbc.task.v1.ILease): void {
    const leaseId = lease.leaseId ?? new Uint8Array()
    const key = `${holder}\n${toHex(leaseId)}`
    const old = this.beats.get(key)
    if (old !== undefined) clearInterval(old.timer)
    const every = Math.min(5000, Math.max(100, (lease.heartbeatMs ?? 0) > 0 ? (lease.heartbeatMs ?? 1000) : (this.init.heartbeatMs ?? 1000)))
    // beats do not wait for the previous one's ack (a relay round trip can outlast the holder's
    // lease timeout on a loaded path), but a holder that takes none holds at most a few in flight
    const b = { holder, missed: 0, sending: 0, timer: setInterval(() => {
      if (b.sending >= MAX_BEATS_IN_FLIGHT) return
      b.sending++
      const beat = TaskMessage.encode({ heartbeat: { leaseId, at: Date.now() } }).finish()
      this.messenger.oneWay(holder, 'heartbeat', beat, AbortSignal.timeout(Math.max(every * 4, 10_000))).then(() => { b.missed = 0 }, () => {
        if (++b.missed >= MAX_MISSED_BEATS) this.endLease(key, leaseId)
      }).finally(() => { b.sending-- })
    }, every) }
    b.timer.unref?.()
    this.beats.set(key, b)
  }

  private endLease (key: string, leaseId: Uint8Array): void {
    const b = this.beats.get(key)
    if (b === undefined) return
    clearInterval(b.timer)
    this.beats.delete(key)
    this.init.provider?.()?.closeLease?.(leaseId)
  }

  private oneWay (peer: string, kind: 'heartbeat' | 'close', payload: Uint8Array): void {
    if (kind === 'close') {
      // only the holder ends its lease: the key includes the sender
      this.endLease(`${peer}\n${toHex(payload)}`, payload)
      return
    }
    const m = decodeMessage(TaskMessage, payload)
    if (!m.ok || m.value.heartbeat == null) return
    this.held.get(`${peer}\n${toHex(m.value.heartbeat.leaseId ?? new Uint8Array())}`)?.()
  }

  /** Open leases this node serves over the overlay, and leases it holds. */
  status (): Record<string, unknown> {
    return { servedLeases: this.beats.size, heldLeases: this.held.size, pending: this.messenger.assembler.pending, ...this.messenger.stats, assembled: this.messenger.assembler.stats }
  }
}

function bytesOf (peer: string): Uint8Array {
  try { return peerIdBytesOf(peer) } catch { return new Uint8Array() }
}
