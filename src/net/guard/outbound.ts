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
// cannot make every other result wait for its whole frame (review s11 H2). While streams wait and
// the budget is full, a stream that holds part of a frame and receives less than
// OUTBOUND_SILENT_MIN_BYTES in an OUTBOUND_SILENT_MS window is reset and charged: a silent (or
// dripping: review s11 N4) holder frees the budget in 5-10 s, not at its frame deadline. Deadlines: a
// partial frame must complete within FRAME_DEADLINE_MS + length / FRAME_MIN_BYTES_PER_SEC of the
// time it was allowed to read (time paused by this budget does not count), as on inbound streams;
// past it the stream is reset and the sender charged READ_DEADLINE (a provider that announces and
// trickles loses its copies).
// What it bounds and what it does not, and the WebRTC cap: outbound-limits.ts.
import type { PeerId } from '@libp2p/interface'
import type { FramedStream, ReadMeter } from '../framed.js'
import { WireError } from '../../errors.js'
import { isWebRTC } from '../nat-addr.js'
import { OUTBOUND_READ_BYTES, OUTBOUND_PEER_READ_BYTES, OUTBOUND_EXEMPT_GRACE_MS, OUTBOUND_EXEMPT_KEEP_BYTES_PER_SEC, OUTBOUND_SILENT_MS, OUTBOUND_SILENT_MIN_BYTES, OUTBOUND_UNPAUSABLE_BYTES, RECENT_MS, UNREAD_SLACK_BYTES, UNPAUSABLE_PEER_SLACK_BYTES } from './outbound-limits.js'
export { OUTBOUND_READ_BYTES, OUTBOUND_PEER_READ_BYTES, OUTBOUND_EXEMPT_GRACE_MS, OUTBOUND_EXEMPT_KEEP_BYTES_PER_SEC, OUTBOUND_SILENT_MS, OUTBOUND_SILENT_MIN_BYTES, OUTBOUND_UNPAUSABLE_BYTES } from './outbound-limits.js'

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
  silentMinBytes?: number
  unpausableBytes?: number
  now: () => number
  /** Charges a peer whose frame missed its deadline (the guard's charge). */
  charge: (peer: PeerId, err: WireError, protocol: string) => void
  /** A stream is tracked (the guard starts its sweep). */
  onTrack?: () => void
}

export interface OutboundStats { paused: number, resumed: number, exempted: number, takenBack: number, silentCut: number, deadlinesMissed: number, peakBytes: number, unpausableCut: number, unpausablePeakBytes: number }

class Entry implements ReadMeter {
  /** Bytes the stream holds (as last reported). */
  bytes = 0
  waiting = false
  exempt = false
  /** When the current partial frame began (-1: none), the bytes received then, and the time it spent paused by the budget since. */
  frameAt = -1
  frameFrom = 0
  /** Bytes received at the last report. */
  seen = 0
  pausedMs = 0
  pausedAt = 0
  decoded = 0
  /** When it was allowed to read past the budget, and the bytes it had received then. */
  exemptAt = 0
  exemptFrom = 0
  /** Let through during its current frame and paused again for being slow: not let through again before the untried ones. */
  slow = false
  /** The start of its current progress window (OUTBOUND_SILENT_MS), and the bytes it had received then. */
  windowAt = 0
  windowFrom = 0
  /** Two snapshots (time, bytes received) the sweep takes at least RECENT_MS apart: shed() judges a stream's rate since the older one. */
  prevAt = 0
  prevFrom = 0
  snapAt = 0
  snapFrom = 0
  /** Held more than UNREAD_SLACK_BYTES of unread frames at a check after the event loop moved on, and since. */
  stuffed = false
  /** Bytes received at the last sweep, and the liveness callback. */
  lastBytes = 0
  alive: (() => void) | undefined
  constructor (readonly owner: OutboundBudget, readonly framed: FramedStream, readonly peer: string, readonly peerId: PeerId, readonly protocol: string, readonly pausable: boolean) {}
  held = (bytes: number): void => { this.owner.update(this, bytes) }
  closed = (): void => { this.owner.drop(this) }
}

