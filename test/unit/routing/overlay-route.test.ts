// The route book's third route (src/net/routes): a forced `routing: overlay` makes the provider
// private (the gater refuses it both ways, an open connection is closed) and never opens a
// stream; a failed connection falls back to the overlay; a bootstrap relay is never private;
// explain prints `overlay via ...`; placement charges the overlay two hops.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { RouteBook } from '../../../src/net/routes/index.js'
import { OverlayOnlyPeers, strictNatGater } from '../../../src/net/routes/private-peers.js'
import { describeRoute, withRoutes } from '../../../src/net/routes/explain.js'
import { routeCost, RELAY_FORWARD_MS, OVERLAY_EXTRA_MS } from '../../../src/core/scheduler/route-cost.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { fakeOverlay } from './fake-overlay.js'

const newPeer = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

function fakeHost (dial: () => Promise<any>): any {
  return { addEventListener: () => {}, removeEventListener: () => {}, getConnections: () => [], dial }
}


test('forced overlay: the provider becomes private, no stream is opened, the route names the relays', async () => {
  const P = await newPeer()
  const hungUp: string[] = []
  const priv = new OverlayOnlyPeers()
  priv.hangUp = (p) => { hungUp.push(p) }
  priv.noteMatch(P) // the capability index named it (a connected peer it did not name keeps its connection)
  let dials = 0
  const { overlay, sent } = fakeOverlay({ relays: ['R1', 'R2'] })
  const book = new RouteBook(fakeHost(async () => { dials++; throw new Error('must not dial') }), { overlay: () => overlay, privatePeers: priv, forceOverlay: (_p, msg) => msg.leaseRequest != null })
  const reply = await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, async () => { throw new Error('no stream') })
  assert.is(reply.offer?.slots, 1)
  assert.is(dials, 0, 'never dialled')
  assert.equal(hungUp, [P], 'an open connection is closed when the peer turns private')
  assert.ok(priv.has(P))
  // later messages (a voucher names no job) stay on the overlay: the peer is private now
  await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { voucher: {} }, 10, undefined, async () => { throw new Error('no stream') })
  assert.is(sent.length, 2)
  const r = book.get(P)
  assert.is(r?.kind, 'overlay')
  assert.equal(r?.relays, ['R1', 'R2'])
  assert.equal(r?.uses, { overlay: 2 })
  assert.is(describeRoute(r as any), 'overlay via R1, R2')
  const e = withRoutes({ task: { copies: [{ provider: P }] } }, book) as any
  assert.is(e.task.copies[0].route.kind, 'overlay')
  assert.equal(e.task.copies[0].route.relays, ['R1', 'R2'])
})

test('a bootstrap relay is never made private (ROUTE_PRIVATE); no overlay running: NO_OVERLAY, not a connection', async () => {
  const R = await newPeer()
  const priv = new OverlayOnlyPeers()
  const { overlay } = fakeOverlay({ relays: ['R1', 'R2'] })
  const book = new RouteBook(fakeHost(async () => { throw new Error('must not dial') }), { overlay: () => overlay, privatePeers: priv, forceOverlay: () => true, keepConnected: p => p === R })
  await book.request(peerIdFromString(R), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, async () => { throw new Error('no stream') }).then(() => assert.unreachable(), (err: { code?: string }) => { assert.is(err.code, 'ROUTE_PRIVATE') })
  assert.not.ok(priv.has(R))
  const none = new RouteBook(fakeHost(async () => { throw new Error('must not dial') }), { overlay: () => undefined, forceOverlay: () => true })
  await none.request(peerIdFromString(R), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, async () => { throw new Error('no stream') }).then(() => assert.unreachable(), (err: { code?: string }) => { assert.is(err.code, 'NO_OVERLAY') })
})

test('fallback: when no connection opens the overlay carries the message (and the next ones for a while); fallback: false does not', async () => {
  const P = await newPeer()
  let dials = 0
  const { overlay, sent } = fakeOverlay({ relays: ['R1', 'R2'] })
  const book = new RouteBook(fakeHost(async () => { dials++; throw new Error('no valid addresses') }), { overlay: () => overlay })
  const reply = await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, async () => { throw new Error('no stream') })
  assert.is(reply.offer?.slots, 1)
  assert.is(dials, 1)
  assert.match(book.get(P)?.facts ?? '', /fallback: no direct or relayed connection opened \(no valid addresses\)/)
  await book.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, async () => { throw new Error('no stream') })
  assert.is(dials, 1, 'sticky: the next message does not try a connection first')
  assert.is(sent.length, 2)
  const strict = new RouteBook(fakeHost(async () => { throw new Error('no valid addresses') }), { overlay: () => overlay, fallback: false })
  await strict.request(peerIdFromString(P), '/dbc/task/1.0.0', { leaseRequest: {} }, 10, undefined, async () => { throw new Error('no stream') }).then(() => assert.unreachable(), (err: Error) => { assert.match(err.message, /no valid addresses/) })
})

test('gaters: a private peer is refused both ways; a strict NAT takes only relayed connections and its relay', async () => {
  const P = peerIdFromString(await newPeer()); const R = peerIdFromString(await newPeer()); const Q = peerIdFromString(await newPeer())
  const priv = new OverlayOnlyPeers()
  const base = { denyDialPeer: () => false }
  const g = priv.wrap(base)
  assert.is(await g.denyDialPeer(P), false)
  priv.add(P.toString())
  assert.is(await g.denyDialPeer(P), true)
  assert.is(await g.denyInboundEncryptedConnection(P, { remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/1') } as any), true)
  assert.is(await g.denyInboundRelayedConnection(R, P), true, 'not through a relay either')
  assert.is(await g.denyDialPeer(Q), false)
  assert.is(priv.refused, 3)
  const nat = strictNatGater({}, p => p === R.toString())
  const direct = { remoteAddr: multiaddr('/ip4/127.0.0.1/tcp/4001') } as any
  const relayed = { remoteAddr: multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${R.toString()}/p2p-circuit`) } as any
  assert.is(await nat.denyInboundEncryptedConnection?.(Q, direct), true, 'no direct inbound')
  assert.is(await nat.denyOutboundEncryptedConnection?.(Q, direct), true, 'no direct outbound but to the relay')
  assert.is(await nat.denyOutboundEncryptedConnection?.(R, direct), false)
  assert.is(await nat.denyInboundEncryptedConnection?.(Q, relayed), false, 'relayed inbound is fine')
})

test('route cost: the overlay pays the relay leg, forwarding and sealing, at the slowest hop\'s bandwidth', () => {
  const o = routeCost({ kind: 'overlay', rttMs: 10, bandwidthBytesPerSec: 1e8, relayRttMs: 30 })
  assert.is(o.extraRttMs, 30 + RELAY_FORWARD_MS + OVERLAY_EXTRA_MS)
  assert.is(o.rttMs, 10 + 30 + RELAY_FORWARD_MS + OVERLAY_EXTRA_MS)
  assert.ok((o.bandwidthBytesPerSec ?? Infinity) <= 2e6, 'capped by the relay')
  const relayed = routeCost({ kind: 'relayed', rttMs: 10, relayRttMs: 30 })
  assert.ok((o.rttMs ?? 0) > (relayed.rttMs ?? 0), 'dearer than a circuit relay: it seals and acks each chunk')
})

test.run()
