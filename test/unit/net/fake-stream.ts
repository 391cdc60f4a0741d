// A stand-in for a libp2p v3 stream and a host that registers handlers, for guard tests: bytes
// are pushed in with `deliver`, and abort/close are recorded.
import type { Connection, Stream } from '@libp2p/interface'

export class FakeStream extends EventTarget {
  status = 'open'
  aborted: Error | undefined
  sent: Uint8Array[] = []
  paused = false
  /** As a libp2p stream: a send returned false and no drain came since (src/net/stream-drain.ts reads it). */
  writableNeedsDrain = false
  writeBufferLength = 0

  deliver (bytes: Uint8Array): void {
    const e = new Event('message') as Event & { data: Uint8Array }
    e.data = bytes
    this.dispatchEvent(e)
  }

  send (b: Uint8Array): boolean { this.sent.push(b instanceof Uint8Array ? b : new Uint8Array(0)); return true }
  async onDrain (): Promise<void> {}
  pause (): void { this.paused = true }
  resume (): void { this.paused = false }
  async close (): Promise<void> { this.end() }

  /** Both ends closed (as libp2p reports it). */
  end (error?: Error): void {
    if (this.status !== 'open') return
    this.status = error === undefined ? 'closed' : 'aborted'
    const e = new Event('close') as Event & { error?: Error }
    e.error = error
    this.dispatchEvent(e)
  }

  abort (err: Error): void {
    this.aborted = err
    this.end(err)
  }
}

export function fakeConnection (peer: string): Connection {
  return { remotePeer: { toString: () => peer, toMultihash: () => ({ bytes: new TextEncoder().encode(peer) }), equals: (o: unknown) => String(o) === peer } } as unknown as Connection
}

export class FakeHost {
  readonly handlers = new Map<string, (s: Stream, c: Connection) => void | Promise<void>>()
  async handle (protocol: string, fn: (s: Stream, c: Connection) => void | Promise<void>): Promise<void> { this.handlers.set(protocol, fn) }

  /** Opens an inbound stream of `protocol` from `peer`; returns the fake stream and the handler's promise. */
  open (protocol: string, peer: string): { stream: FakeStream, done: Promise<void> } {
    const stream = new FakeStream()
    const fn = this.handlers.get(protocol)
    if (fn === undefined) throw new Error(`no handler for ${protocol}`)
    const done = Promise.resolve(fn(stream as unknown as Stream, fakeConnection(peer))).catch(() => {})
    return { stream, done }
  }
}
