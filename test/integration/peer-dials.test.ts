// Dials by peer id to a peer reached only through a relay, on real hosts made by createHost
// (src/net/peer-dials.ts). libp2p never answers a dial by peer id with a limited connection: each
// dialProtocol, even one that may run on a relayed connection, opened one more circuit, and one for
// a protocol that may not run there opened a circuit it could not use. Session 16: the Vivaldi
// prober, membership, capability fetches and kad-dht of each NATed daemon did that every ~6 s.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createServer } from 'node:net'
import { createHost, type Host } from '../../src/net/host.js'

const hosts: Host[] = []
test.after(async () => { for (const h of hosts) await h.stop() })

test('a NATed peer reached through a relay: streams reuse the relayed connection, and a protocol that cannot run there opens no circuit', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const natted = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()] })
  hosts.push(natted)
  const dialer = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(dialer)
  let served = 0
  await natted.handle('/test/on-relay/1', (stream) => { served++; void stream.close() }, { runOnLimitedConnection: true })
  await natted.handle('/test/direct-only/1', (stream) => { void stream.close() })
  const deadline = Date.now() + 30_000
  let circuit: string | undefined
  while ((circuit = natted.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))) === undefined && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  assert.ok(circuit, 'the NATed host got a reservation on the relay')
  await dialer.peerStore.merge(natted.peerId, { multiaddrs: [multiaddr(circuit)] })

  // every connection to the NATed peer set up (libp2p closes a duplicate of an existing relayed
  // connection only after the circuit was set up through the relay)
  let opened = 0
  dialer.addEventListener('connection:open', (e) => { if (e.detail.remotePeer.equals(natted.peerId)) opened++ })
  await dialer.dialProtocol(natted.peerId, '/test/on-relay/1', { runOnLimitedConnection: true, signal: AbortSignal.timeout(20_000) })
  const first = dialer.getConnections(natted.peerId)
  assert.is(first.length, 1, 'one connection')
  assert.ok(first[0].limits !== undefined && first[0].remoteAddr.toString().includes('/p2p-circuit'), `relayed: ${first[0].remoteAddr.toString()}`)
  for (let i = 0; i < 3; i++) await dialer.dialProtocol(natted.peerId, '/test/on-relay/1', { runOnLimitedConnection: true, signal: AbortSignal.timeout(20_000) })
  try {
    await dialer.dialProtocol(natted.peerId, '/test/direct-only/1', { signal: AbortSignal.timeout(20_000) })
    assert.unreachable('a protocol that does not run on a relayed connection has no route to a relayed-only peer')
  } catch (err) {
    assert.is((err as Error).name, 'LimitedConnectionError', (err as Error).message)
  }
  assert.equal(dialer.getConnections(natted.peerId).map(c => c.id), [first[0].id], 'every stream on the one relayed connection: no circuit per dial')
  assert.is(opened, 1, 'one circuit set up through the relay, not one per stream')
  const deadline2 = Date.now() + 5000
  while (served < 4 && Date.now() < deadline2) await new Promise(resolve => setTimeout(resolve, 20))
  assert.is(served, 4, 'the peer served every stream')
})

/** A TCP port free on loopback now. */
async function freePort (): Promise<number> {
  const srv = createServer()
  await new Promise<void>(resolve => srv.listen(0, '127.0.0.1', resolve))
  const port = (srv.address() as { port: number }).port
  await new Promise(resolve => srv.close(resolve))
  return port
}

test('review17 L5: a pair that stayed relayed tries the direct address again (one that became reachable later) in the background, and later streams take it', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const direct = `/ip4/127.0.0.1/tcp/${await freePort()}`
  // listens directly but announces its circuit only (as behind a NAT before its port mapping)
  const natted = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [direct], listenViaRelay: true, announceRelayedOnly: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()] })
  hosts.push(natted)
  const dialer = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false, directRetryMs: 500 })
  hosts.push(dialer)
  const servedOn: boolean[] = [] // per stream the NATed peer served: on a relayed connection
  await natted.handle('/test/on-relay/1', (stream, connection) => { servedOn.push(connection.limits !== undefined); void stream.close() }, { runOnLimitedConnection: true })
  const deadline = Date.now() + 30_000
  let circuit: string | undefined
  while ((circuit = natted.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))) === undefined && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  assert.ok(circuit, 'the NATed host got a reservation on the relay')
  await dialer.peerStore.merge(natted.peerId, { multiaddrs: [multiaddr(circuit)] })
  const onRelay = async (): Promise<string> => (await dialer.dialProtocol(natted.peerId, '/test/on-relay/1', { runOnLimitedConnection: true, signal: AbortSignal.timeout(20_000) })).id
  await onRelay()
  const limited = (): boolean[] => dialer.getConnections(natted.peerId).map(c => c.limits !== undefined)
  assert.equal(limited(), [true], 'relayed only')
  // the port mapping appears: the peer's direct address becomes known (a lookup), after identify (which replaces the addresses)
  const identified = Date.now() + 10_000
  while (!(await dialer.peerStore.get(natted.peerId)).protocols.includes('/test/on-relay/1') && Date.now() < identified) await new Promise(resolve => setTimeout(resolve, 50))
  await dialer.peerStore.merge(natted.peerId, { multiaddrs: [multiaddr(direct)] })
  await new Promise(resolve => setTimeout(resolve, 600))
  await onRelay()
  const deadline2 = Date.now() + 15_000
  while (!limited().includes(false) && Date.now() < deadline2) await new Promise(resolve => setTimeout(resolve, 50))
  assert.ok(limited().includes(false), 'a direct connection opened (before: none, the pair stayed relayed until the relay ended the circuit)')
  await onRelay()
  const deadline3 = Date.now() + 5000
  while (servedOn.length < 3 && Date.now() < deadline3) await new Promise(resolve => setTimeout(resolve, 20))
  assert.equal(servedOn, [true, true, false], 'the streams before on the relayed connection, the later one on the direct one')
})

test.run()
