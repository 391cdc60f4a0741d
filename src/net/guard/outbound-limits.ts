// The outbound read budget's limits (outbound.ts), each with its reasoning; the table is in
// src/net/guard/README.md.
//
// What this bounds: bytes buffered in FramedStreams <= nodeBytes + one frame + one chunk per
// stream + what a stream paused again received while let through (under the keep rate for one grace
// period: about 2 MiB, once per frame) + what streams that cannot be paused hold (below: at most
// OUTBOUND_UNPAUSABLE_BYTES + one chunk). What it does not: a paused yamux stream still takes what
// the sender had window for (at most YAMUX_MAX_STREAM_WINDOW, 2 MiB, per stream) into libp2p's read
// buffer. A WebRTC stream has no read backpressure (its sendPause is a no-op) and libp2p RESETS a
// paused one past its 4 MiB read buffer (its lease and copies lost): such a stream (track's
// `pausable` false) is never paused, neither for the node budget nor past its peer's share (review
// s11 M2, N3); its bytes count in the node's total (pausable streams wait for them) and in a cap of
// their own, OUTBOUND_UNPAUSABLE_BYTES for all of them together (sybil peers each within a share
// held peers x 32 MiB: review s11 N2). Past the cap the one slowest to finish its frame is reset
// (shed()): its copies are lost and run elsewhere; the provider is charged only when it could not
// finish inside its frame deadline. One peer's such streams are held to its share the same way: past
// it, that peer's slowest is reset (review s12 L2: one peer could fill the whole node budget).

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
/**
 * While streams wait for the budget (and it is full), a stream holding part of a frame that receives
 * less than OUTBOUND_SILENT_MIN_BYTES in a window of this length is reset and charged READ_DEADLINE.
 */
export const OUTBOUND_SILENT_MS = 5_000
/**
 * The progress a holder of part of a frame must make in each OUTBOUND_SILENT_MS window while others
 * wait for the budget (12.8 KiB/s, a twentieth of the frame deadline's minimum rate): one byte per
 * 4 s no longer keeps 15 MiB of the budget for a whole frame deadline (review s11 N4). Nobody
 * waiting: no such rule (a slow honest link keeps its frame deadline).
 */
export const OUTBOUND_SILENT_MIN_BYTES = 64 * 1024
/**
 * Bytes all streams that cannot be paused (WebRTC: `canPause`) may hold together. They are never
 * paused (neither for the node budget nor for their peer's share: libp2p would reset them); past
 * this cap, or one peer's past its share (review s12 L2), the one slowest to finish its frame (bytes
 * left at its rate over the last 2-4 s) is reset: charged READ_DEADLINE only when it could not finish
 * inside its frame deadline at that rate, else not charged (its copies are lost and run again).
 * Four 16 MiB results at once, two per peer (review s11 N2, N3; s12 M1, L1).
 */
export const OUTBOUND_UNPAUSABLE_BYTES = 64 * MiB
/** shed() judges a stream by its rate over the last 2-4 s (review s12 M1): one that stalls near the end of its frame is slow. */
export const RECENT_MS = 2000

/**
 * Bytes of decoded, unread frames past which a stream that cannot be paused may be one nobody reads
 * (the cap's shed then takes it first). Only a suspect: it is taken for one only if it still holds
 * them once the event loop has moved on (an honest reader takes its frames within the microtasks
 * after the chunk that decoded them; a stream nobody reads keeps them). Before, 1 MiB held at the
 * moment of the shed was enough, a guess about libp2p's chunk sizes (review s12 L5).
 */
export const UNREAD_SLACK_BYTES = 64 * 1024
/** What one peer's streams that cannot be paused may hold past its share (frame prefixes, a heartbeat, part of a chunk; at most 1/256 of the share). */
export const UNPAUSABLE_PEER_SLACK_BYTES = 64 * 1024
