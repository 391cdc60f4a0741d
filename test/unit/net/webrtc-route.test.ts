// WebRTC in the route book (src/net/routes): a `/p2p-circuit/webrtc` connection is not relayed
// but hole-punched (ICE through both NATs); a NATed node's first relayed contact dials the
// provider's WebRTC address, uses the connection it opens, and says so in explain; a failed
// attempt leaves the route relayed, says so, and ends the wait for an upgrade at once.
// And the bound on inbound WebRTC attempts (src/core/routing/webrtc-admission.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { RouteBook, isRelayed } from '../../../src/net/routes/index.js'
import { WebRTCAdmission } from '../../../src/core/routing/webrtc-admission.js'
import { webrtcLastSorter } from '../../../src/net/host.js'

const RELAY = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const PROV = '12D3KooWProvProvProvProvProvProvProvProvProvProvProv'
const circuit = `/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PROV}`
const webrtc = `/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PROV}`
const peer = { toString: () => PROV, equals: (o: any) => o.toString() === PROV }
let ids = 0
const conn = (addr: string, o: Record<string, unknown> = {}): any => ({ id: `c${ids++}`, remotePeer: peer, remoteAddr: multiaddr(addr), direction: 'outbound', timeline: { open: Date.now() }, status: 'open', newStream: async () => ({}), ...o })

/** A NATed host (it listens on /webrtc) with a relayed connection to the provider; `dial` of the WebRTC address does what `webrtcDial` says. */
function natHost (webrtcDial: 'open' | 'fail'): { host: any, dialled: string[] } {
  const relayed = conn(circuit, { limits: { bytes: 4_000_000n } })
  const conns: any[] = [relayed]
  const dialled: string[] = []
  const host = {
    addEventListener: () => {},
    removeEventListener: () => {},
    getMultiaddrs: () => [multiaddr(`/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMe`)],
    getConnections: () => conns,
    peerStore: { get: async () => ({ addresses: [{ multiaddr: multiaddr(circuit) }, { multiaddr: multiaddr(webrtc.replace(`/p2p/${PROV}`, '')) }] }) },
    dial: async (target: any) => {
      dialled.push(target.toString())
      if (webrtcDial === 'fail') throw new Error('ICE failed')
      const c = conn(webrtc); conns.push(c); return c
    }
  }
  return { host, dialled }
}

test('a /p2p-circuit/webrtc connection is hole-punched, not relayed; so is an inbound /webrtc one', () => {
  assert.ok(isRelayed(circuit))
  assert.not.ok(isRelayed(webrtc))
  const book = new RouteBook({ addEventListener: () => {}, removeEventListener: () => {} } as any)
  const out = book.classify(conn(webrtc))
  assert.is(out.kind, 'hole-punched')
  assert.match(out.facts, new RegExp(`WebRTC connection .*signalled through relay ${RELAY}`))
  const inbound = book.classify(conn(`/webrtc/p2p/${PROV}`, { direction: 'inbound' }))
  assert.is(inbound.kind, 'hole-punched')
  assert.match(inbound.facts, /WebRTC connection.*the provider dialled it/)
})

test('first relayed contact from a NATed node: the provider\'s WebRTC address is dialled and carries the message', async () => {
  const { host, dialled } = natHost('open')
  const book = new RouteBook(host, { upgradeWaitMs: 60_000 })
  const { route } = await book.open(peer as any, '/dbc/task/1.0.0', 100)
  assert.equal(dialled, [webrtc])
  assert.is(route.kind, 'hole-punched')
  assert.match(route.facts, /we dialled it \(open \d+ ms after our attempt began\)/)
})

test('a failed WebRTC attempt: the route stays relayed, explain says why, and the wait ends without waiting out upgradeWaitMs', async () => {
  const { host, dialled } = natHost('fail')
  // 10 minutes: a wait that did not end on the failure would time the test out
  const book = new RouteBook(host, { upgradeWaitMs: 600_000 })
  const { route } = await book.open(peer as any, '/dbc/task/1.0.0', 100)
  assert.equal(dialled, [webrtc])
  assert.is(route.kind, 'relayed')
  assert.match(route.facts, /WebRTC found no path through the NATs/)
})

test('a public node (no /webrtc listen address) dials no WebRTC address', async () => {
  const { host, dialled } = natHost('open')
  host.getMultiaddrs = () => [multiaddr('/ip4/7.77.0.9/tcp/4001')]
  const book = new RouteBook(host, { upgradeWaitMs: 100 })
  const { route } = await book.open(peer as any, '/dbc/task/1.0.0', 100)
  assert.equal(dialled, [])
  assert.is(route.kind, 'relayed')
})

test('dial order: WebRTC addresses after the relayed ones (libp2p\'s default puts them first)', () => {
  const addrs = [webrtc, circuit, '/ip4/192.168.77.2/tcp/4001'].map(a => ({ multiaddr: multiaddr(a), isCertified: false }))
  assert.equal(addrs.sort(webrtcLastSorter).map(a => a.multiaddr.toString()), [circuit, '/ip4/192.168.77.2/tcp/4001', webrtc])
})

test('inbound WebRTC attempts are bounded per peer and in total, in flight and open', () => {
  const a = new WebRTCAdmission({ perPeerInFlight: 1, totalInFlight: 3, perPeerOpen: 2, totalOpen: 5 })
  const none = { peer: 0, total: 0 }
  assert.is(a.admit('p1', none), undefined)
  assert.is(a.admit('p1', none), 'peer-in-flight', 'one attempt in flight per peer')
  assert.is(a.admit('p2', none), undefined)
  assert.is(a.admit('p3', none), undefined)
  assert.is(a.admit('p4', none), 'total-in-flight')
  assert.is(a.attemptsInFlight, 3)
  a.done('p1'); a.done('p1') // a second done of the same attempt changes nothing
  assert.is(a.attemptsInFlight, 2)
  assert.is(a.admit('p1', { peer: 2, total: 2 }), 'peer-open', 'two WebRTC connections open with p1 already')
  assert.is(a.admit('p1', { peer: 0, total: 3 }), 'total-open', '3 open + 2 in flight = the total bound')
  assert.is(a.admit('p1', { peer: 1, total: 2 }), undefined)
})

test.run()
