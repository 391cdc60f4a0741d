// Addresses a coordinator names (RoundStart.addrs, Invite.donor_addrs) are dialled by the member:
// loopback and private ones are kept only as far as the member's own connection to that
// coordinator is on loopback or a private network (review s13 L2).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { addrsFromCoordinator, scopeOf } from '../../../src/training/coordinator-addrs.js'
import { TrainingTransport } from '../../../src/training/transport.js'
import type { TrainingHost } from '../../../src/training/transport-types.js'

const relayed = '/ip4/8.8.8.8/tcp/4001/p2p/12D3KooWLRPJAA5o6Z6CNUB5iVeHqTpwVLwvRnc2kE4obSwjpMKc/p2p-circuit'
const named = ['/ip4/127.0.0.1/tcp/4002', '/ip6/::1/tcp/4002', '/dns4/localhost/tcp/4002', '/ip4/192.168.1.20/tcp/4001', '/ip4/10.1.2.3/tcp/4001', '/ip6/fe80::1/tcp/4001', '/ip4/169.254.9.9/tcp/1', '/ip4/8.8.4.4/tcp/4001', '/dns4/node.example.com/tcp/4001', relayed, 'not an address']
const strings = (r: ReturnType<typeof addrsFromCoordinator>): string[] => r.kept.map(a => a.toString())

test('scopes: loopback (and in-process transports), private and link-local, public; a relayed address by its relay', () => {
  for (const a of ['/ip4/127.0.0.1/tcp/1', '/ip6/::1/tcp/1', '/dns4/localhost/tcp/1', '/memory/x']) assert.is(scopeOf(multiaddr(a)), 'loopback', a)
  for (const a of ['/ip4/10.0.0.1/tcp/1', '/ip4/192.168.0.1/tcp/1', '/ip4/172.16.0.1/tcp/1', '/ip4/100.64.0.1/tcp/1', '/ip6/fe80::1/tcp/1', '/ip4/169.254.1.1/tcp/1']) assert.is(scopeOf(multiaddr(a)), 'private', a)
  for (const a of ['/ip4/8.8.8.8/tcp/1', '/dns4/example.com/tcp/1', relayed]) assert.is(scopeOf(multiaddr(a)), 'public', a)
  assert.is(scopeOf(multiaddr('/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLRPJAA5o6Z6CNUB5iVeHqTpwVLwvRnc2kE4obSwjpMKc/p2p-circuit')), 'loopback')
})

test('addresses that reach this host by another name are loopback: 0.0.0.0 and :: (dialled, they connect to this host), IPv4-mapped IPv6 by its IPv4 address, *.localhost names (review s14 L1)', () => {
  for (const a of ['/ip4/0.0.0.0/tcp/22', '/ip4/0.1.2.3/tcp/22', '/ip6/::/tcp/22', '/ip6/::ffff:127.0.0.1/tcp/22', '/ip6/::ffff:127.1.2.3/tcp/22', '/ip6/::ffff:0.0.0.0/tcp/22', '/dns4/x.localhost/tcp/22', '/dns/a.b.LOCALHOST./tcp/22']) assert.is(scopeOf(multiaddr(a)), 'loopback', a)
  for (const a of ['/ip6/::ffff:10.0.0.1/tcp/1', '/ip6/::ffff:192.168.1.1/tcp/1']) assert.is(scopeOf(multiaddr(a)), 'private', a)
  for (const a of ['/ip6/::ffff:8.8.8.8/tcp/1', '/dns4/localhost.example.com/tcp/1']) assert.is(scopeOf(multiaddr(a)), 'public', a)
  // a coordinator on the LAN can not name this host's loopback by another name
  assert.equal(addrsFromCoordinator(['/ip4/0.0.0.0/tcp/22', '/ip6/::ffff:127.0.0.1/tcp/22', '/ip6/::/tcp/22'], ['private']).kept, [])
})

test('a coordinator reached over the internet (or only over the overlay) names public addresses only', () => {
  const publicOnly = ['/ip4/8.8.4.4/tcp/4001', '/dns4/node.example.com/tcp/4001', relayed]
  assert.equal(strings(addrsFromCoordinator(named, ['public'])), publicOnly)
  assert.equal(strings(addrsFromCoordinator(named, [])), publicOnly)
  assert.is(addrsFromCoordinator(named, []).dropped, named.length - publicOnly.length)
})

test('a coordinator on the LAN may name LAN addresses, not this host\'s loopback; one on loopback (tests, the demo) may name all', () => {
  assert.equal(strings(addrsFromCoordinator(named, ['private'])), ['/ip4/192.168.1.20/tcp/4001', '/ip4/10.1.2.3/tcp/4001', '/ip6/fe80::1/tcp/4001', '/ip4/169.254.9.9/tcp/1', '/ip4/8.8.4.4/tcp/4001', '/dns4/node.example.com/tcp/4001', relayed])
  assert.equal(strings(addrsFromCoordinator(named, ['public', 'loopback'])), named.slice(0, -1))
})

async function transportWith (coordinatorAddr: string | undefined): Promise<{ t: TrainingTransport, merged: string[][], coordinator: string }> {
  const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const coordinator = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const merged: string[][] = []
  const host = {
    peerId: self,
    getConnections: (p?: { toString: () => string }) => coordinatorAddr !== undefined && p?.toString() === coordinator.toString() ? [{ remoteAddr: multiaddr(coordinatorAddr), status: 'open' }] : [],
    peerStore: { merge: async (_p: unknown, d: { multiaddrs: Array<{ toString: () => string }> }) => { merged.push(d.multiaddrs.map(a => a.toString())) } }
  } as unknown as TrainingHost
  return { t: new TrainingTransport(host, {}), merged, coordinator: coordinator.toString() }
}

test('the member\'s transport keeps what its connection to the naming coordinator allows', async () => {
  const member = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const addrs = ['/ip4/127.0.0.1/tcp/4002', '/ip4/192.168.1.20/tcp/4001', '/ip4/8.8.4.4/tcp/4001']
  const remote = await transportWith('/ip4/8.8.8.8/tcp/4001')
  await remote.t.learnAddresses(member, addrs, remote.coordinator)
  assert.equal(remote.merged, [['/ip4/8.8.4.4/tcp/4001']])
  // nothing left: nothing merged
  await remote.t.learnAddresses(member, ['/ip4/127.0.0.1/tcp/4002'], remote.coordinator)
  assert.is(remote.merged.length, 1)
  const local = await transportWith('/ip4/127.0.0.1/tcp/4001')
  await local.t.learnAddresses(member, addrs, local.coordinator)
  assert.equal(local.merged, [addrs])
  // the addresses are judged by the connection to the peer that named them, not to another one
  await local.t.learnAddresses(member, addrs, member)
  assert.equal(local.merged[1], ['/ip4/8.8.4.4/tcp/4001'])
})

test.run()
