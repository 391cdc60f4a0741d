// The read budget of streams this node opened and a peer answers with large frames (a provider's
// results on the submitter's lease streams and task streams). Unlike inbound streams (guard.ts,
// which reserve a frame's announced length at its prefix and refuse past the budgets), a stream
// here counts the bytes it actually holds (a partial frame's bytes as they arrive, frames decoded
// and unread), and past the node's budget or the peer's share it STOPS READING: libp2p's yamux
// then grants the sender no more window, so the sender stops. It reads again when the budget frees
// (first paused, first resumed). An honest large result waits; it is not refused and its sender is
// not charged. A prefix alone holds nothing.
//
// Progress: streams paused mid-frame hold bytes that only their own next bytes release, so when
// streams wait, one of them (the longest waiting) reads past the budget until its frame is in (at
// most one frame: the stream's frame limit). Deadlines: a partial frame must complete within
// FRAME_DEADLINE_MS + length / FRAME_MIN_BYTES_PER_SEC of the time it was allowed to read (time
// paused by this budget does not count), as on inbound streams; past it the stream is reset and
// the sender charged READ_DEADLINE (a provider that announces and trickles loses its copies).
//
// What this bounds: bytes buffered in FramedStreams <= nodeBytes + one frame + one chunk per
// stream. What it does not: a paused yamux stream still takes what the sender had window for
// (at most YAMUX_MAX_STREAM_WINDOW, 2 MiB, per stream) into libp2p's read buffer; a WebRTC stream
// has no read backpressure (its sendPause is a no-op) and libp2p resets it past its 4 MiB read buffer.
import type { PeerId } from '@libp2p/interface'
import type { FramedStream, ReadMeter } from '../framed.js'
import { WireError } from '../../errors.js'

const MiB = 1024 * 1024
/** Bytes all outbound streams together may hold in partial and unread frames before they stop reading: four 16 MiB results. */
export const OUTBOUND_READ_BYTES = 64 * MiB
/** Bytes one peer's outbound streams may hold before they stop reading: two 16 MiB results. */
export const OUTBOUND_PEER_READ_BYTES = 32 * MiB
/**
 * The stream allowed to read past the budget (every waiting stream is behind it) must keep its
 * bytes coming: in each period of this length, at least FRAME_MIN_BYTES_PER_SEC's worth, or it is
 * reset and charged READ_DEADLINE (a sender that bursts and then stalls, or trickles, holds the
 * queue for two periods at most, not a whole frame deadline).
 */
export const OUTBOUND_EXEMPT_GRACE_MS = 2_000

export interface OutboundBudgetInit {
  nodeBytes?: number
  peerBytes?: number
  frameDeadlineMs: number
  frameMinBytesPerSec: number
  exemptGraceMs?: number
  now: () => number
  /** Charges a peer whose frame missed its deadline (the guard's charge). */
  charge: (peer: PeerId, err: WireError, protocol: string) => void
  /** A stream is tracked (the guard starts its sweep). */
  onTrack?: () => void
}

export interface OutboundStats { paused: number, resumed: number, exempted: number, deadlinesMissed: number, peakBytes: number }

class Entry implements ReadMeter {
  /** Bytes the stream holds (as last reported). */
  bytes = 0
  waiting = false
  exempt = false
  /** When the current partial frame began (-1: none), and the time it spent paused by the budget since. */
  frameAt = -1
  pausedMs = 0
  pausedAt = 0
  decoded = 0
  /** When it was allowed to read past the budget, and the bytes it had received then. */
  exemptAt = 0
  exemptFrom = 0
  /** Bytes received at the last sweep, and the liveness callback. */
  lastBytes = 0
  alive: (() => void) | undefined
  constructor (readonly owner: OutboundBudget, readonly framed: FramedStream, readonly peer: string, readonly peerId: PeerId, readonly protocol: string) {}
  held = (bytes: number): void => { this.owner.update(this, bytes) }
  closed = (): void => { this.owner.drop(this) }
}

export class OutboundBudget {
  readonly stats: OutboundStats = { paused: 0, resumed: 0, exempted: 0, deadlinesMissed: 0, peakBytes: 0 }
  private readonly nodeMax: number
  private readonly peerMax: number
  private readonly entries = new Set<Entry>()
  private readonly byPeer = new Map<string, number>()
  /** Streams paused by the budget, longest waiting first. */
  private readonly waiters = new Set<Entry>()
  private exempt: Entry | undefined
  private total = 0
  private waking = false
  private again = false

  constructor (private readonly init: OutboundBudgetInit) {
    this.nodeMax = init.nodeBytes ?? OUTBOUND_READ_BYTES
    this.peerMax = init.peerBytes ?? OUTBOUND_PEER_READ_BYTES
  }

  /** Bytes outbound streams hold now: all, or `peer`'s. */
  bufferedBytes (peer?: string): number { return peer === undefined ? this.total : (this.byPeer.get(peer) ?? 0) }
  /** Streams watched now, and those paused by the budget. */
  get streams (): number { return this.entries.size }
  get waiting (): number { return this.waiters.size }

  /**
   * Counts `framed` (a stream this node opened to `peer`) against the budget until it ends.
   * `alive`: called at each sweep while the stream waits for the budget, or while a frame is
   * arriving on it (the peer's heartbeats on the stream are behind the frame, or behind our pause:
   * its silence is not its fault).
   */
  track (framed: FramedStream, peerId: PeerId, protocol: string, alive?: () => void): void {
    const e = new Entry(this, framed, peerId.toString(), peerId, protocol)
    e.alive = alive
    this.entries.add(e)
    this.init.onTrack?.()
    framed.watch(e)
  }