export class OutboundBudget {
  readonly stats: OutboundStats = { paused: 0, resumed: 0, exempted: 0, takenBack: 0, silentCut: 0, deadlinesMissed: 0, peakBytes: 0, unpausableCut: 0, unpausablePeakBytes: 0 }
  private readonly nodeMax: number
  private readonly peerMax: number
  /** (UNPAUSABLE_PEER_SLACK_BYTES, or 1/256 of a smaller share) */
  private readonly peerSlack: number
  private readonly unpausableMax: number
  private readonly entries = new Set<Entry>()
  private readonly byPeer = new Map<string, number>()
  /** Streams paused by the budget, longest waiting first. */
  private readonly waiters = new Set<Entry>()
  private exempt: Entry | undefined
  private total = 0
  /** Bytes held by streams that cannot be paused (part of `total`), and per peer. */
  private unpausable = 0
  private readonly unpausableByPeer = new Map<string, number>()
  private waking = false
  private again = false
  /** A check of suspected unread frames is scheduled (after the current event loop turn). */
  private recheckQueued = false

  constructor (private readonly init: OutboundBudgetInit) {
    this.nodeMax = init.nodeBytes ?? OUTBOUND_READ_BYTES
    this.peerMax = init.peerBytes ?? OUTBOUND_PEER_READ_BYTES
    this.peerSlack = Math.min(UNPAUSABLE_PEER_SLACK_BYTES, Math.floor(this.peerMax / 256))
    this.unpausableMax = init.unpausableBytes ?? OUTBOUND_UNPAUSABLE_BYTES
  }

  /** Bytes outbound streams hold now: all, or `peer`'s. */
  bufferedBytes (peer?: string): number { return peer === undefined ? this.total : (this.byPeer.get(peer) ?? 0) }
  /** Bytes the streams that cannot be paused hold now. */
  get unpausableBytes (): number { return this.unpausable }
  /** The cap on bytes held by streams that cannot be paused (what WebRTC copies are admitted against: tasks.ts). */
  get unpausableCap (): number { return this.unpausableMax }
  /** The most one peer's streams may hold (what one provider's WebRTC copies are admitted against: tasks.ts). */
  get peerShare (): number { return this.peerMax }
  /** Streams watched now, and those paused by the budget. */
  get streams (): number { return this.entries.size }
  get waiting (): number { return this.waiters.size }

  /**
   * Counts `framed` (a stream this node opened to `peer`) against the budget until it ends.
   * `alive`: called at each sweep while the stream waits for the budget, or while a frame is
   * arriving on it (the peer's heartbeats on the stream are behind the frame, or behind our pause:
   * its silence is not its fault). `pausable` false: a stream whose muxer cannot stop the sender
   * (WebRTC: libp2p resets a paused one past 4 MiB): never paused for
   * any budget; past OUTBOUND_UNPAUSABLE_BYTES held by all such streams, the slowest is reset.
   */
  track (framed: FramedStream, peerId: PeerId, protocol: string, alive?: () => void, pausable = true): void {
    const e = new Entry(this, framed, peerId.toString(), peerId, protocol, pausable)
    e.alive = alive
    e.windowAt = this.init.now()
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
    if (next || !f.midFrame) e.slow = false
    // (the frame's bytes so far: at most what arrived since the last report, and at most what it holds)
    if (!f.midFrame) e.frameAt = -1
    else if (e.frameAt < 0 || next) { e.frameAt = this.init.now(); e.pausedMs = 0; e.frameFrom = f.bytesReceived - Math.max(0, Math.min(e.bytes, f.bytesReceived - e.seen)); e.windowAt = e.frameAt; e.windowFrom = f.bytesReceived; e.prevAt = e.snapAt = e.frameAt; e.prevFrom = e.snapFrom = e.frameFrom }
    e.seen = f.bytesReceived
    if (e.stuffed && this.unread(e) <= UNREAD_SLACK_BYTES) e.stuffed = false
    if (!e.waiting && !e.exempt && e.bytes > 0 && this.over(e)) this.pause(e)
    if (this.unpausable > this.unpausableMax || (!e.pausable && this.pastShare(e.peer))) this.shed(e.peer)
    if (this.waiters.size > 0 && (delta < 0 || this.exempt === undefined)) this.wake()
  }

