// A PeerStreams (src/training/streams.ts) on a fake host holding `conns`: its dials wait until the
// test calls `finish(conn)`, which adds the connection; the dial options are recorded. A host made
// outside createHost has no relay-transport dialer, so the route book dials through host.dial.
import { PeerStreams } from '../../../src/training/streams.js'

export function streamsOn (conns: any[]): { streams: PeerStreams, dials: Array<{ force?: boolean }>, finish: (c: any) => void } {
  const dials: Array<{ force?: boolean }> = []
  let finish: (c: any) => void = () => {}
  const host: any = {
    peerId: { toString: () => 'self' },
    addEventListener: () => {},
    removeEventListener: () => {},
    getConnections: () => conns,
    peerStore: { get: async () => ({ addresses: [] }) },
    dial: async (_: unknown, opts: { force?: boolean } = {}) => { dials.push(opts); return await new Promise(resolve => { finish = c => { conns.push(c); resolve(c) } }) }
  }
  const streams = new PeerStreams({ host, routeLog: {} as any, overlay: {} as any, overlayWaitMs: 1000, started: () => true, current: () => true })
  streams.start()
  return { streams, dials, finish: c => { finish(c) } }
}