  /** @internal the stream `e` holds `bytes` now */
  update (e: Entry, bytes: number): void {
    if (!this.entries.has(e)) return
    const delta = bytes - e.bytes
    if (delta !== 0) this.count(e, delta)
    // the deadline of the frame now arriving (a frame completed since the last report: a new one)
    const f = e.framed
    const next = f.framesDecoded !== e.decoded
    e.decoded = f.framesDecoded
    if (e.exempt && (next || !f.midFrame)) { e.exempt = false; this.exempt = undefined }
    if (!f.midFrame) e.frameAt = -1
    else if (e.frameAt < 0 || next) { e.frameAt = this.init.now(); e.pausedMs = 0 }
    if (!e.waiting && !e.exempt && e.bytes > 0 && this.over(e)) this.pause(e)
    if (this.waiters.size > 0 && (delta < 0 || this.exempt === undefined)) this.wake()
  }

  /** @internal the stream ended: what it held is free */
  drop (e: Entry): void {
    if (!this.entries.delete(e)) return
    this.waiters.delete(e)
    e.waiting = false
    if (this.exempt === e) this.exempt = undefined
    this.count(e, -e.bytes)
    this.wake()
  }

  private count (e: Entry, delta: number): void {
    e.bytes += delta
    this.total += delta
    const left = (this.byPeer.get(e.peer) ?? 0) + delta
    if (left > 0) this.byPeer.set(e.peer, left)
    else this.byPeer.delete(e.peer)
    if (this.total > this.stats.peakBytes) this.stats.peakBytes = this.total
  }

  private over (e: Entry): boolean {
    return this.total > this.nodeMax || (this.byPeer.get(e.peer) ?? 0) > this.peerMax
  }

  private pause (e: Entry): void {
    e.waiting = true
    e.pausedAt = this.init.now()
    this.waiters.add(e)
    this.stats.paused++
    e.framed.pauseReading()
  }

  private resume (e: Entry): void {
    e.waiting = false
    this.waiters.delete(e)
    e.pausedMs += this.init.now() - e.pausedAt
    this.stats.resumed++
    // what arrived while it was paused is delivered now (and may pause it again)
    e.framed.resumeReading()
  }

  /** Resumes waiting streams, longest waiting first, while they fit; if some still wait, the longest waiting one finishes its frame past the budget. */
  private wake (): void {
    if (this.waking) { this.again = true; return }
    this.waking = true
    try {
      do {
        this.again = false
        for (const e of [...this.waiters]) {
          if (this.total >= this.nodeMax) break
          if (!e.waiting || (this.byPeer.get(e.peer) ?? 0) >= this.peerMax) continue
          this.resume(e)
        }
        if (this.exempt === undefined) {
          // the longest waiting stream part-way through a frame (one between frames holds no partial frame to finish)
          for (const e of this.waiters) {
            if (!e.framed.midFrame) continue
            this.exempt = e
            e.exempt = true
            this.stats.exempted++
            this.resume(e)
            // what it had sent before (delivered by the resume, from libp2p's read buffer) is not progress
            e.exemptAt = this.init.now()
            e.exemptFrom = e.framed.bytesReceived
            break
          }
        }
      } while (this.again)
    } finally { this.waking = false }
  }

  /** Checks partial frames' deadlines (the guard's sweep calls this). */
  sweep (now: number): void {
    const rate = this.init.frameMinBytesPerSec
    for (const e of this.entries) {
      if (e.alive !== undefined) {
        const got = e.framed.bytesReceived
        if (e.waiting || (e.framed.midFrame && got !== e.lastBytes)) e.alive()
        e.lastBytes = got
      }
      if (e.waiting || e.frameAt < 0 || !e.framed.midFrame) continue
      const len = e.framed.frameLength
      const allowed = this.init.frameDeadlineMs + Math.max(0, len) * 1000 / rate
      if (now - e.frameAt - e.pausedMs > allowed) {
        this.miss(e, `a frame of ${len < 0 ? 'unknown' : len} bytes from ${e.peer} on ${e.protocol} did not complete within ${Math.round(allowed)} ms of reading`)
        continue
      }
      // the stream let past the budget: each grace period, at least the minimum rate's worth of bytes
      const grace = this.init.exemptGraceMs ?? OUTBOUND_EXEMPT_GRACE_MS
      if (!e.exempt || now - e.exemptAt < grace) continue
      const got = e.framed.bytesReceived - e.exemptFrom
      if (got < (now - e.exemptAt) * rate / 1000) {
        this.miss(e, `${e.peer} sent ${got} bytes of a frame on ${e.protocol} in ${now - e.exemptAt} ms while the streams waiting behind it could not read (the frame did not complete within the minimum rate)`)
      } else {
        e.exemptAt = now
        e.exemptFrom = e.framed.bytesReceived
      }
    }
  }

  private miss (e: Entry, message: string): void {
    this.stats.deadlinesMissed++
    const err = new WireError('READ_DEADLINE', message)
    this.init.charge(e.peerId, err, e.protocol)
    e.framed.fail(err)
    this.drop(e)
  }

  status (): Record<string, unknown> {
    return { bufferedBytes: this.total, streams: this.entries.size, waiting: this.waiters.size, ...this.stats }
  }
}