  /**
   * Whether `peer`'s streams that cannot be paused hold more than its share, and a chunk: two whole
   * results of the share's half each, with their prefixes and a heartbeat behind, are within it (what
   * the submitter's admission lets one provider have in flight: tasks.ts).
   */
  private pastShare (peer: string): boolean { return (this.unpausableByPeer.get(peer) ?? 0) > this.peerMax + this.peerSlack }

  private inFrame (x: Entry): number { return x.framed.midFrame && x.frameAt >= 0 ? x.framed.bytesReceived - x.frameFrom : 0 }
  /** Bytes of whole frames decoded and not read (and bytes held undecoded behind them). */
  private unread (x: Entry): number { return x.bytes - this.inFrame(x) }

  /**
   * After the current event loop turn (the readers' microtasks have run): a stream that still holds
   * more than the slack of unread frames is one nobody reads; then the cap and shares are enforced.
   */
  private recheck (): void {
    this.recheckQueued = false
    const over = new Set<string>()
    for (const x of this.entries) {
      if (x.pausable) continue
      x.stuffed = this.unread(x) > UNREAD_SLACK_BYTES
      if (this.pastShare(x.peer)) over.add(x.peer)
    }
    if (this.unpausable > this.unpausableMax) this.shed()
    for (const peer of over) this.shed(peer)
  }

  /**
   * The streams that cannot be paused hold more than their cap (or `peer`'s more than its share:
   * then among that peer's): the one that would take longest to finish its frame at its recent rate
   * (bytes left / rate) is reset, charged only when it could not finish inside its frame deadline
   * (an honest slow one is not charged; its copies run again). A frame that just began counts as
   * fast: the trickler that held its bytes longest goes first, not the result that just started
   * arriving. Before any of them, a stream holding frames nobody reads (still held after the event
   * loop moved on: recheck()) goes.
   */
  private shed (peer?: string): void {
    const now = this.init.now()
    const inFrame = (x: Entry): number => this.inFrame(x)
    // bytes of whole frames decoded and not read: nobody is reading that stream (a lease stream's frames are read as they come)
    const unread = (x: Entry): number => this.unread(x)
    // the rate over the last 2-4 s (the sweep moves the snapshots; since the frame began for a younger
    // frame): a stream that stalls or drips near the end of its frame is slow, not about to finish
    const rateOf = (x: Entry): number => Math.max(0, x.framed.bytesReceived - Math.max(x.prevFrom, x.frameFrom)) * 1000 / Math.max(1, now - x.prevAt)
    const finishMs = (x: Entry): number => (x.framed.frameLength - inFrame(x)) * 1000 / Math.max(1, rateOf(x))
    // past the cap: the victim among all such streams; else past `peer`'s share: among that peer's (review s12 L2)
    const peerOver = (): boolean => peer !== undefined && this.pastShare(peer)
    for (;;) {
      const all = this.unpausable > this.unpausableMax
      if (!all && !peerOver()) return
      let stuffed: Entry | undefined
      let last: Entry | undefined
      let suspect = false
      for (const x of this.entries) {
        if (x.pausable || x.bytes <= 0 || (!all && x.peer !== peer)) continue
        if (unread(x) > UNREAD_SLACK_BYTES && !x.stuffed) suspect = true
        if (x.stuffed && unread(x) > UNREAD_SLACK_BYTES && (stuffed === undefined || unread(x) > unread(stuffed))) stuffed = x
        if (!x.framed.midFrame || x.frameAt < 0 || x.framed.frameLength < 0) continue
        if (last === undefined || finishMs(x) > finishMs(last)) last = x
      }
      // frames decoded just now and not yet taken: whether anyone reads them is known after this turn
      // (meanwhile the cap is over by what this turn delivers); an honest one is not reset for them
      if (stuffed === undefined && suspect) {
        if (!this.recheckQueued) { this.recheckQueued = true; setImmediate(() => { this.recheck() }) }
        return
      }
      const victim = stuffed ?? last
      if (victim === undefined) return
      this.stats.unpausableCut++
      const rate = rateOf(victim)
      const what = victim === stuffed ? `the one holding the most frames nobody read (${unread(victim)} bytes)` : `the one slowest to finish its frame (${Math.round(rate)} B/s over the last seconds)`
      const over = all ? `streams that cannot be paused hold ${this.unpausable} bytes, over their ${this.unpausableMax}` : `${victim.peer}'s streams that cannot be paused hold ${this.unpausableByPeer.get(victim.peer) ?? 0} bytes, over its share ${this.peerMax}`
      const message = `${over}: ${what}, ${victim.peer} on ${victim.protocol} holding ${victim.bytes} bytes, is reset`
      // charged only when it could not finish inside its own frame deadline at that rate (the deadline
      // rule's test): an honest slow starter that would make it is reset, not charged (review s12 L1)
      const allowed = this.init.frameDeadlineMs + Math.max(0, victim.framed.frameLength) * 1000 / this.init.frameMinBytesPerSec
      const late = now - victim.frameAt - victim.pausedMs + finishMs(victim) > allowed
      if (victim !== stuffed && late && now - victim.frameAt >= 1000) this.miss(victim, message)
      else {
        // not misbehaving (or not provably): reset, not charged (a plain Error: nobody charges it)
        victim.framed.fail(new Error(message))
        this.drop(victim)
      }
    }
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
    if (!e.pausable) {
      this.unpausable += delta
      const mine = (this.unpausableByPeer.get(e.peer) ?? 0) + delta
      if (mine > 0) this.unpausableByPeer.set(e.peer, mine)
      else this.unpausableByPeer.delete(e.peer)
      if (this.unpausable > this.stats.unpausablePeakBytes) this.stats.unpausablePeakBytes = this.unpausable
    }
    const left = (this.byPeer.get(e.peer) ?? 0) + delta
    if (left > 0) this.byPeer.set(e.peer, left)
    else this.byPeer.delete(e.peer)
    if (this.total > this.stats.peakBytes) this.stats.peakBytes = this.total
  }

