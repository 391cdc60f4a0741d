// Review s10 L2: an inbound WebRTC signalling attempt holds an in-flight slot until libp2p's 10 s
// upgrade timeout, so a few identities that open a signalling stream and send nothing, again each
// time theirs ends, kept the node's slots full and every honest peer's attempt was refused. Now a
// peer whose attempt ended without a connection waits (10 s, doubling) before its next: the
// attackers' second round is turned away and an honest attempt gets a slot.
// In-process on 127.0.0.1 (a relay, the NATed node with WebRTC on and 2 inbound slots, the peers).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Stream } from '@libp2p/interface'
import { createHost, webrtcAdmissionOf, webrtcBackoffOf, WEBRTC_SIGNALING_PROTOCOL, type Host } from '../../src/net/host.js'

const hosts: Host[] = []
const target = (circuit: Multiaddr, node: Host): Multiaddr => circuit.toString().endsWith(node.peerId.toString()) ? circuit : multiaddr(`${circuit.toString()}/p2p/${node.peerId.toString()}`)
test.after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })
const until = async (what: () => boolean, ms: number): Promise<boolean> => {
  const end = Date.now() + ms
  while (!what() && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 50))
  return what()
}

test('identities whose silent attempts timed out cannot take the slots again at once: an honest attempt gets one', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const node = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()], webrtc: { enabled: true, iceServers: () => [], admission: { perPeerInFlight: 1, totalInFlight: 2 } } })
  hosts.push(node)
  assert.ok(await until(() => node.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit/webrtc')), 30_000), 'the node announces a WebRTC address')
  const circuit = node.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit') && !a.toString().includes('/webrtc'))!
  const admission = webrtcAdmissionOf(node)!
  const peers = await Promise.all([0, 1, 2].map(async () => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })))
  hosts.push(...peers)
  const [a1, a2, honest] = peers
  // a signalling stream that sends nothing: held until the node's 10 s inbound upgrade timeout
  const silent = async (h: Host): Promise<Stream | undefined> => {
    const conn = await h.dial(target(circuit, node), { signal: AbortSignal.timeout(10_000) })
    return await conn.newStream(WEBRTC_SIGNALING_PROTOCOL, { runOnLimitedConnection: true }).catch(() => undefined)
  }
  await Promise.all([silent(a1), silent(a2)])
  assert.ok(await until(() => admission.attemptsInFlight === 2, 5000), 'both attackers hold a slot')
  assert.ok(await until(() => admission.attemptsInFlight === 0, 20_000), 'their attempts end at the upgrade timeout')
  // at once again, as an attacker refreshing its slots would
  await Promise.all([silent(a1), silent(a2)])
  await new Promise(resolve => setTimeout(resolve, 500))
  const held = admission.attemptsInFlight
  const refusedBefore = admission.refusals['total-in-flight']
  await silent(honest)
  const honestIn = await until(() => admission.attemptsInFlight > held, 3000)
  console.log(`  attackers' second round: ${held} in flight, ${webrtcBackoffOf(node)?.refused ?? 0} turned away by the backoff; honest attempt admitted: ${honestIn} (total-in-flight refusals ${admission.refusals['total-in-flight'] - refusedBefore})`)
  assert.is(held, 0, 'the attackers are turned away while they wait')
  assert.ok(honestIn, 'the honest attempt got a slot')
})

test.run()
