// review17 L5 (src/net/peer-dials.ts): with only relayed connections open, a stream that may run on
// one reuses the newest and never dials, so before this a pair stayed relayed until the relay ended
// the circuit (~10 min) even when a direct address had become reachable (a port mapping, IPv6).
// Now a pair relayed DIRECT_RETRY_MS tries the peer's direct addresses in the background. And the
// peer's own (certified) addresses go before planted ones also in dials to a list, where libp2p
// marks every address uncertified.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { installPeerDialRules, unreachableLast, DirectRetries, FailedAddrs, PeerAddrs, peerDialStats, DIRECT_RETRY_DIAL_MS, MAX_DIRECT_RETRY_ADDRS, type DialingConnectionManager, type PeerDialDeps } from '../../../src/net/peer-dials.js'
import type { OwnNetwork } from '../../../src/net/nat-addr.js'

const PEER = '12D3KooWLKt6YyPkqmzLk1zpSbu2PH4n3DTS2oNU4YeC2zLbrSFW'
const RELAY = '12D3KooWGC6TvWhfagifcDCD5PhTNcbJwRSvLvZ64omvLPjq3VwS'
const peer = peerIdFromString(PEER)
const CIRCUIT = `/ip4/10.215.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit`
const LAN_ELSEWHERE = '/ip4/192.168.79.2/tcp/4001'
const LAN_OURS = '/ip4/192.168.78.9/tcp/4001'
const PUBLIC = '/ip4/203.0.113.7/tcp/4001'
const PUBLIC6 = '/ip6/2001:db8::7/tcp/4001'
const PLANTED = '/ip4/198.51.100.66/tcp/4001'
const OWN: OwnNetwork[] = [{ address: '192.168.78.2', netmask: '255.255.255.0', family: 'IPv4' }]
const RETRY = 60_000
const withId = (a: string): string => `${a}/p2p/${PEER}`

type Answer = 'yes' | 'no' | 'hold'
interface Live { cm: DialingConnectionManager, dials: string[], streams: string[], conns: any[], release: () => void }

/**
 * libp2p's connection manager as it behaves: an open unlimited connection to the peer answers any
 * dial naming it (findExistingConnection); a dial to a list connects on the first address that
 * answers ('hold': once released); a relayed connection is limited.
 */
function live (answer: (addr: string) => Answer, relayedSince = 0): Live {
  const dials: string[] = []; const streams: string[] = []; const held: Array<() => void> = []
  const conn = (id: string, limited: boolean, openedAt: number): any => ({
    id, status: 'open', limits: limited ? { bytes: 4_194_304n } : undefined, timeline: { open: openedAt },
    newStream: async () => { streams.push(id); return { id: `${id}/s` } }
  })
  const conns: any[] = [conn('relayed', true, relayedSince)]
  const cm: DialingConnectionManager = {
    getConnections: () => conns.filter(c => c.status === 'open'),
    openConnection: async (target: any, options: any = {}) => {
      const unlimited = conns.find(c => c.status === 'open' && c.limits === undefined)
      if (options.force !== true && unlimited !== undefined) return unlimited
      const list: string[] = Array.isArray(target) ? target.map((m: Multiaddr) => m.toString()) : [target.toString()]
      dials.push(list.join(' '))
      for (const a of list) {
        const r = answer(a)
        if (r === 'no') continue
        if (r === 'hold') await new Promise<void>(resolve => { held.push(resolve) })
        const c = conn(`dialled${dials.length}`, a.includes('/p2p-circuit'), 100 + dials.length)
        conns.push(c)
        return c
      }
      throw new Error('all dials failed')
    },
    openStream: async function (target: any, protocols: any, options: any = {}) {
      const c = await cm.openConnection(target, options)
      return await c.newStream(protocols, options)
    }
  }
  return { cm, dials, streams, conns, release: () => { for (const r of held.splice(0)) r() } }
}

