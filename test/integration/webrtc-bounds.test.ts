// Hostile WebRTC signalling through a relay (issue 14): each inbound attempt makes a native
// RTCPeerConnection, and any peer can open attempts over a relayed connection. Three attacker
// identities each open 10 signalling streams to a NATed node and never send an offer: the node
// takes on at most one attempt per peer and two in all (src/core/routing/webrtc-admission.ts,
// the bound set small here), refuses the rest at once, and still answers a ping afterwards.
// In-process on 127.0.0.1 (a relay, the NATed node with WebRTC on, the attackers).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { createHost, webrtcAdmissionOf, WEBRTC_SIGNALING_PROTOCOL, type Host } from '../../src/net/host.js'

const hosts: Host[] = []
const target = (circuit: Multiaddr, node: Host): Multiaddr => circuit.toString().endsWith(node.peerId.toString()) ? circuit : multiaddr(`${circuit.toString()}/p2p/${node.peerId.toString()}`)
test.after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })

test('many signalling attempts from several peers stay within the per-peer and total bounds; the node stays up', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const node = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()], webrtc: { enabled: true, iceServers: () => [], admission: { perPeerInFlight: 1, totalInFlight: 2 } } })
  hosts.push(node)
  const deadline = Date.now() + 30_000
  while (!node.getMultiaddrs().some(a => a.toString().endsWith('/p2p-circuit/webrtc/p2p/' + node.peerId.toString()) || a.toString().includes('/p2p-circuit/webrtc')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  const circuit = node.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit') && !a.toString().includes('/webrtc'))
  assert.ok(circuit !== undefined, `the node got a reservation: ${node.getMultiaddrs().map(String).join(' ')}`)
  assert.ok(node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit/webrtc')), 'and announces a WebRTC address')
  const admission = webrtcAdmissionOf(node)!
  let peak = 0
  const watch = setInterval(() => { peak = Math.max(peak, admission.attemptsInFlight) }, 2)
  const attackers = await Promise.all([0, 1, 2].map(async () => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })))
  hosts.push(...attackers)
  const streams: Stream[] = []
  for (const a of attackers) {
    const conn = await a.dial(target(circuit, node))
    assert.ok(conn.limits !== undefined, 'the attacker reaches the node through the relay')
    const opened = await Promise.allSettled(Array.from({ length: 10 }, async () => await conn.newStream(WEBRTC_SIGNALING_PROTOCOL, { runOnLimitedConnection: true })))
    for (const o of opened) if (o.status === 'fulfilled') streams.push(o.value)
  }
  await new Promise(resolve => setTimeout(resolve, 1500))
  clearInterval(watch)
  const open = streams.filter(s => s.status === 'open').length
  console.log(`  ${streams.length} signalling streams opened by 3 attackers; ${open} still open after 1.5 s; attempts in flight at most ${peak}, now ${admission.attemptsInFlight}`)
  assert.ok(streams.length >= 3, 'the attackers opened their streams')
  assert.ok(peak >= 1, 'an attempt was taken on')
  assert.ok(peak <= 2, `at most 2 attempts in flight at once (saw ${peak})`)
  assert.ok(open <= 2, `the refused streams were closed at once (${open} open)`)
  // the node still works: an honest newcomer's ping through the relay answers (an attacker's own
  // relayed connection may be gone: aborted signalling can close it)
  const honest = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(honest)
  const rtt = await honest.services.ping.ping(target(circuit, node), { signal: AbortSignal.timeout(10_000) })
  assert.ok(rtt >= 0)
})

test.run()
