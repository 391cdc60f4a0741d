// The task protocol's third route: lease requests, leases, tasks, results and vouchers as sealed
// envelopes through relays that cannot read them (src/net/overlay/envelopes.ts), chunked
// (chunk-messenger.ts). The provider answers the same TaskMessages it answers on /dbc/task
// streams, with the same limits: a peer holding no lease here may send only a small request, a
// lease holder up to what its lease request announced. A lease has no stream here: the provider
// pushes one-way heartbeats while the lease is open and ends it when the holder closes it, its
// heartbeats stop being delivered (the stream's "a beat unread ends the lease"), the holder
// answers a beat with close (it no longer holds the lease) or the lease expires.
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
/** Overlay leases served per holder and in all (each pushes a beat a second at most; beyond: OVERLAY_LEASES_FULL). */
export const MAX_OVERLAY_LEASES_PER_HOLDER = 8
export const MAX_OVERLAY_LEASES = 256
/** Overlay heartbeats go at most twice a second per lease (every beat is an envelope on two relay paths; the submitter loses a lease after 2 s without one). */
export const MIN_OVERLAY_BEAT_MS = 500
/** Closes sent for beats of leases this node no longer holds, at once (a stranger's beats buy no more). */
const MAX_CLOSES_IN_FLIGHT = 16

interface Beats { holder: string, timer?: ReturnType<typeof setInterval>, missed: number, sending: number }

export type TaskProvider = LocalProvider & { acceptVoucher?: VoucherTaker }

export interface TaskEnvelopesInit extends Omit<ChunkMessengerInit, 'onRequest' | 'onOneWay' | 'maxMessageBytes'> {
  /** The provider this node runs (absent: the node only submits). */
  provider?: () => TaskProvider | undefined
  heartbeatMs?: number
  /** A peer broke the protocol (garbage chunks, a task under no lease): charge it. */
  onBadInput?: (peer: string, err: WireError) => void
  /** How long a request waits for its reply (ms; a task's own deadline is added). */
  replyTimeoutMs?: number
  /** Overlay leases served per holder and in all (defaults MAX_OVERLAY_LEASES_PER_HOLDER, MAX_OVERLAY_LEASES). */
  maxLeasesPerHolder?: number
  maxLeases?: number
}

/** How often the provider beats an overlay lease: what the lease asks (else our default), 0.5 to 5 s (the submitter loses a lease after 2 s without a beat: four beats per window). */
export function overlayBeatMs (lease: dbc.task.v1.ILease, defaultMs = 1000): number {
  const asked = lease.heartbeatMs ?? 0
  return Math.min(5000, Math.max(MIN_OVERLAY_BEAT_MS, asked > 0 ? asked : defaultMs))
}

/** A lease held over the overlay: heartbeats come as one-way messages; close tells the provider. */
export interface OverlayLease { close: () => Promise<void> }

export class TaskEnvelopes {
  readonly messenger: ChunkMessenger
  private readonly beats = new Map<string, Beats>()
  private readonly held = new Map<string, () => void>()
  private closing = 0

