// Dials by peer id to a peer reached only through a relay (src/net/peer-dials.ts): session 16 found
// the Vivaldi prober, membership shuffles, capability fetches, envelope channels and kad-dht queries
// of every NATed daemon dialling NATed peers by id every ~6 s; each dial waited out the peer's
// private address (6 s) and opened one more circuit that nothing closed.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LimitedConnectionError } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { installPeerDialRules, privateElsewhereLast, type DialingConnectionManager } from '../../../src/net/peer-dials.js'
import { reachableAddrs, type OwnNetwork } from '../../../src/net/nat-addr.js'

const PEER = '12D3KooWLKt6YyPkqmzLk1zpSbu2PH4n3DTS2oNU4YeC2zLbrSFW'
const RELAY = '12D3KooWGC6TvWhfagifcDCD5PhTNcbJwRSvLvZ64omvLPjq3VwS'
const peer = peerIdFromString(PEER)
const CIRCUIT = `/ip4/10.215.0.1/tcp/4001/p2p/${RELAY}/p2p-circuit`
const PRIVATE = '/ip4/192.168.79.2/tcp/4001'
/** provider-a's interfaces in the netns NAT scenario: its own LAN only. */
const OWN: OwnNetwork[] = [{ address: '192.168.78.2', netmask: '255.255.255.0', family: 'IPv4' }, { address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4' }]

interface Fake { cm: DialingConnectionManager, dials: Array<{ target: string, options: any }>, streams: Array<{ on: string, protocols: unknown }> }

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

/** libp2p's connection manager as it behaves: a dial by peer id never takes a limited connection and opens a new one. */
function fakeManager (existing: (streams: Fake['streams']) => any[]): Fake {
  const dials: Fake['dials'] = []
  const streams: Fake['streams'] = []
  const conns = existing(streams)
  const cm: DialingConnectionManager = {
    getConnections: () => conns,
    openConnection: async (target: any, options: any = {}) => {
      const unlimited = conns.find(c => c.limits === undefined)
      if (!Array.isArray(target) && options.force !== true && unlimited !== undefined) return unlimited
      dials.push({ target: Array.isArray(target) ? target.map((m: Multiaddr) => m.toString()).join(' ') : target.toString(), options })
      const c = conn(`dialled${dials.length}`, Array.isArray(target) ? target.every((m: Multiaddr) => m.toString().includes('/p2p-circuit')) : true, 100 + dials.length, streams)
      conns.push(c)
      return c
    },
    openStream: async function (this: DialingConnectionManager, target: any, protocols: any, options: any = {}) {
      // as libp2p: openStream goes through openConnection (the wrapped one)
      const c = await cm.openConnection(target, options)
      return await c.newStream(protocols, options)
    }
  }
  return { cm, dials, streams }
}

const deps = { addressesOf: async () => [PRIVATE, CIRCUIT], ownNetworks: () => OWN }

test('a stream that may run on a relayed connection takes the open one, newest first: no dial', async () => {
  const f = fakeManager(s => [conn('old', true, 1, s), conn('new', true, 2, s)])
  installPeerDialRules(f.cm, deps)
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials, [], 'no dial by peer id')
  assert.equal(f.streams.map(s => s.on), ['new'])
})

test('a stream that may not run on a relayed connection: no circuit dialled, the error at once', async () => {
  const f = fakeManager(s => [conn('relayed', true, 1, s)])
  installPeerDialRules(f.cm, deps)
  try {
    await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
    assert.unreachable('a relayed-only peer cannot take a membership stream')
  } catch (err) {
    assert.is((err as Error).name, 'LimitedConnectionError')
    assert.match((err as Error).message, /only through a relay/)
  }
  assert.equal(f.dials, [], 'neither the private address nor a new circuit was dialled')
})

test('such a stream with a direct address left: dialled there only', async () => {
  const f = fakeManager(s => [conn('relayed', true, 1, s)])
  installPeerDialRules(f.cm, { ...deps, addressesOf: async () => [PRIVATE, '/ip4/203.0.113.7/tcp/4001', CIRCUIT] })
  await f.cm.openStream(peer, '/dbc/membership/1.0.0', {}).catch(() => {})
  assert.equal(f.dials.map(d => d.target), [`/ip4/203.0.113.7/tcp/4001/p2p/${PEER}`])
})

test('a dial by peer id skips a NATed peer\'s private address outside our networks: the circuit at once', async () => {
  const f = fakeManager(() => [])
  installPeerDialRules(f.cm, deps)
  await f.cm.openStream(peer, '/dbc/allreduce/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials.map(d => d.target), [`${CIRCUIT}/p2p/${PEER}`])
  // forced dials and dials to a multiaddr pass through unchanged
  await f.cm.openConnection(peer, { force: true })
  assert.is(f.dials[1].target, PEER)
})

test('an unlimited connection open: everything passes through to libp2p (which uses it)', async () => {
  const f = fakeManager(s => [conn('direct', false, 1, s)])
  installPeerDialRules(f.cm, deps)
  await f.cm.openStream(peer, '/dbc/membership/1.0.0', {})
  await f.cm.openStream(peer, '/dbc/vivaldi/1.0.0', { runOnLimitedConnection: true })
  assert.equal(f.dials, [])
  assert.equal(f.streams.map(s => s.on), ['direct', 'direct'])
})

test('reachableAddrs: only a NATed peer (one with a circuit address) loses private addresses, and only those outside our networks', () => {
  assert.equal(reachableAddrs([PRIVATE, CIRCUIT], OWN), [CIRCUIT])
  assert.equal(reachableAddrs([PRIVATE], OWN), [PRIVATE], 'no circuit address: not known to be NATed')
  assert.equal(reachableAddrs(['/ip4/192.168.78.9/tcp/4001', CIRCUIT], OWN), ['/ip4/192.168.78.9/tcp/4001', CIRCUIT], 'same LAN')
  assert.equal(reachableAddrs(['/ip4/127.0.0.1/tcp/4001', CIRCUIT], []), ['/ip4/127.0.0.1/tcp/4001', CIRCUIT], 'loopback (one machine) stays')
  assert.equal(reachableAddrs(['/ip4/8.8.8.8/tcp/1', '/dns4/x.example/tcp/1', '/ip4/10.1.2.3/tcp/1', '/ip4/172.20.0.1/tcp/1', '/ip4/100.70.0.1/tcp/1', CIRCUIT], OWN), ['/ip4/8.8.8.8/tcp/1', '/dns4/x.example/tcp/1', CIRCUIT])
  const own6: OwnNetwork[] = [{ address: 'fd00:1::2', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6' }]
  assert.equal(reachableAddrs(['/ip6/fd00:1::9/tcp/1', '/ip6/fd00:2::9/tcp/1', '/ip6/fe80::1/tcp/1', '/ip6/2001:db8::1/tcp/1', '/ip6/::1/tcp/1', CIRCUIT], own6), ['/ip6/fd00:1::9/tcp/1', '/ip6/2001:db8::1/tcp/1', '/ip6/::1/tcp/1', CIRCUIT])
})

test('the dial order puts a private address of another network after the circuit (addresses a peer routing lookup found are not narrowed)', () => {
  const addrs = [PRIVATE, `${CIRCUIT}/p2p/${PEER}`, '/ip4/192.168.78.9/tcp/4001', '/ip4/203.0.113.7/tcp/4001'].map(a => ({ multiaddr: { toString: () => a } }))
  // libp2p's own order puts relayed addresses last: here by the input order otherwise
  const base = (a: { multiaddr: { toString: () => string } }, b: { multiaddr: { toString: () => string } }): number => Number(a.multiaddr.toString().includes('/p2p-circuit')) - Number(b.multiaddr.toString().includes('/p2p-circuit'))
  const sorted = [...addrs].sort(privateElsewhereLast(base, () => OWN)).map(a => a.multiaddr.toString())
  assert.equal(sorted, ['/ip4/192.168.78.9/tcp/4001', '/ip4/203.0.113.7/tcp/4001', `${CIRCUIT}/p2p/${PEER}`, PRIVATE])
})

test('the dial order reads our interfaces once per sort, not once per comparison (review17: os.networkInterfaces() per compare)', async () => {
  const addrs = Array.from({ length: 20 }, (_, i) => ({ multiaddr: { toString: () => i % 3 === 0 ? `/ip4/192.168.79.${i}/tcp/4001` : `/ip4/203.0.113.${i}/tcp/4001` } }))
  let reads = 0
  const cmp = privateElsewhereLast((a: { multiaddr: { toString: () => string } }, b: { multiaddr: { toString: () => string } }) => a.multiaddr.toString().localeCompare(b.multiaddr.toString()), () => { reads++; return OWN })
  const sorted = [...addrs].sort(cmp).map(a => a.multiaddr.toString())
  assert.is(reads, 1, 'one read of our interfaces for the whole sort')
  assert.ok(sorted.slice(-7).every(a => a.startsWith('/ip4/192.168.79.')), 'the private addresses of another network last')
  // a later dial (after this turn) sees interfaces that changed meanwhile
  await Promise.resolve()
  const again = [...addrs].map(a => ({ multiaddr: { toString: () => a.multiaddr.toString() } }))
  again.sort(cmp)
  assert.is(reads, 2, 'the next sort reads them anew')
})

test.run()
