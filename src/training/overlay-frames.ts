// Training frames over the overlay (sealed envelopes through relays, FrameLink in
// src/net/overlay/chunk-messenger.ts): out, a whole frame, or one larger than the receiver's
// per-peer budget in pieces (pieces.ts) sent one after the other, each once the previous was
// acked, a piece that failed re-sent alone (the receiver keeps those it has); in, whole frames
// and pieces rebuilt into frames, each then decoded and handed on like a frame read from a stream.
import { logger } from '@libp2p/logger'
import type { FrameLink, SentMessage } from '../net/overlay/chunk-messenger.js'
import { PieceAssembler, encodePiece, isPiece, pieceBytesFor, splitFrame, PIECE_ID_BYTES } from './pieces.js'

const log = logger('dbc:training:overlay-frames')

/** How long one overlay frame (or one piece) may take, every chunk acked, before it counts as failed. */
export const OVERLAY_FRAME_TIMEOUT_MS = 60_000
/** Sends of one piece before the frame fails (each send already re-sent its failed chunks). */
export const PIECE_SENDS = 4
/** Wait before a failed piece goes again (ms, times the failures so far): paths may change meanwhile. */
export const PIECE_RETRY_MS = 1000

export interface OverlayFrameStats {
  /** Pieces of frames too large for one overlay frame, sent and received. */
  piecesSent: number
  piecesReceived: number
  /** Pieces sent again after a failed send (a path lost). */
  pieceResends: number
  /** Pieces refused (too large for the sender's limit, no room, malformed). */
  piecesRefused: number
}

export interface OverlayFramesInit {
  /** Why frames stop (the transport stopped). */
  signal: () => AbortSignal
  /** The largest frame `peer` may send us (large ones only from a job's members). */
  frameLimit: (peer: string) => number
  /** A whole frame arrived (decoded and dispatched by the transport). */
  deliver: (peer: string, frame: Uint8Array) => void
  /** A malformed piece: charged like an undecodable frame. */
  malformed: (peer: string, reason: string) => void
  stats: OverlayFrameStats
  /** What one overlay frame carries here (the link's maxFrameBytes): only larger frames come in pieces, and only from peers allowed more (review F4). */
  wholeFrameBytes?: () => number | undefined
  now?: () => number
  random?: (n: number) => Uint8Array
  /** Wait between sends of a failed piece (default PIECE_RETRY_MS). */
  retryMs?: number
}

export class OverlayFrames {
  readonly pieces = new PieceAssembler()
  private readonly now: () => number
  private readonly random: (n: number) => Uint8Array

  constructor (private readonly init: OverlayFramesInit) {
    this.now = init.now ?? Date.now
    this.random = init.random ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)))
  }

  /**
   * Sends `frame` to `peer`: whole when the receiver's budget holds it, else in pieces of a
   * quarter of that budget, each acked before the next goes (so the receiver's assembler never
   * holds more than one piece of ours). Resolves with the relays used; throws once a piece failed
   * PIECE_SENDS times or the transport stopped.
   */
  async send (link: FrameLink, peer: string, frame: Uint8Array): Promise<SentMessage & { pieces: number }> {
    const signal = (): AbortSignal => AbortSignal.any([AbortSignal.timeout(OVERLAY_FRAME_TIMEOUT_MS), this.init.signal()])
    if (frame.length <= link.maxFrameBytes) return { ...await link.sendFrame(peer, frame, signal()), pieces: 0 }
    const pieces = splitFrame(this.random(PIECE_ID_BYTES), frame, pieceBytesFor(link.maxFrameBytes))
    const relays = new Set<string>()
    let chunks = 0; let sends = 0
    for (const p of pieces) {
      for (let attempt = 1; ; attempt++) {
        try {
          const sent = await link.sendFrame(peer, encodePiece(p), signal())
          for (const r of sent.relays) relays.add(r)
          chunks += sent.chunks; sends += sent.sends
          this.init.stats.piecesSent++
          break
        } catch (err) {
          if (attempt >= PIECE_SENDS || this.init.signal().aborted) throw err
          // resumable: only this piece goes again; the receiver keeps the pieces it has
          this.init.stats.pieceResends++
          log('piece %d/%d of a %d-byte frame to %s failed (%s): sent again', p.index + 1, p.count, frame.length, peer, (err as Error).message)
          await new Promise(resolve => setTimeout(resolve, (this.init.retryMs ?? PIECE_RETRY_MS) * attempt))
        }
      }
    }
    return { relays: [...relays], chunks, sends, pieces: pieces.length }
  }

  /** An overlay frame from `peer`: a whole frame goes on; a piece waits for the rest of its frame. */
  receive (peer: string, bytes: Uint8Array): void {
    if (!isPiece(bytes)) { this.init.deliver(peer, bytes); return }
    const limit = this.init.frameLimit(peer)
    const whole = this.init.wholeFrameBytes?.()
    const v = this.pieces.accept(this.now(), peer, bytes, limit, whole)
    if (v.type === 'refused') {
      this.init.stats.piecesRefused++
      log('piece from %s refused: %s %s', peer, v.code, v.reason)
      // a frame larger than the peer may send, a peer no job's member (it may send no more than one overlay
      // frame, so never needs pieces: a member that just left may still be sending), or no room now: not charged
      if (v.code === 'PIECE_MALFORMED' || v.code === 'PIECE_MISMATCH') this.init.malformed(peer, `${v.code}: ${v.reason}`)
      return
    }
    if (v.type === 'duplicate') return
    this.init.stats.piecesReceived++
    if (v.type === 'complete') this.init.deliver(peer, v.frame)
  }

  clear (): void { this.pieces.clear() }
}