  constructor (link: EnvelopeLink, private readonly init: TaskEnvelopesInit = {}) {
    this.messenger = new ChunkMessenger(link, {
      ...init,
      maxReplyBytes: init.maxReplyBytes ?? TASK_MAX_FRAME,
      maxMessageBytes: (peer, kind) => this.maxMessageBytes(peer, kind),
      onRequest: async (peer, payload) => await this.serve(peer, payload),
      onOneWay: (peer, kind, payload) => { this.oneWay(peer, kind, payload) },
      onRefused: (peer, code, reason) => {
        init.onRefused?.(peer, code, reason)
        // a malformed chunk no honest sender builds is charged; a limit may be an honest peer's bad
        // luck, a count other than our chunk size implies (CHUNK_SPLIT) a sender with another size
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
    // only heartbeats beat a lease: any answer would also come from a provider that restarted and lost it
    const r = await this.messenger.request(peer, bytes, { signal, timeoutMs: (this.init.replyTimeoutMs ?? 60_000) + extra })
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
        const key = `${peer}\n${toHex(msg.lease.leaseId ?? new Uint8Array())}`
        // the slot is taken before the provider's await: parallel lease messages cannot overshoot the caps
        if (!this.beats.has(key)) {
          let mine = 0
          for (const b of this.beats.values()) if (b.holder === peer) mine++
          const perHolder = this.init.maxLeasesPerHolder ?? MAX_OVERLAY_LEASES_PER_HOLDER; const all = this.init.maxLeases ?? MAX_OVERLAY_LEASES
          if (mine >= perHolder || this.beats.size >= all) {
            throw new DbcError('OVERLAY_LEASES_FULL', `this provider serves ${mine} overlay leases of yours and ${this.beats.size} in all (at most ${perHolder} per holder, ${all} in all)`, { hint: 'close a lease first, or reach this provider on a connection' })
          }
          this.beats.set(key, { holder: peer, missed: 0, sending: 0 })
        }
        try {
          await provider.openLease(msg.lease, sender)
        } catch (err) {
          if (this.beats.get(key)?.timer === undefined) this.beats.delete(key)
          throw err
        }
        if (!this.beats.has(key)) {
          // its holder closed it while the provider opened it
          provider.closeLease?.(msg.lease.leaseId ?? new Uint8Array())
          throw new DbcError('LEASE_CLOSED', 'the lease was closed while it was being opened')
        }
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
      // a task under a lease the provider lost (it restarted) comes from an honest holder until its beats stop
      if (err instanceof WireError && err.code !== 'TASK_NO_LEASE') this.init.onBadInput?.(peer, err)
      throw err
    }
  }

  /** Pushes heartbeats for a lease until its holder closes it, stops taking them, or the lease expires. */
  private startBeats (holder: string, lease: dbc.task.v1.ILease): void {
    const leaseId = lease.leaseId ?? new Uint8Array()
    const key = `${holder}\n${toHex(leaseId)}`
    const old = this.beats.get(key)
    if (old !== undefined) clearInterval(old.timer)
    const every = overlayBeatMs(lease, this.init.heartbeatMs)
    const expiresAt = Number(lease.expiresAt ?? 0)
    const now = this.init.now ?? Date.now
    // beats do not wait for the previous one's ack (a relay round trip can outlast the holder's
    // lease timeout on a loaded path), but a holder that takes none holds at most a few in flight
    const b: Beats = { holder, missed: 0, sending: 0 }
    b.timer = setInterval(() => {
      if (now() >= expiresAt) { this.endLease(key, leaseId); return }
      if (b.sending >= MAX_BEATS_IN_FLIGHT) return
      b.sending++
      const beat = TaskMessage.encode({ heartbeat: { leaseId, at: Date.now() } }).finish()
      this.messenger.oneWay(holder, 'heartbeat', beat, AbortSignal.timeout(Math.max(every * 4, 10_000))).then(() => { b.missed = 0 }, () => {
        if (++b.missed >= MAX_MISSED_BEATS) this.endLease(key, leaseId)
      }).finally(() => { b.sending-- })
    }, every)
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
    const leaseId = m.value.heartbeat.leaseId ?? new Uint8Array()
    const beat = this.held.get(`${peer}\n${toHex(leaseId)}`)
    if (beat !== undefined) { beat(); return }
    // a lease we no longer hold (its close was lost, or we restarted): tell the provider to end it
    if (this.closing >= MAX_CLOSES_IN_FLIGHT || leaseId.length === 0 || leaseId.length > 64) return
    this.closing++
    void this.messenger.oneWay(peer, 'close', leaseId, AbortSignal.timeout(10_000)).catch(() => {}).finally(() => { this.closing-- })
  }

  /** Open leases this node serves over the overlay, and leases it holds. */
  status (): Record<string, unknown> {
    return { servedLeases: this.beats.size, heldLeases: this.held.size, pending: this.messenger.assembler.pending, ...this.messenger.stats, assembled: this.messenger.assembler.stats }
  }
}

function bytesOf (peer: string): Uint8Array {
  try { return peerIdBytesOf(peer) } catch { return new Uint8Array() }
}
