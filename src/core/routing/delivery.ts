// The sender's side of multi-path delivery: a message goes out over k paths at once; the first
// ack (OK or DUPLICATE) from the recipient settles it; a path that fails or stays silent past the
// ack timeout is replaced by a spare path (or an earlier one again) until the attempt budget or
// the message's expiry runs out. Pure: time comes in, sends and events come out.
import type { Path } from './paths.js'

export type AckStatus = 'ok' | 'duplicate' | 'rejected' | 'unreachable'

export interface SendCommand<P> {
  /** The sender's name for the message (unique among those in flight). */
  id: string
  recipient: P
  pathId: number
  /** undefined = straight to the recipient; otherwise the relay to hand the copy to. */
  via?: P
  /** Hops the relayed copy may still take (the relay protocol's hops_left). */
  hopsLeft: number
}

export type DeliveryEvent<P> =
  | { type: 'delivered', id: string, recipient: P, pathId: number, via?: P, latencyMs: number, attempts: number }
  | { type: 'failed', id: string, recipient: P, reason: 'expired' | 'rejected' | 'no-path' | 'attempts-exhausted', detail?: string, attempts: number }

export interface DeliveryInit {
  ackTimeoutMs?: number
  /** Copies sent per message at most, the first k included. */
  maxAttempts?: number
  /** hops_left for relayed copies (relay → recipient is 1 hop). */
  hopLimit?: number
  /** Messages in flight at most; `send` refuses beyond this (backpressure to the caller). */
  maxInFlight?: number
}

export const DELIVERY_DEFAULTS = { ackTimeoutMs: 2_000, maxAttempts: 4, hopLimit: 2, maxInFlight: 10_000 }

interface InFlightPath<P> { pathId: number, path: Path<P>, deadline: number, open: boolean }

interface Message<P> {
  id: string
  recipient: P
  sentAt: number
  expiresAt: number
  attempts: number
  nextPathId: number
  live: Array<InFlightPath<P>>
  spares: Array<Path<P>>
  used: Array<Path<P>>
}

export class MultipathDelivery<P> {
  private readonly messages = new Map<string, Message<P>>()
  private outbound: Array<SendCommand<P>> = []
  private events: Array<DeliveryEvent<P>> = []
  readonly ackTimeoutMs: number
  readonly maxAttempts: number
  readonly hopLimit: number
  readonly maxInFlight: number

  constructor (init: DeliveryInit = {}) {
    this.ackTimeoutMs = init.ackTimeoutMs ?? DELIVERY_DEFAULTS.ackTimeoutMs
    this.maxAttempts = init.maxAttempts ?? DELIVERY_DEFAULTS.maxAttempts
    this.hopLimit = init.hopLimit ?? DELIVERY_DEFAULTS.hopLimit
    this.maxInFlight = init.maxInFlight ?? DELIVERY_DEFAULTS.maxInFlight
  }

  /**
   * Starts delivering message `id` over `paths` (usually from choosePaths), keeping `spares` for
   * retries. Returns false (and does nothing) when the id is already in flight, there is no path,
   * or too many messages are in flight.
   */
  send (now: number, msg: { id: string, recipient: P, expiresAt: number }, paths: Array<Path<P>>, spares: Array<Path<P>> = []): boolean {
    if (this.messages.has(msg.id) || paths.length === 0 || this.messages.size >= this.maxInFlight) return false
    const m: Message<P> = { id: msg.id, recipient: msg.recipient, sentAt: now, expiresAt: msg.expiresAt, attempts: 0, nextPathId: 0, live: [], spares: spares.slice(), used: [] }
    this.messages.set(msg.id, m)
    for (const p of paths) this.launch(now, m, p)
    return true
  }

  private launch (now: number, m: Message<P>, path: Path<P>): void {
    const pathId = m.nextPathId++
    m.attempts++
    m.used.push(path)
    m.live.push({ pathId, path, deadline: Math.min(now + this.ackTimeoutMs, m.expiresAt), open: true })
    const cmd: SendCommand<P> = { id: m.id, recipient: m.recipient, pathId, hopsLeft: path.via === undefined ? 0 : this.hopLimit }
    if (path.via !== undefined) cmd.via = path.via
    this.outbound.push(cmd)
  }

  /** An ack for one copy. Returns false when the message is unknown (late, or never ours). */
  handleAck (now: number, id: string, pathId: number, status: AckStatus, detail?: string): boolean {
    const m = this.messages.get(id)
    if (m === undefined) return false
    const p = m.live.find(x => x.pathId === pathId)
    if (p === undefined) return false
    if (status === 'ok' || status === 'duplicate') {
      this.messages.delete(id)
      const ev: DeliveryEvent<P> = { type: 'delivered', id, recipient: m.recipient, pathId, latencyMs: now - m.sentAt, attempts: m.attempts }
      if (p.path.via !== undefined) ev.via = p.path.via
      this.events.push(ev)
      return true
    }
    if (status === 'rejected') {
      // The recipient itself refused the content: another path will not change its mind.
      this.messages.delete(id)
      this.events.push({ type: 'failed', id, recipient: m.recipient, reason: 'rejected', detail, attempts: m.attempts })
      return true
    }
    this.pathFailed(now, id, pathId)
    return true
  }

  /** A copy's path broke (stream error, relay said unreachable): retry elsewhere if we can. */
  pathFailed (now: number, id: string, pathId: number): void {
    const m = this.messages.get(id)
    if (m === undefined) return
    const p = m.live.find(x => x.pathId === pathId && x.open)
    if (p === undefined) return
    p.open = false
    this.retry(now, m)
  }

  private retry (now: number, m: Message<P>): void {
    if (now >= m.expiresAt) return this.fail(m, 'expired')
    if (m.attempts >= this.maxAttempts) {
      if (!m.live.some(x => x.open)) this.fail(m, 'attempts-exhausted')
      return
    }
    // A fresh spare first; else the earliest used path that is not carrying a copy right now.
    let next = m.spares.shift()
    if (next === undefined) {
      next = m.used.find(u => !m.live.some(x => x.open && x.path === u))
    }
    if (next === undefined) {
      if (!m.live.some(x => x.open)) this.fail(m, 'no-path')
      return
    }
    this.launch(now, m, next)
  }

  private fail (m: Message<P>, reason: 'expired' | 'no-path' | 'attempts-exhausted'): void {
    this.messages.delete(m.id)
    this.events.push({ type: 'failed', id: m.id, recipient: m.recipient, reason, attempts: m.attempts })
  }

  /** Times out silent copies (retrying them) and expired messages. */
  tick (now: number): void {
    for (const m of [...this.messages.values()]) {
      if (now >= m.expiresAt) { this.fail(m, 'expired'); continue }
      for (const p of m.live) {
        if (p.open && p.deadline <= now) {
          p.open = false
          this.retry(now, m)
          if (!this.messages.has(m.id)) break
        }
      }
      // Old closed paths carry no state worth keeping.
      if (m.live.length > 8) m.live = m.live.filter(x => x.open || m.live.indexOf(x) >= m.live.length - 8)
    }
  }

  nextTimeout (): number {
    let t = Infinity
    for (const m of this.messages.values()) {
      if (m.expiresAt < t) t = m.expiresAt
      for (const p of m.live) if (p.open && p.deadline < t) t = p.deadline
    }
    return t
  }

  pollOutbound (): Array<SendCommand<P>> {
    const out = this.outbound
    this.outbound = []
    return out
  }

  pollEvents (): Array<DeliveryEvent<P>> {
    const out = this.events
    this.events = []
    return out
  }

  get inFlight (): number { return this.messages.size }
}
