// The route book's classification (direct / hole-punched / relayed via which relay) and the
// explain annotation, on fake connections.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { RouteBook, relayOf, isRelayed, limitBytesLeft, wireBytes } from '../../../src/net/routes/index.js'
import { withRoutes } from '../../../src/net/routes/explain.js'

const RELAY = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const PROV = '12D3KooWProvProvProvProvProvProvProvProvProvProvProv'
const circuit = `/ip4/10.0.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${PROV}`

function fakeHost (): { host: any, open: (c: any) => void } {
  const listeners: Array<(e: any) => void> = []
  return {
    host: { addEventListener: (_: string, l: any) => listeners.push(l), removeEventListener: () => {}, getConnections: () => [] },
    open: (c) => { for (const l of listeners) l({ detail: c }) }
  }
}
const conn = (addr: string, opened: number, o: Record<string, unknown> = {}): any => ({ remotePeer: { toString: () => PROV }, remoteAddr: multiaddr(addr), direction: 'outbound', timeline: { open: opened }, status: 'open', ...o })

test('relayOf / isRelayed / limits', () => {
  assert.is(relayOf(circuit), RELAY)
  assert.ok(isRelayed(circuit))
  assert.not.ok(isRelayed('/ip4/10.0.0.2/tcp/4001'))
  assert.is(relayOf('/ip4/10.0.0.2/tcp/4001'), undefined)
  assert.is(limitBytesLeft({ limits: { bytes: 1000n } } as any), 1000)
  assert.is(limitBytesLeft({} as any), undefined)
  assert.ok(wireBytes(100_000) > 105_000)
})

test('a relayed connection is relayed via its relay; a direct one after it is the hole-punched upgrade', () => {
  let now = 1000
  const { host, open } = fakeHost()
  const book = new RouteBook(host, { now: () => now })
  // before any relayed connection: direct
  assert.is(book.classify(conn('/ip4/10.0.0.2/tcp/4001', 900)).kind, 'direct')
  const relayed = conn(circuit, now, { limits: { bytes: 4096n } })
  open(relayed)
  const r = book.classify(relayed)
  assert.is(r.kind, 'relayed')
  assert.is(r.relay, RELAY)
  assert.is(r.limitBytesLeft, 4096)
  now = 2000
  const upgraded = book.classify(conn('/ip4/10.0.0.2/tcp/4001', 1500, { direction: 'inbound' }))
  assert.is(upgraded.kind, 'hole-punched')
  assert.match(upgraded.facts, /the provider opened through its NAT/)
})

test('a direct connection whose socket opened after the relayed one, but before its open event was handled (a loaded node), is the upgrade', () => {
  let now = 1000
  const { host, open } = fakeHost()
  const book = new RouteBook(host, { now: () => now })
  // the relayed stream opened at 1000; the event is handled at 1200, after the peer's DCUtR socket opened at 1100
  now = 1200
  open(conn(circuit, 1000))
  assert.is(book.classify(conn('/ip4/10.0.0.2/tcp/4001', 1100, { direction: 'inbound' })).kind, 'hole-punched')
  // a direct connection opened before any relayed contact stays direct
  const other = new RouteBook(fakeHost().host, { now: () => 2000 })
  assert.is(other.classify(conn('/ip4/10.0.0.2/tcp/4001', 900, { direction: 'inbound' })).kind, 'direct')
})

test('withRoutes puts the route on each copy and lists the routes', () => {
  const { host, open } = fakeHost()
  const book = new RouteBook(host)
  const relayed = conn(circuit, Date.now(), { limits: { bytes: 4096n } })
  open(relayed)
  ;(book as any).routes.set(PROV, book.classify(relayed))
  const e = withRoutes({ jobId: 'j', task: { copies: [{ provider: PROV }, { provider: 'other' }] } }, book)
  assert.equal((e.task?.copies[0] as any).route.kind, 'relayed')
  assert.equal((e.task?.copies[0] as any).route.relay, RELAY)
  assert.is((e.task?.copies[1] as any).route, undefined)
  assert.ok(e.routes?.[PROV] !== undefined)
  const plain: { jobId: string, task?: { copies: Array<{ provider: string }> } } = { jobId: 'j' }
  assert.equal(withRoutes(plain, undefined), { jobId: 'j' }, 'no route book: the explanation is unchanged')
})

test.run()
