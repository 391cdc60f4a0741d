// The training transport's public shapes and limits: its protocol, frame and queue bounds, its
// options (routes, the node's private set), the counts it keeps.
import type { PeerId, Libp2p } from '@libp2p/interface'
import type { WireError } from '../errors.js'
import type { FrameLink } from '../net/overlay/chunk-messenger.js'
import type { TrainingRouting } from './overlay-route.js'
import type { OverlayFrameStats } from './overlay-frames.js'
import type { TrainingMessage } from './messages.js'

export const ALLREDUCE_PROTOCOL = '/dbc/allreduce/1.0.0'
/** A model's full state travels in one frame (StateResponse; over the overlay in pieces when above 32 MiB); 64 MiB = 16M float32 parameters. */
export const TRAINING_MAX_FRAME = 64 * 1024 * 1024
/** Messages waiting to be written to one peer before new ones are dropped. */
export const MAX_QUEUED_PER_PEER = 1024
/** Bytes waiting for one peer before new messages are dropped: two full states. */
export const MAX_QUEUED_BYTES_PER_PEER = 2 * TRAINING_MAX_FRAME

export type TrainingListener = (from: string, msg: TrainingMessage) => void

export interface TransportStats extends OverlayFrameStats {
  framesSent: number
  bytesSent: number
  framesReceived: number
  bytesReceived: number
  dropped: number
  /** Frames dropped because no relayed connection could carry them (ROUTE_LIMIT). */
  routeLimited: number
  /** Time at least one write was in flight, ms: bytesSent over it is the send bandwidth (BandwidthEstimate). */
  sendBusyMs: number
  /** Frames sent and received over the overlay (part of the counts above). */
  overlayFramesSent: number
  overlayFramesReceived: number
  /** Frames of a `routing: overlay` job dropped because this node runs no overlay. */
  noOverlay: number
}

/** How long a frame waits for a connection to open before it takes the overlay (the connection is still used once it opens). */
export const OVERLAY_DIAL_WAIT_MS = 5000

/** The minimum of a libp2p node this transport uses (a full node also gets a route book: dial and connection events). */
export type TrainingHost = Pick<Libp2p, 'peerId' | 'handle' | 'unhandle' | 'dialProtocol' | 'peerStore' | 'getConnections'>

/** Addresses per peer shared in a RoundStart (bounded: a remote peer fills this). */
export const MAX_SHARED_ADDRS = 8

export interface TrainingTransportInit {
  onBadInput?: (peer: PeerId, err: WireError) => void
  /**
   * The largest frame `peer` may send beyond what this transport learned itself (the jobs this
   * node coordinates or works in); undefined or less than SMALL_FRAME_BYTES adds nothing.
   */
  frameLimit?: (peer: string) => number | undefined
  /** Caps what this node sends on the protocol, bytes/s over all peers (an operator's uplink share; benches throttle a member with it). */
  maxSendBytesPerSec?: number
  /** The overlay's frames (sealed envelopes through relays): the route when no connection opens. Absent: connections only. */
  overlay?: () => FrameLink | undefined
  /** auto (default): a connection, else the overlay; direct: connections only; overlay: the overlay only (config routing.mode). */
  routing?: () => TrainingRouting | undefined
  /** How long a frame waits for a connection before it takes the overlay (default OVERLAY_DIAL_WAIT_MS). */
  overlayWaitMs?: number
  /**
   * The node's private set (src/net/routes/private-peers.ts): a running `routing: overlay` job's
   * peer is kept off connections (unless a job allowing connections uses it) until the job ends
   * here (`jobEnded`); a job allowing connections takes its peer out. `job` is undefined when the
   * node's config forces the overlay (node-wide, as for grid jobs).
   */
  privacy?: TrainingPrivacy
  now?: () => number
}

export interface TrainingPrivacy {
  overlayOnly: (peer: string, job: string | undefined) => void
  connectionWanted: (peer: string) => void
  jobEnded: (job: string) => void
}
