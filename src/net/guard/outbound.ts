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
// most one frame: the stream's frame limit). It keeps that way only while it is fast
// (OUTBOUND_EXEMPT_KEEP_BYTES_PER_SEC) or nobody untried waits: a slower one is paused again (not
// charged; once per frame) and the next waiting stream goes, so a sender at just the minimum rate
// cannot make every other result wait for its whole frame (review s11 H2). While streams wait, a
// stream that holds part of a frame and receives nothing for OUTBOUND_SILENT_MS is reset and
// charged: a silent holder frees the budget in seconds, not at its frame deadline. Deadlines: a
// partial frame must complete within FRAME_DEADLINE_MS + length / FRAME_MIN_BYTES_PER_SEC of the
// time it was allowed to read (time paused by this budget does not count), as on inbound streams;
// past it the stream is reset and the sender charged READ_DEADLINE (a provider that announces and
// trickles loses its copies).
//
// What this bounds: bytes buffered in FramedStreams <= nodeBytes + one frame + one chunk per
// stream + what a stream paused again received while let through (under the keep rate for one grace
// period: about 2 MiB, once per frame) + the frames of streams that cannot be paused (below). What it
// does not: a paused yamux stream still takes what the sender had window for (at most
// YAMUX_MAX_STREAM_WINDOW, 2 MiB, per stream) into libp2p's read buffer. A WebRTC stream has no read
// backpressure (its sendPause is a no-op) and libp2p RESETS a paused one past its 4 MiB read buffer
// (its lease and copies lost): such a stream (track's `pausable` false) is never paused for the node
// budget, only past its peer's share; its bytes count, and it is bounded by its frame limit and deadline.
import type { PeerId } from '@libp2p/interface'
import type { FramedStream, ReadMeter } from '../framed.js'
import { WireError } from '../../errors.js'
import { isWebRTC } from '../nat-addr.js'

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
/**
 * The stream let past the budget keeps that way, while others wait that have not had it during
 * their current frame, only if it receives at least this rate in each grace period; below it (and
 * above the minimum) it is paused again, not charged, and the next one goes: 16 MiB in 16 s.
 */
export const OUTBOUND_EXEMPT_KEEP_BYTES_PER_SEC = 1024 * 1024
/** While streams wait for the budget, a stream holding part of a frame that receives nothing for this long is reset and charged READ_DEADLINE. */
export const OUTBOUND_SILENT_MS = 5_000

/**
 * Whether the budget may pause `stream` (one of `connections`' streams): not on a WebRTC
 * connection, whose streams have no read backpressure (@libp2p/webrtc's sendPause is a no-op) and
 * which libp2p resets once a paused one holds more than its 4 MiB read buffer (review s11 M2).
 */
export function canPause (connections: ReadonlyArray<{ remoteAddr: { toString: () => string }, streams: readonly unknown[] }>, stream: unknown): boolean {
  return !connections.some(c => c.streams.includes(stream) && isWebRTC(c.remoteAddr))
}

export interface OutboundBudgetInit {
  nodeBytes?: number
  peerBytes?: number
  frameDeadlineMs: number
  frameMinBytesPerSec: number
  exemptGraceMs?: number
  exemptKeepBytesPerSec?: number
  silentMs?: number
  now: () => number
  /** Charges a peer whose frame missed its deadline (the guard's charge). */
  charge: (peer: PeerId, err: WireError, protocol: string) => void
  /** A stream is tracked (the guard starts its sweep). */
  onTrack?: () => void
}

export interface OutboundStats { paused: number, resumed: number, exempted: number, takenBack: number, silentCut: number, deadlinesMissed: number, peakBytes: number }

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
  /** Let through during its current frame and paused again for being slow: not let through again before the untried ones. */
  slow = false
  /** When it last received bytes (for OUTBOUND_SILENT_MS). */
  heardAt = 0
  heard = 0
  /** Bytes received at the last sweep, and the liveness callback. */
  lastBytes = 0
  alive: (() => void) | undefined
  constructor (readonly owner: OutboundBudget, readonly framed: FramedStream, readonly peer: string, readonly peerId: PeerId, readonly protocol: string, readonly pausable: boolean) {}
  held = (bytes: number): void => { this.owner.update(this, bytes) }
  closed = (): void => { this.owner.drop(this) }
}

