// What FramedStream (framed.ts) takes from those who watch its buffers: an inbound guard's
// budgets (FrameHooks), an outbound read budget (ReadMeter), its limits (FramedStreamInit) and a
// push-mode reader (FrameListener). Re-exported by framed.ts.
import type { WireError } from '../errors.js'
import type { FrameLimit } from '../wire/frame.js'

/**
 * How an inbound guard (src/net/guard) watches a stream's buffers: every announced frame is
 * reserved against its budgets before any of it is buffered, and released when the reader takes
 * it (or the stream ends); a coarse clock stamps when each frame began, for read deadlines.
 */
export interface FrameHooks {
  /**
   * Reserves an announced frame's bytes (its length plus FRAME_OVERHEAD_BYTES), or bytes held
   * undecoded while the reader is behind; `limit` is the largest reservation one frame of this
   * stream may make now (its frame limit, counted the same way). An error refuses the frame (the
   * stream is then poisoned).
   */
  reserve?: (bytes: number, limit: number) => WireError | undefined
  /** Gives back reserved bytes. */
  release?: (bytes: number) => void
  /** Read when a frame's first byte arrives (a coarse clock: the guard's sweep updates it). */
  now?: () => number
  /** The decoder refused input (a budget, the frame limit, a malformed prefix). */
  onRefused?: (err: WireError) => void
}

/**
 * Bytes counted per frame beside its length: a decoded frame is an object of its own (a zero-
 * length frame is one byte on the wire and ~100 bytes of heap), so a flood of tiny frames is
 * counted against the budgets too.
 */
export const FRAME_OVERHEAD_BYTES = 64

/**
 * How a read budget (src/net/guard/outbound.ts) watches a stream this node opened: told the bytes
 * of the peer's frames the stream holds (a partial frame's bytes as they arrive, not its announced
 * length, plus frames decoded and unread) after each change; it stops and restarts the stream's
 * reading with pauseReading/resumeReading (backpressure instead of a refusal).
 */
export interface ReadMeter {
  held: (bytes: number) => void
  /** The stream ended or failed: it holds nothing any more. */
  closed: () => void
}

export interface FramedStreamInit {
  /** A number, or a function asked at every frame prefix (the limit may depend on a lease). */
  maxFrameBytes?: FrameLimit
  /** Frames queued unread before the stream is paused (backpressure to the sender). */
  highWaterFrames?: number
  hooks?: FrameHooks
}

/**
 * Push-mode reading (FramedStream.listen): `frame` is called with each frame in the turn its
 * bytes arrive (no promise, no extra turn per frame); `end` once, with undefined when the remote
 * closed its end cleanly, or with the error that ended the stream (the same errors read() throws).
 */
export interface FrameListener {
  frame: (frame: Uint8Array) => void
  end: (err?: Error) => void
}