  /** Past the node's budget or its peer's share (a stream that cannot be paused never is: its cap is shed()'s). */
  private over (e: Entry): boolean {
    return e.pausable && (this.total > this.nodeMax || (this.byPeer.get(e.peer) ?? 0) > this.peerMax)
  }

  private fits (e: Entry): boolean {
    return this.total < this.nodeMax && (this.byPeer.get(e.peer) ?? 0) < this.peerMax
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
    // its silence while paused was ours: a new progress window
    e.windowAt = this.init.now()
    e.windowFrom = e.framed.bytesReceived
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
    const minBytes = this.init.silentMinBytes ?? OUTBOUND_SILENT_MIN_BYTES
    for (const e of [...this.entries]) {
      if (!this.entries.has(e)) continue
      if (e.alive !== undefined) {
        const got = e.framed.bytesReceived
        if (e.waiting || (e.framed.midFrame && got !== e.lastBytes)) e.alive()
        e.lastBytes = got
      }
      if (e.waiting || e.frameAt < 0 || !e.framed.midFrame) continue
      if (now - e.snapAt >= RECENT_MS) { e.prevAt = e.snapAt; e.prevFrom = e.snapFrom; e.snapAt = now; e.snapFrom = e.framed.bytesReceived }
      const len = e.framed.frameLength
      const allowed = this.init.frameDeadlineMs + Math.max(0, len) * 1000 / rate
      if (now - e.frameAt - e.pausedMs > allowed) {
        this.miss(e, `a frame of ${len < 0 ? 'unknown' : len} bytes from ${e.peer} on ${e.protocol} did not complete within ${Math.round(allowed)} ms of reading`)
        continue
      }
      // while others wait for the budget, a holder of part of a frame may not sit on it (silent, or
      // dripping): each window it receives at least minBytes, or it is cut (review s11 N4)
      if (now - e.windowAt >= silent) {
        const got = e.framed.bytesReceived - e.windowFrom
        if (!e.exempt && got < minBytes && this.waiters.size > 0 && e.bytes > 0 && (this.total >= this.nodeMax || (this.byPeer.get(e.peer) ?? 0) >= this.peerMax)) {
          this.stats.silentCut++
          this.miss(e, `${e.peer} sent ${got} bytes of a frame on ${e.protocol} in ${now - e.windowAt} ms (under ${minBytes}) while holding ${e.bytes} bytes that waiting streams need`)
          continue
        }
        e.windowAt = now
        e.windowFrom = e.framed.bytesReceived
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
    return { bufferedBytes: this.total, unpausableBytes: this.unpausable, streams: this.entries.size, waiting: this.waiters.size, ...this.stats }
  }
}
