// An outbound WebRTC attempt the host's bound turned away is not a try (review s11 M5): 8626ed6
// marked the peer as tried before asking the bound, so a skipped peer stayed relayed for the
// daemon's life (a NATed submitter asking 64 relayed candidates got at most 8 attempts). Now the
// book tries again at a later contact (WEBRTC_RETRY_MS on), a retry turned away again costs the
// request no wait, and our own attempts have their own share of the in-flight bound, so inbound
// attempts from throw-away identities (s10 L2) cannot block them (nor ours the inbound ones).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { RouteBook } from '../../../src/net/routes/index.js'
import { WEBRTC_RETRY_MS } from '../../../src/net/routes/webrtc-upgrade.js'
import { WebRTCAdmission } from '../../../src/core/routing/webrtc-admission.js'

const RELAY = '12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'
const ME = '12D3KooWMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMeMe'
const prov = (i: number): string => `12D3KooWProv${String.fromCharCode(65 + i).repeat(40)}`
const peerOf = (id: string): any => ({ toString: () => id, equals: (o: any) => o.toString() === id })
const circuit = (id: string): string => `/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${id}`
const webrtc = (id: string): string => `/ip4/7.77.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${id}`
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
/** The route's kind, or 'still waiting' when the request has not returned after 3 s (its upgrade wait is 10 minutes). */
async function kindWithin (p: Promise<{ route: { kind: string } }>): Promise<string> {
  return await Promise.race([p.then(r => r.route.kind), sleep(3000).then(() => 'still waiting')])
}

/**
 * A NATed host with a relayed connection to each of `n` providers. A WebRTC dial opens a WebRTC
 * connection: at once, or (hold) when `release()` is called.
 */
function natHost (n: number): { host: any, dialled: string[], hold: (on: boolean) => void, release: () => void } {
  const conns: any[] = Array.from({ length: n }, (_, i) => ({ remotePeer: peerOf(prov(i)), remoteAddr: multiaddr(circuit(prov(i))), direction: 'outbound', timeline: { open: Date.now() }, status: 'open', limits: { bytes: 4_000_000n }, newStream: async () => ({}) }))
  const dialled: string[] = []
  let holding = false
  const waiting: Array<() => void> = []
  const host = {
    addEventListener: () => {},
    removeEventListener: () => {},
    getMultiaddrs: () => [multiaddr(webrtc(ME))],
    getConnections: (p?: any) => p === undefined ? conns : conns.filter(c => c.remotePeer.toString() === p.toString()),
    peerStore: { get: async (p: any) => ({ addresses: [{ multiaddr: multiaddr(circuit(p.toString())) }, { multiaddr: multiaddr(webrtc(p.toString())) }] }) },
    dial: async (target: any) => {
      const id = /\/p2p\/([^/]+)$/.exec(target.toString())?.[1] ?? ''
      dialled.push(id)
      if (holding) await new Promise<void>(resolve => waiting.push(resolve))
      const c = { remotePeer: peerOf(id), remoteAddr: multiaddr(webrtc(id)), direction: 'outbound', timeline: { open: Date.now() }, status: 'open', newStream: async () => ({}) }
      conns.push(c)
      return c
    }
  }
  return { host, dialled, hold: on => { holding = on }, release: () => { for (const w of waiting.splice(0)) w() } }
}

test('6 first contacts with room for 2 attempts: the 4 turned away are tried at a later contact, and all 6 end on WebRTC', async () => {
  const { host, dialled, hold, release } = natHost(6)
  let offset = 0
  const admission = new WebRTCAdmission({ outboundInFlight: 2 })
  const book = new RouteBook(host, { upgradeWaitMs: 300, now: () => Date.now() + offset, webrtcAdmission: admission })
  hold(true)
  const first = Array.from({ length: 6 }, async (_, i) => await book.open(peerOf(prov(i)), '/dbc/task/1.0.0', 100))
  await sleep(50)
  assert.is(admission.outboundAttemptsInFlight, 2)
  const routes = (await Promise.all(first)).map(r => r.route)
  assert.equal(routes.map(r => r.kind), Array(6).fill('relayed'), 'every first request went relayed (the attempts were still running)')
  assert.is(routes.filter(r => /WebRTC attempt deferred/.test(r.facts)).length, 4, routes.map(r => r.facts).join('\n'))
  release(); hold(false)
  await sleep(20)
  const skipped = Array.from({ length: 6 }, (_, i) => prov(i)).filter(id => !dialled.includes(id))
  assert.is(skipped.length, 4)
  // too early for a retry: the route stays relayed, nothing dialled
  assert.is((await book.open(peerOf(skipped[0]), '/dbc/task/1.0.0', 100)).route.kind, 'relayed')
  assert.is(dialled.length, 2)
  offset += WEBRTC_RETRY_MS
  for (const id of skipped) {
    const { route } = await book.open(peerOf(id), '/dbc/task/1.0.0', 100)
    assert.is(route.kind, 'hole-punched', `${id}: ${route.facts}`)
  }
  assert.equal([...dialled].sort(), Array.from({ length: 6 }, (_, i) => prov(i)).sort(), 'one attempt per provider, none twice')
  assert.is(admission.outboundAttemptsInFlight, 0)
})

