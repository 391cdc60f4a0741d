// The fresh relayed connection of a used-up one is dialled on the relay transport through
// libp2p's transport manager (host.ts relayedDialerOf, a libp2p internal captured from the
// transport factory), not the dial queue. Without the dialer (a libp2p upgrade that no longer
// hands the transport manager to transports) the route book falls back to the queued dial by
// peer id, which behind a real NAT waits out the peer's private address (~6 s: training lost
// rounds at every swap, session 15) while every in-process test still passes. This test fails
// then: the dialer exists, gives a new limited connection through the relay on each call, and
// the connection manager tracks it (review16c on 129542d).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, relayedDialerOf, type Host } from '../../src/net/host.js'

const hosts: Host[] = []
test.after(async () => { for (const h of hosts) await h.stop() })

test('a host made by createHost dials a circuit address on the relay transport: a new tracked limited connection each time', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false, relayLimits: { dataBytes: 256 * 1024 } })
  hosts.push(relay)
  const natted = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()] })
  hosts.push(natted)
  const dialer = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(dialer)
  const deadline = Date.now() + 30_000
  let circuit: string | undefined
  while ((circuit = natted.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))) === undefined && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  assert.ok(circuit, 'the NATed host got a reservation on the relay')

  const dial = relayedDialerOf(dialer)
  assert.ok(dial !== undefined, 'createHost captured the transport manager (libp2p internal): no dialer means every relayed swap takes the slow queued dial')
  const first = await dial(multiaddr(circuit), AbortSignal.timeout(20_000))
  const second = await dial(multiaddr(circuit), AbortSignal.timeout(20_000))
  for (const c of [first, second]) {
    assert.ok(c.remotePeer.equals(natted.peerId), 'connected to the NATed peer')
    assert.ok(c.limits !== undefined, 'a limited (relayed) connection')
    assert.ok(c.remoteAddr.toString().includes('/p2p-circuit'), c.remoteAddr.toString())
  }
  assert.is.not(first.id, second.id, 'a new connection, not the existing one (the relay counts bytes per connection)')
  const tracked = dialer.getConnections(natted.peerId).map(c => c.id)
  assert.ok(tracked.includes(first.id) && tracked.includes(second.id), 'the connection manager tracks both (limits, pruning, getConnections)')
})

test.run()
