// /dbc/echo/1.0.0: request/response over our framing. Health checks and the net benchmark use
// it; it is also the smallest example of a protocol adapter: the stream handler only frames and
// decodes, and a malformed frame is answered with a ProtocolError and costs the peer score.
import type { Stream, Connection, PeerId } from '@libp2p/interface'
import { FramedStream } from './framed.js'
import { encodeFrame } from '../wire/frame.js'
import { dbc } from '../wire/gen/wire.js'
import { decodeMessage } from '../wire/decode.js'
import { WireError } from '../errors.js'
import type { Host } from './host.js'
import { guardedHandle, type GuardedStreamInit } from './guard/index.js'

export const ECHO_PROTOCOL = '/dbc/echo/1.0.0'
export const ECHO_MAX_FRAME = 1024 * 1024

export interface EchoInit {
  /** Called when a peer sends bytes that break the protocol. */
  onBadInput?: (peer: PeerId, err: WireError) => void
}

export async function handleEchoStream (stream: Stream, connection: Connection, init: EchoInit = {}, open?: (init: GuardedStreamInit) => FramedStream): Promise<void> {
  const framed = open?.({ maxFrameBytes: ECHO_MAX_FRAME }) ?? new FramedStream(stream, { maxFrameBytes: ECHO_MAX_FRAME })
  try {
    for (;;) {
      const frame = await framed.read({ signal: AbortSignal.timeout(30_000) })
      if (frame === undefined) break
      const msg = decodeMessage(dbc.common.v1.Echo, frame)
      if (!msg.ok) throw msg.error
      await framed.write(dbc.common.v1.Echo.encode({ payload: msg.value.payload }).finish())
    }
    await framed.close()
  } catch (err) {
    if (err instanceof WireError) {
      init.onBadInput?.(connection.remotePeer, err)
      // tell the peer why, then drop the stream; the connection and other streams live on
      try {
        stream.send(encodeFrame(dbc.common.v1.ProtocolError.encode({ code: err.code, message: err.message }).finish()))
      } catch {}
    }
    framed.abort(err as Error)
  }
}

export function registerEcho (host: Host, init: EchoInit = {}): Promise<void> {
  return guardedHandle(host, ECHO_PROTOCOL, async (stream, connection, g) => {
    await handleEchoStream(stream, connection, init, g.open)
  }, { maxInboundStreams: 64, runOnLimitedConnection: true, expectsRequest: true })
}

/** An echo client on one stream, for repeated round trips without re-opening streams. */
export class EchoClient {
  private constructor (private readonly framed: FramedStream) {}

  static async open (host: Host, peer: PeerId, opts: { signal?: AbortSignal } = {}): Promise<EchoClient> {
    const stream = await host.dialProtocol(peer, ECHO_PROTOCOL, { signal: opts.signal, runOnLimitedConnection: true })
    return new EchoClient(new FramedStream(stream, { maxFrameBytes: ECHO_MAX_FRAME }))
  }

  async roundTrip (payload: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    await this.framed.write(dbc.common.v1.Echo.encode({ payload }).finish(), opts)
    const frame = await this.framed.readRequired(opts)
    const msg = decodeMessage(dbc.common.v1.Echo, frame)
    if (!msg.ok) throw msg.error
    return msg.value.payload
  }

  async close (): Promise<void> { await this.framed.close() }
}
