// Defaults of the inbound guard (src/net/guard), each sized by what an honest peer needs, with
// the reasoning beside it. An attacker gets at most these; the node's memory under attack is
// bounded by NODE_BUFFER_BYTES plus per-stream overheads (libp2p/yamux), whatever it does.

/** MiB, for readability. */
const MiB = 1024 * 1024

/**
 * Concurrent inbound streams one peer may hold per protocol (libp2p's maxInboundStreams stays
 * as the per-connection cap). Over it the new stream is reset and the peer charged.
 */
export const STREAMS_PER_PEER: Readonly<Record<string, number>> = {
  // a submitter: one stream per running task (bounded by the offer's slots, at most 64) plus
  // a lease stream per lease and an offer request now and then; two jobs at once fit
  '/dbc/task/1.0.0': 160,
  // one long-lived outbound stream per member (TrainingTransport); a re-dial after a failure
  // briefly overlaps the old one
  '/dbc/allreduce/1.0.0': 4,
  // one short-lived stream per message: a shuffle request or response, a gossip push, a walk
  '/dbc/membership/1.0.0': 16,
  // one long-lived stream per neighbour (RequestChannel), re-opened after a failure
  '/dbc/relay/1.0.0': 4,
  // the same, from a sender that offers unsealed direct copies (a sender opens one stream per
  // neighbour, of 1.1.0 or 1.0.0): one budget with 1.0.0 (SHARED_STREAM_BUDGETS), in which an
  // older and a newer stream overlap briefly
  '/dbc/relay/1.1.0': 4,
  // a lookup per stream; a client asks a few cells at once
  '/dbc/capability/1.0.0': 8,
  // one probe at a time per peer, every few seconds
  '/dbc/vivaldi/1.0.0': 4,
  // health checks and the net benchmark use one stream per client
  '/dbc/echo/1.0.0': 8
}
/** Any protocol not in the table (a new one starts strict; add it above with its reasoning). */
export const DEFAULT_STREAMS_PER_PEER = 16

/**
 * Versions of one protocol whose inbound streams count against one budget per peer (the row of
 * the version opened applies to the sum): with a row each, a peer could hold the relay's 4
 * streams twice over, 4 of 1.0.0 and 4 of 1.1.0 (session 16).
 */
export const SHARED_STREAM_BUDGETS: Readonly<Record<string, string>> = {
  '/dbc/relay/1.0.0': '/dbc/relay',
  '/dbc/relay/1.1.0': '/dbc/relay'
}

/**
 * Bytes one peer may hold in this node's frame buffers at once, across all protocols: one full
 * all-reduce frame (a model's state, at most 64 MiB = TRAINING_MAX_FRAME) plus 8 MiB of task
 * input or gossip beside it. A frame is counted from its length prefix (reserved before any
 * byte of it is buffered) until the handler reads it.
 */
export const PEER_BUFFER_BYTES = 72 * MiB

/**
 * Bytes all peers together may hold in frame buffers: two full model states at once (the end
 * of a training job: two members send the final model) plus task inputs. The goal is
 * RSS at most 256 MiB above idle under attack; this leaves ~96 MiB for what is not frame bytes.
 */
export const NODE_BUFFER_BYTES = 160 * MiB

/**
 * A peer that holds more than this share of NODE_BUFFER_BYTES when the node budget runs out is
 * charged for the refusal; below it the refusal is not its fault (others filled the node). An
 * honest member's model state (up to TRAINING_MAX_FRAME, 64 MiB) is larger than this share, so
 * the threshold a peer is held to is the larger of this and the largest frame the refused
 * stream allows it (its frame limit then, plus the per-frame overhead): a frame it was allowed
 * to send is never held against it just because others filled the node.
 */
export const FAIR_SHARE_BYTES = NODE_BUFFER_BYTES / 4

/**
 * Read deadline of a partial frame: once its first byte arrived the rest must follow within
 * FRAME_DEADLINE_MS plus the frame's length at FRAME_MIN_BYTES_PER_SEC. A 64 MiB model state
 * over a slow 2 Mbit/s link takes ~4.3 min; the deadline then is 4.5 min. A 64 KiB request
 * must complete within ~10 s: a slowloris holds a small frame for that long, at most.
 */
export const FRAME_DEADLINE_MS = 10_000
export const FRAME_MIN_BYTES_PER_SEC = 256 * 1024

/**
 * A request/response stream (task, membership, capability, vivaldi, echo) that sends nothing
 * for this long after it opened is reset: an honest client writes its request at once.
 */
export const IDLE_DEADLINE_MS = 10_000

/** How often deadlines are checked (one timer for the whole node, not one per stream). */
export const SWEEP_MS = 500

/*
 * Every frame is also counted FRAME_OVERHEAD_BYTES (64, src/net/framed.ts) beside its length: a
 * decoded frame is a heap object however short, so a flood of zero-length frames (one byte each
 * on the wire) counts too. A stream decodes at most its queue's room (highWaterFrames) at once;
 * the rest of a chunk waits undecoded, counted, with the stream paused, until the reader catches up.
 */

/**
 * Frames a peer without a lease or a training membership may send on protocols that carry
 * large frames: lease requests, leases, invites and joins are a few KiB at most (a training
 * spec is a small msgpack document).
 */
export const SMALL_FRAME_BYTES = 64 * 1024

/**
 * Peers the node learned about (DHT answers, gossip, walks) but is not connected to, kept in
 * the peer store at most. Kademlia keeps k = 20 per bucket over ~20 useful buckets (~400), the
 * Cyclon view 16, connections up to 300: 2,048 holds all of them with room to spare.
 */
export const MAX_UNCONNECTED_PEERS = 2048

/** Addresses kept per peer learned from a descriptor (one per transport and family, and a relay). */
export const MAX_ADDRS_PER_DESCRIPTOR = 4

/** A repeated log line (same message and key) is written at most once per this many ms, with a count. */
export const LOG_REPEAT_MS = 10_000
