// The per-address gate's keys: IPv6 by /64, relayed connections by their relay (apart from the
// relay's own IP), and a ban through a relay never puts the relay's IP in debt.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createInboundGuard } from '../../../src/net/guard/index.js'
import { addressKey, ipv6Key } from '../../../src/net/guard/address-key.js'

const RELAY = '12D3KooWRhZ3Hb2hN3y8hD8wXWZ3nMxpv9E8vE2x3U4hH8HVVZtL'
const REMOTE = '12D3KooWGzh5vZ4yPj6F9j9YVbK7o4CNGvZK5rSxhS2Yn8t9T2gA'

test('an IPv4 address is its own key; an IPv6 address is keyed by its /64', () => {
  assert.is(addressKey(multiaddr('/ip4/10.1.2.3/tcp/4001')), '10.1.2.3')
  const a = addressKey(multiaddr('/ip6/2001:db8:1:2::1/tcp/4001'))
  const b = addressKey(multiaddr('/ip6/2001:db8:1:2:ffff:eeee:dddd:cccc/tcp/4001'))
  const other = addressKey(multiaddr('/ip6/2001:db8:1:3::1/tcp/4001'))
  assert.is(a, '2001:db8:1:2::/64')
  assert.is(b, a, 'the same /64 shares one bucket')
  assert.is.not(other, a, 'another /64 has its own')
  assert.is(ipv6Key('::ffff:10.1.2.3'), '10.1.2.3', 'an IPv4-mapped address is the IPv4 address')
  assert.is(ipv6Key('::1'), '0:0:0:0::/64')
  assert.is(ipv6Key('2001:DB8:0:0:1::'), '2001:db8:0:0::/64')
})

test('a relayed connection is keyed by its relay peer id, apart from the relay\'s own IP', () => {
  const relayed = multiaddr(`/ip4/10.1.2.3/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${REMOTE}`)
  assert.is(addressKey(relayed), `circuit:${RELAY}`)
  // a relay connection whose address does not name the relay: keyed by the relay's host, still apart from it
  assert.is(addressKey(multiaddr(`/ip4/10.1.2.3/tcp/4001/p2p-circuit/p2p/${REMOTE}`)), 'circuit:10.1.2.3')
})

const id = (s: string): PeerId => ({ toString: () => s }) as unknown as PeerId

test('an identity banned through a relay puts the relay\'s circuit bucket in debt, never the relay\'s IP', () => {
  const guard = createInboundGuard({ identityGate: { burst: 2, refillMs: 60_000, banCost: 8 }, now: () => 0 })
  const gater = guard.connectionGater()
  const viaRelay = { remoteAddr: multiaddr(`/ip4/10.1.2.3/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${REMOTE}`) }
  const direct = { remoteAddr: multiaddr('/ip4/10.1.2.3/tcp/4001') }
  assert.is(gater.denyInboundEncryptedConnection(id('attacker'), viaRelay), false)
  guard.noteBan('attacker')
  assert.is(guard.gate!.tokens(0, `circuit:${RELAY}`) < 0, true, 'the circuit bucket pays')
  assert.is(guard.gate!.tokens(0, '10.1.2.3'), 2, 'the relay\'s IP does not')
  assert.is(gater.denyInboundConnection(direct), false, 'the relay itself still connects')
  assert.is(gater.denyInboundEncryptedConnection(id('relay-itself'), direct), false)
  assert.is(gater.denyInboundEncryptedConnection(id('fresh-via-relay'), viaRelay), true, 'fresh identities through that relay wait')
})

test('a fresh IPv6 address in the same /64 does not get a fresh bucket', () => {
  const guard = createInboundGuard({ identityGate: { burst: 2, refillMs: 60_000 }, now: () => 0 })
  const gater = guard.connectionGater()
  const from = (i: number): { remoteAddr: ReturnType<typeof multiaddr> } => ({ remoteAddr: multiaddr(`/ip6/2001:db8:1:2::${i.toString(16)}/tcp/4001`) })
  const denied = [0, 1, 2, 3].map(i => gater.denyInboundEncryptedConnection(id(`k${i}`), from(i + 1)))
  assert.equal(denied, [false, false, true, true])
  assert.is(gater.denyInboundEncryptedConnection(id('k9'), { remoteAddr: multiaddr('/ip6/2001:db8:1:3::1/tcp/4001') }), false, 'another /64')
})

test('a banned peer is refused at a relay\'s stop request', () => {
  const guard = createInboundGuard({ isBanned: p => p === 'banned', now: () => 0 })
  const gater = guard.connectionGater()
  assert.is(gater.denyInboundRelayedConnection(id(RELAY), id('banned')), true)
  assert.is(gater.denyInboundRelayedConnection(id(RELAY), id('fine')), false)
})

test.run()
