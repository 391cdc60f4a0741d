// Dials by peer id to a peer reached only through a relay (src/net/peer-dials.ts): session 16 found
// the Vivaldi prober, membership shuffles, capability fetches, envelope channels and kad-dht queries
// of every NATed daemon dialling NATed peers by id every ~6 s; each dial waited out the peer's
// private address (6 s) and opened one more circuit that nothing closed. A private address in a
// network we are not on may still be routed (a VPC's sibling subnet, a tailnet: review17 M1): it
// gets a short try, and is skipped only once it failed from here.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LimitedConnectionError } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { installPeerDialRules, unreachableLast, FailedAddrs, MAX_PRIVATE_TRIES, type DialingConnectionManager, type PeerDialDeps } from '../../../src/net/peer-dials.js'
import { privateElsewhere, type OwnNetwork } from '../../../src/net/nat-addr.js'

const PEER = '12D3KooWLKt6YyPkqmzLk1zpSbu2PH4n3DTS2oNU4YeC2zLbrSFW'
const RELAY = '12D3KooWGC6TvWhfagifcDCD5PhTNcbJwRSvLvZ64omvLPjq3VwS'
const peer = peerIdFromString(PEER)
const CIRCUIT = `/ip4/10.215.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit`
const PRIVATE = '/ip4/192.168.79.2/tcp/4001'
const PUBLIC = '/ip4/203.0.113.7/tcp/4001'
/** provider-a's interfaces in the netns NAT scenario: its own LAN only. */
const OWN: OwnNetwork[] = [{ address: '192.168.78.2', netmask: '255.255.255.0', family: 'IPv4' }, { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' }]

interface Fake { cm: DialingConnectionManager, dials: string[], streams: Array<{ on: string, protocols: unknown }> }

function conn (id: string, limited: boolean, openedAt: number, streams: Fake['streams']): any {
  return {
    id,
    status: 'open',
    limits: limited ? { bytes: 4_194_304n } : undefined,
    timeline: { open: openedAt },
    newStream: async (protocols: unknown, options: any) => {
      if (limited && options?.runOnLimitedConnection !== true) throw new LimitedConnectionError('Cannot open protocol stream on limited connection')
      streams.push({ on: id, protocols }); return { id: `${id}/s` }
    }
  }
}

/**
 * libp2p's connection manager as it behaves: a dial by peer id never takes a limited connection and
 * opens a new one; a dial to addresses connects on the first that `answers`, a NATed LAN address
 * never answers (the dial hangs until its signal aborts).
 */
function fakeManager (existing: (streams: Fake['streams']) => any[], answers: (addr: string) => boolean = a => !a.startsWith('/ip4/192.168.79.')): Fake {
  const dials: string[] = []
  const streams: Fake['streams'] = []
  const conns = existing(streams)
  const cm: DialingConnectionManager = {
    getConnections: () => conns,
    openConnection: async (target: any, options: any = {}) => {
      const unlimited = conns.find(c => c.limits === undefined)
      if (!Array.isArray(target) && options.force !== true && unlimited !== undefined) return unlimited
      const list: string[] = Array.isArray(target) ? target.map((m: Multiaddr) => m.toString()) : [target.toString()]
      dials.push(list.join(' '))
      const ok = Array.isArray(target) ? list.find(answers) : list[0]
      if (ok === undefined) {
        return await new Promise((_resolve, reject) => { options.signal?.addEventListener('abort', () => { reject(new Error('dial aborted')) }) })
      }
      const c = conn(`dialled${dials.length}`, ok.includes('/p2p-circuit') || !Array.isArray(target), 100 + dials.length, streams)
      conns.push(c)
      return c
    },
    openStream: async function (target: any, protocols: any, options: any = {}) {
      // as libp2p: openStream goes through openConnection (the wrapped one)
      const c = await cm.openConnection(target, options)
      return await c.newStream(protocols, options)
    }
  }
  return { cm, dials, streams }
}

// AbortSignal.timeout's timer does not keep the process alive: a ref'd one while dials hang
const keepAlive = setInterval(() => {}, 1000)
test.after(() => { clearInterval(keepAlive) })

const deps = (over: Partial<PeerDialDeps> = {}): PeerDialDeps => ({ addressesOf: async () => [PRIVATE, CIRCUIT], ownNetworks: () => OWN, privateTryMs: 50, ...over })
const withId = (a: string): string => `${a}/p2p/${PEER}`

test('a stream that may run on a relayed connection takes the open one, newest first: no dial', async () => {
  const f = fakeManager(s => [conn('old', true, 1, s), conn('new', true, 2, s)])
  installPeerDialRules(f.cm, deps())
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials, [], 'no dial by peer id')
  assert.equal(f.streams.map(s => s.on), ['new'])
})

test('a stream that may not run on a relayed connection: its LAN address tried briefly, no circuit, then at once', async () => {
  const f = fakeManager(s => [conn('relayed', true, 1, s)])
  installPeerDialRules(f.cm, deps())
  for (let i = 0; i < 2; i++) {
    try {
      await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
      assert.unreachable('a relayed-only peer cannot take a membership stream')
    } catch (err) {
      assert.is((err as Error).name, 'LimitedConnectionError')
      assert.match((err as Error).message, /no direct address/)
    }
  }
  assert.equal(f.dials, [withId(PRIVATE)], 'the private address once (it failed: skipped after), never a new circuit')
})

test('such a stream with a public address too: the LAN address briefly, then the public one', async () => {
  const f = fakeManager(s => [conn('relayed', true, 1, s)])
  installPeerDialRules(f.cm, deps({ addressesOf: async () => [PRIVATE, PUBLIC, CIRCUIT] }))
  await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
  assert.equal(f.dials, [withId(PRIVATE), withId(PUBLIC)])
})

test('a dial by peer id: a NATed peer\'s LAN address gets a short try, then the circuit; once failed, the circuit at once', async () => {
  const f = fakeManager(() => [])
  installPeerDialRules(f.cm, deps())
  await f.cm.openStream(peer, '/dbc/allreduce/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials, [withId(PRIVATE), `${withId(CIRCUIT)}`])
  await f.cm.openConnection(peer, {})
  assert.equal(f.dials.slice(2), [withId(CIRCUIT)], 'the failed address is skipped')
  // forced dials and dials to a multiaddr pass through unchanged
  await f.cm.openConnection(peer, { force: true })
  assert.is(f.dials[3], PEER)
})

test('a routed private network (a VPC\'s sibling subnet, a tailnet; review17 M1): the private address answers and is used, also with no connection yet', async () => {
  const vpc = '/ip4/10.0.2.7/tcp/4001'
  const own = (): OwnNetwork[] => [{ address: '10.0.1.5', netmask: '255.255.255.0', family: 'IPv4' }]
  const f = fakeManager(() => [], () => true)
  installPeerDialRules(f.cm, deps({ addressesOf: async () => [vpc, CIRCUIT], ownNetworks: own }))
  await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
  assert.equal(f.dials, [withId(vpc)], 'dialled on the routed address, no error')
  const g = fakeManager(() => [], () => true)
  installPeerDialRules(g.cm, deps({ addressesOf: async () => ['/ip4/100.90.1.2/tcp/4001', CIRCUIT], ownNetworks: () => [{ address: '100.101.102.103', netmask: '255.255.255.255', family: 'IPv4' }] }))
  await g.cm.openConnection(peer, {})
  assert.equal(g.dials, [withId('/ip4/100.90.1.2/tcp/4001')], 'a tailnet peer: direct, not through the relay')
})

test('an unlimited connection open: everything passes through to libp2p (which uses it)', async () => {
  const f = fakeManager(s => [conn('direct', false, 1, s)])
  installPeerDialRules(f.cm, deps())
  await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials, [])
  assert.equal(f.streams.map(s => s.on), ['direct', 'direct'])
})

test('a peer without a relayed address: libp2p dials it as before', async () => {
  const f = fakeManager(() => [], () => true)
  installPeerDialRules(f.cm, deps({ addressesOf: async () => [PRIVATE] }))
  await f.cm.openConnection(peer, {})
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials, [PEER], 'by peer id, libp2p\'s own dial (the stream then reuses its connection)')
})

