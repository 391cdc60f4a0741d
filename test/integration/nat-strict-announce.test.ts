// A strict NAT simulated on one host (`nat.strict`) announces only its relayed address (helper
// user16's walk): it announced its loopback listen address too, which other submitters dialled first;
// the TCP dial connected, the strict gater closed it, and the relayed address was never tried, so only
// the node's own relay could use it as a provider (`dbc ping` from another peer failed the same way).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, relayedOnly, type Host } from '../../src/net/host.js'
import { strictNatGater } from '../../src/net/routes/private-peers.js'

const hosts: Host[] = []

test('relayedOnly keeps circuit and WebRTC addresses', () => {
  assert.equal(relayedOnly(['/ip4/127.0.0.1/tcp/4001', '/ip4/1.2.3.4/tcp/1/p2p/R/p2p-circuit/p2p/N', '/ip4/1.2.3.4/udp/2/webrtc-direct', '/p2p/R/p2p-circuit/webrtc/p2p/N']), ['/ip4/1.2.3.4/tcp/1/p2p/R/p2p-circuit/p2p/N', '/p2p/R/p2p-circuit/webrtc/p2p/N'])
})

test('a strict NATed node is pinged by a stranger through its relay, its listen address unannounced', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false })
  hosts.push(relay)
  const relayAddr = relay.getMultiaddrs()[0].toString()
  const natted = await createHost({
    privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], listenViaRelay: true, announceRelayedOnly: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relayAddr],
    connectionGater: strictNatGater({}, p => p === relay.peerId.toString())
  })
  hosts.push(natted)
  const deadline = Date.now() + 30_000
  while (!natted.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  const announced = natted.getMultiaddrs().map(String)
  assert.ok(announced.length > 0 && announced.every(a => a.includes('/p2p-circuit')), announced.join(' '))
  const stranger = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(stranger)
  // what identify and the DHT hand a stranger: the addresses the node announces (and its listen one, as before, to show the difference)
  await stranger.peerStore.merge(natted.peerId, { multiaddrs: natted.getMultiaddrs() })
  const rtt = await stranger.services.ping.ping(natted.peerId, { signal: AbortSignal.timeout(20_000) })
  assert.ok(rtt >= 0)
})

test.after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })

test.run()
