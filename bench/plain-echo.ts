// The honest baseline for the overlay bench: a plain libp2p stream echo with no project framing,
// no protobuf and no guard, on the same connection the envelopes use. The client sends a
// payload and waits until the same number of bytes came back.
import type { Stream } from '@libp2p/interface'
import type { Libp2p } from 'libp2p'
import type { PeerId } from '@libp2p/interface'

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