test('a retry turned away again ends the request\'s wait at once and is tried again later', async () => {
  const { host, dialled } = natHost(1)
  let offset = 0
  const admission = new WebRTCAdmission({ outboundInFlight: 1 })
  assert.is(admission.admit('12D3KooWOtherOtherOther', { peer: 0, total: 0 }, 'outbound'), undefined) // our attempt to someone else holds the share
  const book = new RouteBook(host, { upgradeWaitMs: 600_000, now: () => Date.now() + offset, webrtcAdmission: admission })
  const p = book.open(peerOf(prov(0)), '/dbc/task/1.0.0', 100)
  await sleep(100)
  offset += 600_000 // a first contact turned away waits for an upgrade (the peer's own attempt may come): end that wait
  assert.is((await p).route.kind, 'relayed')
  offset += WEBRTC_RETRY_MS
  // busy again: no 10-minute wait
  assert.is(await kindWithin(book.open(peerOf(prov(0)), '/dbc/task/1.0.0', 100)), 'relayed')
  assert.is(dialled.length, 0)
  admission.done('12D3KooWOtherOtherOther', 'outbound')
  offset += WEBRTC_RETRY_MS
  assert.is((await book.open(peerOf(prov(0)), '/dbc/task/1.0.0', 100)).route.kind, 'hole-punched')
  assert.equal(dialled, [prov(0)])
})

test('inbound attempts holding every inbound slot leave our own attempts their share, and ours leave the inbound ones theirs', async () => {
  const admission = new WebRTCAdmission()
  for (let i = 0; i < 8; i++) assert.is(admission.admit(`12D3KooWThrowAway${i}`, { peer: 0, total: 0 }), undefined)
  assert.is(admission.admit('12D3KooWThrowAway9', { peer: 0, total: 0 }), 'total-in-flight')
  const { host, dialled } = natHost(1)
  const book = new RouteBook(host, { upgradeWaitMs: 600_000, webrtcAdmission: admission })
  assert.is(await kindWithin(book.open(peerOf(prov(0)), '/dbc/task/1.0.0', 100)), 'hole-punched')
  assert.equal(dialled, [prov(0)])
  const fresh = new WebRTCAdmission()
  for (let i = 0; i < 8; i++) assert.is(fresh.admit(`12D3KooWOurs${i}`, { peer: 0, total: 0 }, 'outbound'), undefined)
  assert.is(fresh.admit('12D3KooWOurs9', { peer: 0, total: 0 }, 'outbound'), 'outbound-in-flight')
  assert.is(fresh.admit('12D3KooWInbound', { peer: 0, total: 0 }), undefined)
  assert.is(fresh.admit('12D3KooWOurs0', { peer: 0, total: 0 }), 'peer-in-flight', 'one attempt per peer, either way')
})

test('an attempt deferred because the peer\'s own attempt to us is in flight says so (both NATed sides dial at first contact)', async () => {
  const { host, dialled } = natHost(2)
  const admission = new WebRTCAdmission()
  const book = new RouteBook(host, { upgradeWaitMs: 300, now: () => Date.now(), webrtcAdmission: admission })
  // the provider's inbound attempt to us runs: ours is turned away
  assert.is(admission.admit(prov(0), { peer: 0, total: 0 }, 'inbound'), undefined)
  const r = await book.open(peerOf(prov(0)), '/dbc/task/1.0.0', 100)
  assert.is(r.route.kind, 'relayed')
  assert.match(r.route.facts, "WebRTC attempt deferred: the peer's own WebRTC attempt to us was in flight (tried again at a later request)")
  assert.not.ok(dialled.includes(prov(0)))
  // the bound (not this peer) turning ours away keeps the bound's words
  const bound = new WebRTCAdmission({ outboundInFlight: 0 })
  const r2 = await new RouteBook(host, { upgradeWaitMs: 300, now: () => Date.now(), webrtcAdmission: bound }).open(peerOf(prov(1)), '/dbc/task/1.0.0', 100)
  assert.match(r2.route.facts, 'WebRTC attempt deferred: too many WebRTC attempts in flight')
})

test.run()