test('privateElsewhere: private addresses outside our networks only (loopback, public, DNS and relayed ones are not)', () => {
  const yes = ['/ip4/192.168.79.2/tcp/1', '/ip4/10.1.2.3/tcp/1', '/ip4/172.20.0.1/tcp/1', '/ip4/100.70.0.1/tcp/1']
  const no = ['/ip4/192.168.78.9/tcp/1', '/ip4/127.0.0.1/tcp/1', '/ip4/8.8.8.8/tcp/1', '/dns4/x.example/tcp/1', CIRCUIT]
  for (const a of yes) assert.ok(privateElsewhere(a, OWN), a)
  for (const a of no) assert.not.ok(privateElsewhere(a, OWN), a)
  const own6: OwnNetwork[] = [{ address: 'fd00:1::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' }]
  assert.equal(['/ip6/fd00:1::9/tcp/1', '/ip6/fd00:2::9/tcp/1', '/ip6/fe80::1/tcp/1', '/ip6/2001:db8::1/tcp/1', '/ip6/::1/tcp/1'].map(a => privateElsewhere(a, own6)), [false, true, true, false, false])
})

test('the dial order puts addresses that failed from here last (addresses a peer routing lookup found are not planned by the rules); the memory is bounded and expires', () => {
  let now = 0
  const failed = new FailedAddrs(() => now, 1000, 3)
  failed.add(PRIVATE, PEER)
  const addrs = [PRIVATE, withId(CIRCUIT), '/ip4/10.0.2.7/tcp/4001', PUBLIC].map(a => ({ multiaddr: { toString: () => a === PRIVATE ? withId(a) : a } }))
  const keep = (): number => 0
  assert.equal([...addrs].sort(unreachableLast(keep, failed)).map(a => a.multiaddr.toString()), [withId(CIRCUIT), '/ip4/10.0.2.7/tcp/4001', PUBLIC, withId(PRIVATE)], 'only the failed one moves; a private address that never failed keeps its place')
  for (const a of ['/ip4/10.0.0.1/tcp/1', '/ip4/10.0.0.2/tcp/1', '/ip4/10.0.0.3/tcp/1']) failed.add(withId(a))
  assert.is(failed.size, 3)
  assert.not.ok(failed.has(PRIVATE, PEER), 'the oldest is forgotten past the bound')
  now = 2000
  assert.not.ok(failed.has(withId('/ip4/10.0.0.3/tcp/1')), 'and each after its time')
})

