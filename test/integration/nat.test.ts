// A peer that cannot be dialled (no listen address, as behind a NAT) is reachable through a
// circuit-relay-v2 relay: it reserves a slot on a reachable node, others dial it through that.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type Host } from '../../src/net/host.js'
import { registerEcho, EchoClient } from '../../src/net/echo.js'

const hosts: Host[] = []
async function host (init: Parameters<typeof createHost>[0] extends infer T ? Omit<T & object, 'privateKey'> : never): Promise<Host> {
  const h = await createHost({ privateKey: await generateKeyPair('Ed25519'), connectionMonitor: false, ...init })
  hosts.push(h)
  return h
}

test('a node with no reachable address is reached through a relay (ping and a dbc protocol)', async () => {
  const relay = await host({ listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: true })
  // behind "NAT": no TCP listener at all, only a reservation on the relay
  const hidden = await host({ listen: [], listenViaRelay: true, relayServer: false, bootstrap: [relay.getMultiaddrs()[0].toString()] })
  await registerEcho(hidden)
  const deadline = Date.now() + 20_000
  while (!hidden.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const relayed = hidden.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit'))
  assert.ok(relayed, 'the hidden node got a relay reservation')
  assert.not.ok(hidden.getMultiaddrs().some(a => !a.toString().includes('/p2p-circuit')), 'the hidden node has no direct address')

  const client = await host({ listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false })
  const conn = await client.dial(multiaddr(relayed.toString()), { signal: AbortSignal.timeout(15_000) })
  assert.is(conn.remotePeer.toString(), hidden.peerId.toString())
  assert.ok(conn.remoteAddr.toString().includes('/p2p-circuit'), 'the connection runs through the relay')
  const echo = await EchoClient.open(client, hidden.peerId, { signal: AbortSignal.timeout(15_000) })
  const back = await echo.roundTrip(new TextEncoder().encode('through the relay'), { signal: AbortSignal.timeout(15_000) })
  assert.is(new TextDecoder().decode(back), 'through the relay')
})

test.after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })
test.run()
