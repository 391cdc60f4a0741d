// A used-up relayed connection is replaced by a fresh one dialled on the relay transport, through
// the same relay first, never by a dial by peer id: libp2p's dial queue never answers that with a
// limited connection and joins it onto any pending dial to the peer, which behind a NAT tries the
// peer's unreachable private address first and waits out its 6 s timeout (session 15: rounds lost
// at every swap in test/long/netns-nat.test.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { RouteBook } from '../../../src/net/routes/index.js'

const RELAY1 = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const RELAY2 = '12D3KooWRe2ayRe2ayRe2ayRe2ayRe2ayRe2ayRe2ayRe2ayRe2a'
const PEER = '12D3KooWProvProvProvProvProvProvProvProvProvProvProv'
const peer: any = { toString: () => PEER, equals: (o: any) => String(o) === PEER }
const via = (relay: string): string => `/ip4/10.0.0.1/tcp/${relay === RELAY1 ? 4001 : 4003}/p2p/${relay}/p2p-circuit/p2p/${PEER}`
const relayed = (addr: string, bytes: bigint): any => ({ id: addr + String(bytes), remotePeer: peer, remoteAddr: multiaddr(addr), direction: 'outbound', timeline: { open: Date.now() }, status: 'open', limits: { bytes }, streams: [] })

/** A host whose only connection to PEER is `conns`; a dial by peer id hangs until its signal aborts (libp2p's queue stuck on a private address). */
function natHost (conns: any[]): { host: any, dials: unknown[] } {
  const dials: unknown[] = []
  const host = {
    addEventListener: () => {},
    removeEventListener: () => {},
    getConnections: () => conns,
    peerStore: { get: async () => ({ addresses: [{ multiaddr: multiaddr(`/ip4/10.0.0.1/tcp/4003/p2p/${RELAY2}/p2p-circuit`) }, { multiaddr: multiaddr('/ip4/192.168.79.2/tcp/4001') }] }) },
    dial: async (_: unknown, opts: { signal?: AbortSignal, force?: boolean } = {}) => {
      dials.push(opts)
      return await new Promise((_resolve, reject) => { opts.signal?.addEventListener('abort', () => { reject(new Error('dial by peer id waited out the private address')) }) })
    }
  }
  return { host, dials }
}

test('a used-up relayed connection: the fresh one is dialled on the relay transport through the same relay, not by peer id', async () => {
  const used = relayed(via(RELAY1), 20_000n)
  const { host, dials } = natHost([used])
  const dialled: string[] = []
  const fresh = relayed(via(RELAY1), 4_000_000n)
  const book = new RouteBook(host, { upgradeWaitMs: 0, relayedDial: async (ma: Multiaddr) => { dialled.push(ma.toString()); return fresh } })
  ;(book as any).waited.add(PEER) // not the first contact (that one waits for DCUtR / WebRTC)
  // a ref'd timer: the old code's dial by peer id fails here after 3 s instead of hanging
  const ac = new AbortController()
  const timer = setTimeout(() => { ac.abort() }, 3000)
  const conn = await book.connectionFor(peer, 50_000, { signal: ac.signal, replyBytes: 50_000 }).finally(() => { clearTimeout(timer) })
  assert.is(conn, fresh)
  assert.equal(dialled, [via(RELAY1)], 'through the relay of the used-up connection')
  assert.equal(dials, [], 'no dial by peer id (libp2p queue)')
})

test('the used relay refuses: the peer\'s other relay; no circuit connects: a forced dial as before', async () => {
  const used = relayed(via(RELAY1), 20_000n)
  const { host } = natHost([used])
  const dialled: string[] = []
  const fresh = relayed(via(RELAY2), 4_000_000n)
  const book = new RouteBook(host, { upgradeWaitMs: 0, relayedDial: async (ma: Multiaddr) => { dialled.push(ma.toString()); if (ma.toString().includes(RELAY1)) throw new Error('RESOURCE_LIMIT_EXCEEDED'); return fresh } })
  assert.is(await book.freshRelayed(peer, used), fresh)
  assert.equal(dialled, [via(RELAY1), via(RELAY2)], 'the private address is never dialled')
  const forced = relayed(via(RELAY2), 4_000_000n)
  const h2 = { ...natHost([used]).host, dial: async (_: unknown, opts: { force?: boolean } = {}) => { assert.is(opts.force, true); return forced } }
  const none = new RouteBook(h2 as any, { upgradeWaitMs: 0, relayedDial: async () => { throw new Error('no reservation') } })
  assert.is(await none.freshRelayed(peer, used), forced)
})

test('a message no relayed connection can carry still dials by peer id (the peer may be reachable directly)', async () => {
  const used = relayed(via(RELAY1), 20_000n)
  const direct = { ...relayed('/ip4/10.0.0.9/tcp/4001', 0n), limits: undefined }
  const listeners: Array<(e: any) => void> = []
  const dials: unknown[] = []
  const host = { ...natHost([used]).host, addEventListener: (_: string, l: any) => listeners.push(l), dial: async (_: unknown, opts: unknown) => { dials.push(opts); return direct } }
  const book = new RouteBook(host as any, { upgradeWaitMs: 0, relayedDial: async () => { throw new Error('not this way') } })
  ;(book as any).waited.add(PEER)
  for (const l of listeners) l({ detail: relayed(via(RELAY1), 300_000n) }) // the relay's budget: 300 kB a connection
  assert.is(await book.connectionFor(peer, 200_000, { replyBytes: 200_000 }), direct)
  assert.is(dials.length, 1)
})

test('a frame that no longer fits joins the fresh relayed connection already being opened ahead of need', async () => {
  const used = relayed(via(RELAY1), 20_000n)
  const { host } = natHost([used])
  let dialled = 0
  let open: (c: any) => void = () => {}
  const book = new RouteBook(host, { upgradeWaitMs: 0, relayedDial: async () => { dialled++; return await new Promise(resolve => { open = resolve }) } })
  const ahead = book.freshRelayed(peer, used)
  const now = book.freshRelayed(peer, used)
  await new Promise(resolve => setImmediate(resolve))
  const fresh = relayed(via(RELAY1), 4_000_000n)
  open(fresh)
  assert.is(await ahead, fresh)
  assert.is(await now, fresh)
  assert.is(dialled, 1, 'one circuit, not two')
})

test.run()