const settle = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }
const deps = (clock: { t: number }, over: Partial<PeerDialDeps> = {}): PeerDialDeps => ({
  addressesOf: async () => [PUBLIC, CIRCUIT], ownNetworks: () => OWN, privateTryMs: 50, directRetryMs: RETRY, now: () => clock.t, ...over
})
const probe = { runOnLimitedConnection: true }

test('a pair relayed DIRECT_RETRY_MS tries the direct address in the background: the stream is not held, one attempt in flight, and later streams take the direct connection', async () => {
  const clock = { t: 1000 }
  const f = live(a => a.startsWith(PUBLIC) ? 'hold' : 'yes')
  installPeerDialRules(f.cm, deps(clock))
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  assert.equal(f.dials, [], 'a pair relayed for 1 s: the dial that set it up just tried the direct addresses')
  clock.t = RETRY
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  assert.equal(f.streams, ['relayed', 'relayed'], 'the stream ran on the relayed connection at once')
  await settle()
  assert.equal(f.dials, [withId(PUBLIC)], 'the peer\'s direct address tried, in the background')
  clock.t += 2 * RETRY
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  assert.equal(f.dials.length, 1, 'never two attempts in flight for one peer')
  f.release()
  await settle()
  assert.is(peerDialStats.get(f.cm)?.directFound, 1)
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
  assert.equal(f.streams.slice(3), ['dialled1', 'dialled1'], 'later streams, also one that cannot run relayed, take the direct connection')
  assert.equal(f.dials.length, 1, 'no more dials')
})

test('a failed attempt is tried again only after DIRECT_RETRY_MS; private addresses elsewhere and failed ones are not tried, the peer\'s own first; nothing to try: no dial', async () => {
  const clock = { t: RETRY }
  const failed = new FailedAddrs()
  failed.add('/ip4/203.0.113.99/tcp/4001', PEER)
  const addrs = [PLANTED, { addr: PUBLIC6, certified: true }, LAN_ELSEWHERE, { addr: LAN_OURS, certified: true }, '/ip4/203.0.113.99/tcp/4001', CIRCUIT]
  const f = live(() => 'no')
  installPeerDialRules(f.cm, deps(clock, { addressesOf: async () => addrs, failed }))
  for (let i = 0; i < 3; i++) {
    await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
    await settle()
  }
  assert.equal(f.dials, [[PUBLIC6, LAN_OURS, PLANTED].map(withId).join(' ')], 'one attempt: the peer\'s own addresses first; not its LAN seen from elsewhere, not the failed one, no circuit')
  clock.t += RETRY - 1
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  assert.is(f.dials.length, 1, 'not again within DIRECT_RETRY_MS')
  clock.t += 1
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  assert.is(f.dials.length, 2, 'again after it')
  assert.not.ok(failed.has(PUBLIC6, PEER), 'a background failure is not remembered: the next attempt tries it again')

  const g = live(() => 'yes')
  installPeerDialRules(g.cm, deps(clock, { addressesOf: async () => [LAN_ELSEWHERE, CIRCUIT] }))
  await g.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  assert.equal(g.dials, [], 'a NATed peer with only its LAN address: nothing to try, no dial')
  assert.equal(g.streams, ['relayed'])

  const many = Array.from({ length: 30 }, (_, i) => `/ip4/198.51.100.${i + 1}/tcp/4001`)
  const h = live(() => 'no')
  installPeerDialRules(h.cm, deps(clock, { addressesOf: async () => [...many, { addr: PUBLIC, certified: true }, CIRCUIT] }))
  await h.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  const listed = h.dials[0].split(' ')
  assert.is(listed.length, MAX_DIRECT_RETRY_ADDRS, 'a long list (planted by a lookup) is cut')
  assert.is(listed[0], withId(PUBLIC), 'the peer\'s own address kept, first')
})

