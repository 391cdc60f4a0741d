// Review s10 L4: an inbound WebRTC connection's address (`/webrtc/p2p/<id>`) names no IP and no
// relay, so its gate key was per identity and it replaced the key the identity was admitted under
// (its relayed signalling connection's, `circuit:<relay>`): a ban recorded after the peer moved to
// WebRTC put the debt on a key nobody else shares. Now such a connection keeps the identity's
// earlier key (and is admitted under it).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createInboundGuard } from '../../../src/net/guard/index.js'

const RELAY = '12D3KooWRhZ3Hb2hN3y8hD8wXWZ3nMxpv9E8vE2x3U4hH8HVVZtL'
const REMOTE = '12D3KooWGzh5vZ4yPj6F9j9YVbK7o4CNGvZK5rSxhS2Yn8t9T2gA'
const id = (s: string): PeerId => ({ toString: () => s }) as unknown as PeerId

test('a ban after the peer moved to WebRTC puts the debt on the relay\'s circuit bucket it came through', () => {
  const guard = createInboundGuard({ identityGate: { burst: 2, refillMs: 60_000, banCost: 8 }, now: () => 0 })
  const gater = guard.connectionGater()
  const viaRelay = { remoteAddr: multiaddr(`/ip4/10.1.2.3/tcp/4001/p2p/${RELAY}/p2p-circuit/p2p/${REMOTE}`) }
  const webrtc = { remoteAddr: multiaddr(`/webrtc/p2p/${REMOTE}`) }
  assert.is(gater.denyInboundEncryptedConnection(id('attacker'), viaRelay), false)
  assert.is(gater.denyInboundEncryptedConnection(id('attacker'), webrtc), false, 'its WebRTC connection is admitted')
  guard.noteBan('attacker')
  assert.ok(guard.gate!.tokens(0, `circuit:${RELAY}`) < 0, 'the circuit bucket pays')
  assert.is(gater.denyInboundEncryptedConnection(id('fresh-via-relay'), viaRelay), true, 'fresh identities through that relay wait')
})

test('a WebRTC connection with no earlier key keeps a key of its own (not one shared by every WebRTC peer)', () => {
  const guard = createInboundGuard({ identityGate: { burst: 1, refillMs: 60_000 }, now: () => 0 })
  const gater = guard.connectionGater()
  const denied = [RELAY, REMOTE].map(p => gater.denyInboundEncryptedConnection(id(p), { remoteAddr: multiaddr(`/webrtc/p2p/${p}`) }))
  assert.equal(denied, [false, false])
})

test.run()
