// The honest baseline for the overlay bench: a plain libp2p stream echo with no project framing,
// no protobuf and no guard, on the same connection the envelopes use. The client sends a
// payload and waits until the same number of bytes came back.
import type { Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { PeerId } from '@libp2p/interface'
import { FramedStream } from '../src/net/framed.js'
import { encodeFrame } from '../src/wire/frame.js'
import { guardedHandle } from '../src/net/guard/index.js'

export const PLAIN_ECHO_PROTOCOL = '/bench/plain-echo/1.0.0'

export async function registerPlainEcho (node: Pick<Libp2p, 'handle'>): Promise<void> {
  await node.handle(PLAIN_ECHO_PROTOCOL, (stream: Stream) => {
    stream.addEventListener('message', (e) => { stream.send((e as unknown as { data: Uint8Array }).data) })
  }, { runOnLimitedConnection: true })
}

export class PlainEchoClient {
  private waiting?: { left: number, resolve: () => void }
  private constructor (private readonly stream: Stream) {
    stream.addEventListener('message', (e) => {
      const data = (e as unknown as { data: { byteLength: number } }).data
      const w = this.waiting
      if (w === undefined) return
      w.left -= data.byteLength
      if (w.left <= 0) { this.waiting = undefined; w.resolve() }
    })
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peer: PeerId): Promise<PlainEchoClient> {
    return new PlainEchoClient(await node.dialProtocol(peer, PLAIN_ECHO_PROTOCOL, { runOnLimitedConnection: true }))
  }

  async roundTrip (payload: Uint8Array): Promise<void> {
    await new Promise<void>(resolve => {
      this.waiting = { left: payload.byteLength, resolve }
      this.stream.send(payload)
    })
  }

  async close (): Promise<void> { await this.stream.close().catch(() => {}) }
}

export const FRAMED_ACK_PROTOCOL = '/bench/framed-ack/1.0.0'

/**
 * The relay protocol's I/O path without the envelope: each frame is answered with a fixed small
 * ack frame, in the turn it arrives, on a guarded push-mode stream (src/net/framed.ts listen),
 * as /dbc/relay's inbound side does. Its row is the floor the envelope round trip sits on: what
 * is left above it is sealing, opening and the delivery bookkeeping.
 */
export async function registerFramedAck (node: Pick<Libp2p, 'handle'>, ackBytes: number): Promise<void> {
  const ack = encodeFrame(new Uint8Array(ackBytes))
  await guardedHandle(node, FRAMED_ACK_PROTOCOL, (stream, _connection, g) => {
    const framed = g.open({ maxFrameBytes: 1 << 20 })
    framed.listen({ frame: () => { try { stream.send(ack) } catch {} }, end: () => { framed.abort(new Error('closed')) } })
  }, { runOnLimitedConnection: true, expectsRequest: true })
}

export class FramedAckClient {
  private waiting?: () => void
  private constructor (private readonly framed: FramedStream) {
    framed.listen({ frame: () => { const w = this.waiting; this.waiting = undefined; w?.() }, end: () => {} })
  }

  static async open (node: Pick<Libp2p, 'dialProtocol'>, peer: PeerId): Promise<FramedAckClient> {
    return new FramedAckClient(new FramedStream(await node.dialProtocol(peer, FRAMED_ACK_PROTOCOL, { runOnLimitedConnection: true }), { maxFrameBytes: 1 << 20 }))
  }

  /** Sends one frame of `bytes` bytes and waits for its ack frame. */
  async roundTrip (bytes: number): Promise<void> {
    const frame = encodeFrame(new Uint8Array(bytes))
    await new Promise<void>(resolve => { this.waiting = resolve; this.framed.stream.send(frame) })
  }

  async close (): Promise<void> { await this.framed.stream.close().catch(() => {}) }
}