test('an address failed for the peer that announced it only (review17 L7): a hostile peer naming another\'s routed private address does not mark it for that peer', () => {
  const failed = new FailedAddrs()
  const HOSTILE = '12D3KooWGC6TvWhfagifcDCD5PhTNcbJwRSvLvZ64omvLPjq3VwS'
  failed.add(`${PRIVATE}/p2p/${HOSTILE}`)
  assert.ok(failed.has(PRIVATE, HOSTILE))
  assert.not.ok(failed.has(PRIVATE, PEER), 'the victim\'s address is not marked failed')
  const addrs = [withId(PRIVATE), withId(CIRCUIT)].map(a => ({ multiaddr: { toString: () => a } }))
  assert.equal([...addrs].sort(unreachableLast(() => 0, failed)).map(a => a.multiaddr.toString()), [withId(PRIVATE), withId(CIRCUIT)], 'nor sorted last in the victim\'s dials')
  failed.add(PRIVATE)
  assert.not.ok(failed.has(PRIVATE), 'an address naming no peer is not remembered')
})

test('each private address elsewhere gets its own try, in turn (libp2p dials a list one at a time; review17 L6); only those tried are remembered; at most MAX_PRIVATE_TRIES', async () => {
  const HOME_LAN = '/ip4/10.0.0.5/tcp/4001'
  const TAILNET = '/ip4/100.90.1.2/tcp/4001'
  const tried: string[] = []
  const sequential = (answers: (a: string) => boolean): DialingConnectionManager => ({
    getConnections: () => [],
    openConnection: async (target: any, options: any = {}) => {
      const list: string[] = Array.isArray(target) ? target.map((m: Multiaddr) => m.toString()) : [target.toString()]
      for (const a of list) {
        if (options.signal?.aborted === true) break
        tried.push(a)
        if (answers(a)) return conn('c', a.includes('/p2p-circuit'), 1, [])
        await new Promise(resolve => { options.signal?.addEventListener('abort', resolve, { once: true }) })
      }
      throw new Error('all dials failed')
    },
    openStream: async () => { throw new Error('unused') }
  })
  const failed = new FailedAddrs()
  const cm = sequential(a => a.startsWith(TAILNET))
  installPeerDialRules(cm, deps({ addressesOf: async () => [HOME_LAN, TAILNET, CIRCUIT], failed }))
  await cm.openStream(peer, '/dbc/membership/1.0.0', {})
  assert.equal(tried, [withId(HOME_LAN), withId(TAILNET)], 'the tailnet address is tried after the home LAN one, with its own budget')
  assert.ok(failed.has(HOME_LAN, PEER))
  assert.not.ok(failed.has(TAILNET, PEER), 'the one that answered is not remembered as failed')
  // a peer naming many private addresses holds a dial for at most MAX_PRIVATE_TRIES tries
  tried.length = 0
  const many = Array.from({ length: 10 }, (_, i) => `/ip4/10.9.${i}.1/tcp/4001`)
  const cm2 = sequential(a => a.includes('/p2p-circuit'))
  const failed2 = new FailedAddrs()
  installPeerDialRules(cm2, deps({ addressesOf: async () => [...many, CIRCUIT], failed: failed2 }))
  await cm2.openConnection(peer, {})
  assert.is(tried.filter(a => !a.includes('/p2p-circuit')).length, MAX_PRIVATE_TRIES, 'three of the ten private addresses tried, then the circuit')
  assert.ok(tried[tried.length - 1].includes('/p2p-circuit'))
  assert.is(failed2.size, MAX_PRIVATE_TRIES, 'only the addresses tried are remembered')
})

test.run()
