// The receiving side of /dbc/allreduce/1.0.0 (TrainingTransport, transport.ts): frames read from
// inbound streams and whole frames that came over the overlay are decoded, checked and counted the
// same way, then handed to every listener. A frame that does not decode, or is larger than the
// sender may send, is charged to the sender (an honest member's early slice excepted).
import type { Stream, Connection, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { logger } from '@libp2p/logger'
import type { FramedStream } from '../net/framed.js'
import { encodeFrame } from '../wire/frame.js'
import { dbc } from '../wire/gen/wire.js'
import { WireError } from '../errors.js'
import { wasHandled } from '../net/guard/index.js'
import type { TrainingMembers } from './members.js'
import { closeIfRedundant } from './relayed.js'
import { decodeTrainingMessage, type TrainingMessage } from './messages.js'
import type { TrainingListener, TransportStats, TrainingHost } from './transport-types.js'

const log = logger('dbc:training:transport')

export interface TrainingInboundInit {
  host: TrainingHost
  /** Who this node trains with (the frame limits; told of every message received). */
  members: TrainingMembers
  stats: TransportStats
  onBadInput?: (peer: PeerId, err: WireError) => void
  /** Whether the transport runs (overlay frames arriving after its stop are dropped). */
  started: () => boolean
  /** A peer reached us over the overlay with no connection open to it: our answers go that way. */
  heardVia: (peer: string) => void
}

export class TrainingInbound {
  private readonly listeners = new Set<TrainingListener>()
  /** The inbound streams being read. */
  private readonly streams = new Set<FramedStream>()

  constructor (private readonly init: TrainingInboundInit) {}

  /** Subscribes to every message received; returns the unsubscribe function. */
  listen (fn: TrainingListener): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Ends every inbound stream being read (the transport stopped). */
  abortAll (err: Error): void {
    for (const f of this.streams) f.abort(err)
    this.streams.clear()
  }

  /** A whole frame that came over the overlay (or was rebuilt from pieces): the same checks and listeners as one read from a stream. */
  overlayFrame (from: string, frame: Uint8Array): void {
    if (!this.init.started()) return
    let msg: TrainingMessage
    try {
      msg = decodeTrainingMessage(frame)
    } catch (err) {
      try { this.init.onBadInput?.(peerIdFromString(from), new WireError('TRAINING_MESSAGE_INVALID', `training message from ${from} (over the overlay) does not decode`, { cause: err })) } catch {}
      return
    }
    this.init.stats.framesReceived++
    this.init.stats.bytesReceived += frame.length
    this.init.stats.overlayFramesReceived++
    this.init.members.onReceive(Date.now(), from, msg)
    // no connection to the sender: our answers go the way it came (no dial that would fail first)
    let connected = false
    try { connected = this.init.host.getConnections(peerIdFromString(from)).some(c => c.status === 'open') } catch {}
    if (!connected) this.init.heardVia(from)
    this.dispatch(from, msg)
  }

  /** Reads an inbound stream until it ends, handing each message to the listeners. */
  async read (stream: Stream, connection: Connection, framed: FramedStream): Promise<void> {
    this.streams.add(framed)
    const from = connection.remotePeer.toString()
    try {
      for (;;) {
        const frame = await framed.read()
        if (frame === undefined) {
          // the sender moved to another connection (or stopped): close our end too, so the stream
          // (and a relayed connection left with none) goes away
          await stream.close({ signal: AbortSignal.timeout(2000) }).catch((err: Error) => { stream.abort(err) })
          break
        }
        let msg: TrainingMessage
        try {
          msg = decodeTrainingMessage(frame)
        } catch (err) {
          throw new WireError('TRAINING_MESSAGE_INVALID', `training message from ${from} does not decode`, { cause: err })
        }
        this.init.stats.framesReceived++
        this.init.stats.bytesReceived += frame.length
        this.init.members.onReceive(Date.now(), from, msg)
        this.dispatch(from, msg)
      }
    } catch (err) {
      if (err instanceof WireError) {
        // an honest member's early slice is no larger than the job's model; anything larger is charged
        const declared = (err as WireError & { declaredBytes?: number }).declaredBytes ?? Infinity
        const earlySlice = err.code === 'FRAME_TOO_LARGE' && this.init.members.limitOf(Date.now(), from) === 0 && declared <= this.init.members.earlySliceBytes(Date.now())
        if (!wasHandled(err) && !earlySlice) this.init.onBadInput?.(connection.remotePeer, err)
        // tell the peer why before dropping the stream (as every dbc protocol does)
        // (flushed with close() first: abort() alone discards what is still unsent)
        try {
          stream.send(encodeFrame(dbc.common.v1.ProtocolError.encode({ code: err.code, message: err.message }).finish()))
          await stream.close({ signal: AbortSignal.timeout(2000) })
        } catch {}
      }
      log('the stream from %s on connection %s ended: %s', from, connection.id, (err as Error).message)
      framed.abort(err as Error)
    } finally {
      this.streams.delete(framed)
      closeIfRedundant(this.init.host, connection, stream)
    }
  }

  dispatch (from: string, msg: TrainingMessage): void {
    for (const fn of this.listeners) {
      try {
        fn(from, msg)
      } catch (err) {
        log.error('training listener failed: %s', (err as Error).message)
      }
    }
  }
}