test('a dial by peer id while the background attempt is in flight names the circuit too (libp2p joins it to the attempt; by id alone it would share the direct outcome only)', async () => {
  const clock = { t: RETRY }
  const f = live(a => a.startsWith(PUBLIC) ? 'hold' : 'yes')
  installPeerDialRules(f.cm, deps(clock))
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  assert.equal(f.dials, [withId(PUBLIC)])
  const dial = f.cm.openConnection(peer, {})
  await settle()
  assert.equal(f.dials[1], [PUBLIC, CIRCUIT].map(withId).join(' '))
  f.release()
  await dial
  // with no attempt in flight, such a peer is dialled by libp2p as before (by id)
  const g = live(() => 'yes')
  installPeerDialRules(g.cm, deps(clock, { directRetryMs: 0 }))
  await g.cm.openStream(peer, '/dbc/vivaldi/1.0.0', probe)
  await settle()
  await g.cm.openConnection(peer, {})
  assert.equal(g.dials, [PEER], 'directRetryMs 0: no background attempt')
})

test('the peer\'s own addresses first: its private addresses elsewhere are tried own first, and the dial order of a list reads what the plan learned', async () => {
  const clock = { t: 0 }
  const planted = ['/ip4/10.9.0.1/tcp/4001', '/ip4/10.9.0.2/tcp/4001', '/ip4/10.9.0.3/tcp/4001']
  const OWN_ROUTED = '/ip4/10.0.2.7/tcp/4001'
  const certified = new PeerAddrs()
  const f = live(a => a.startsWith(OWN_ROUTED) || a.startsWith(PUBLIC) ? 'yes' : 'no')
  f.conns.length = 0
  installPeerDialRules(f.cm, deps(clock, { addressesOf: async () => [...planted, { addr: OWN_ROUTED, certified: true }, PLANTED, { addr: PUBLIC, certified: true }, CIRCUIT], certified }))
  await f.cm.openConnection(peer, {})
  assert.equal(f.dials, [withId(OWN_ROUTED)], 'the peer\'s own routed address first, not three planted ones (MAX_PRIVATE_TRIES)')
  // libp2p sorts a list with the host's order: every address of a list arrives uncertified
  const certifiedFirst = (a: { isCertified?: boolean }, b: { isCertified?: boolean }): number => (a.isCertified === b.isCertified ? 0 : a.isCertified === true ? -1 : 1)
  const list = [PLANTED, PUBLIC].map(a => ({ multiaddr: { toString: () => withId(a) }, isCertified: false }))
  assert.equal([...list].sort(unreachableLast(certifiedFirst, new FailedAddrs(), certified)).map(a => a.multiaddr.toString()), [withId(PUBLIC), withId(PLANTED)])
  assert.equal([...list].sort(unreachableLast(certifiedFirst, new FailedAddrs())).map(a => a.multiaddr.toString()), [withId(PLANTED), withId(PUBLIC)], 'without the memory: the order libp2p sees (the bug)')
})

test('DirectRetries: bounded peers and attempts in flight; 0 turns it off', () => {
  let now = 10 * RETRY
  const r = new DirectRetries(() => now, RETRY, 3, 2)
  assert.ok(r.due('a', 0))
  r.start('a'); r.start('b')
  assert.not.ok(r.due('c', 0), 'two in flight: no third')
  r.end('a'); r.end('b')
  r.start('c'); r.end('c'); r.start('d'); r.end('d')
  assert.is(r.size, 3, 'the oldest peer forgotten past the bound')
  assert.ok(r.due('a', 0), 'a forgotten peer may be tried again')
  assert.not.ok(r.due('d', 0))
  now += RETRY
  assert.ok(r.due('d', 0))
  assert.not.ok(r.due('d', now - 1), 'not while its oldest relayed connection is young')
  assert.not.ok(new DirectRetries(() => now, 0).due('a', 0))
  assert.ok(DIRECT_RETRY_DIAL_MS > 0)
})

test.run()