export class OutboundBudget {
  readonly stats: OutboundStats = { paused: 0, resumed: 0, exempted: 0, takenBack: 0, silentCut: 0, deadlinesMissed: 0, peakBytes: 0 }
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
   * its silence is not its fault). `pausable` false: a stream whose muxer cannot stop the sender
   * (WebRTC: libp2p resets a paused one past 4 MiB): never paused for the node budget, only past
   * its peer's share.
   */
  track (framed: FramedStream, peerId: PeerId, protocol: string, alive?: () => void, pausable = true): void {
    const e = new Entry(this, framed, peerId.toString(), peerId, protocol, pausable)
    e.alive = alive
    e.heardAt = this.init.now()
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
    if (f.bytesReceived !== e.heard) { e.heard = f.bytesReceived; e.heardAt = this.init.now() }
    if (e.exempt && (next || !f.midFrame)) { e.exempt = false; this.exempt = undefined }
    if (next || !f.midFrame) e.slow = false
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
    return (e.pausable && this.total > this.nodeMax) || (this.byPeer.get(e.peer) ?? 0) > this.peerMax
  }

  private fits (e: Entry): boolean {
    return (!e.pausable || this.total < this.nodeMax) && (this.byPeer.get(e.peer) ?? 0) < this.peerMax
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
    // its silence while paused was ours
    e.heardAt = this.init.now()
    this.stats.resumed++
    // what arrived while it was paused is delivered now (and may pause it again)
    e.framed.resumeReading()
  }

  /**
   * Resumes waiting streams, longest waiting first, while they fit; if some still wait, the longest
   * waiting one mid-frame finishes its frame past the budget (one not yet paused again for being
   * slow in this frame first).
   */
  private wake (): void {
    if (this.waking) { this.again = true; return }
    this.waking = true
    try {
      do {
        this.again = false
        for (const e of [...this.waiters]) {
          if (e.waiting && this.fits(e)) this.resume(e)
        }
        if (this.exempt === undefined) {
          // the longest waiting stream part-way through a frame (one between frames holds no partial frame to finish)
          const mid = [...this.waiters].filter(w => w.framed.midFrame)
          const e = mid.find(w => !w.slow) ?? mid[0]
          if (e !== undefined) {
            this.exempt = e
            e.exempt = true
            this.stats.exempted++
            this.resume(e)
            // what it had sent before (delivered by the resume, from libp2p's read buffer) is not progress
            e.exemptAt = this.init.now()
            e.exemptFrom = e.framed.bytesReceived
          }
        }
      } while (this.again)
    } finally { this.waking = false }
  }

  /** Checks partial frames' deadlines (the guard's sweep calls this). */
  sweep (now: number): void {
    const rate = this.init.frameMinBytesPerSec
    const silent = this.init.silentMs ?? OUTBOUND_SILENT_MS
    for (const e of [...this.entries]) {
      if (!this.entries.has(e)) continue
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
      // while others wait for the budget, a holder of part of a frame may not sit on it silently
      if (!e.exempt && this.waiters.size > 0 && e.bytes > 0 && now - e.heardAt >= silent && (this.total >= this.nodeMax || (this.byPeer.get(e.peer) ?? 0) >= this.peerMax)) {
        this.stats.silentCut++
        this.miss(e, `${e.peer} sent nothing of a frame on ${e.protocol} for ${now - e.heardAt} ms while holding ${e.bytes} bytes that waiting streams need`)
        continue
      }
      // the stream let past the budget: each grace period, at least the minimum rate's worth of bytes
      const grace = this.init.exemptGraceMs ?? OUTBOUND_EXEMPT_GRACE_MS
      if (!e.exempt || now - e.exemptAt < grace) continue
      const got = e.framed.bytesReceived - e.exemptFrom
      if (got < (now - e.exemptAt) * rate / 1000) {
        this.miss(e, `${e.peer} sent ${got} bytes of a frame on ${e.protocol} in ${now - e.exemptAt} ms while the streams waiting behind it could not read (the frame did not complete within the minimum rate)`)
      } else if (e.pausable && !e.slow && got < (now - e.exemptAt) * (this.init.exemptKeepBytesPerSec ?? OUTBOUND_EXEMPT_KEEP_BYTES_PER_SEC) / 1000 && [...this.waiters].some(w => !w.slow && w.framed.midFrame)) {
        // slower than the keep rate while an untried stream waits: back in the queue (not charged), the next one goes
        this.stats.takenBack++
        e.slow = true
        e.exempt = false
        this.exempt = undefined
        this.pause(e)
        this.wake()
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
