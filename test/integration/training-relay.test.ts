// Training members behind "NAT" (no listener, only a circuit-relay-v2 reservation): their
// all-reduce slices travel relayed connections (/dbc/allreduce runs on limited connections),
// each frame written only where the relay still allows it; a used-up relayed connection is
// replaced by a fresh one before the relay would cut it. Every round has every member: the
// relayed route costs time (the adaptive deadline measures it), never a dropped member.
// In process on 127.0.0.1 (private addresses: DCUtR has nothing public to dial, so the route
// stays relayed); the real-NAT version with daemons in namespaces is netns-nat-train.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type Host } from '../../src/net/host.js'
import { TrainingService } from '../../src/training/service.js'
import { TrainingTransport } from '../../src/training/transport.js'
import { runTrainingJob } from '../../src/training/session.js'
import type { TrainingSpecInput } from '../../src/training/spec.js'

// hidden 32: 25,450 parameters, ~100 KB a vector; two members move ~200 KB a round between them,
// so a 320 KiB relayed connection is used up every round or two
const RELAY_LIMIT = 320 * 1024
const ROUNDS = 8
const SPEC: TrainingSpecInput = { model: { kind: 'mlp', hidden: 32 }, dataset: { trainPerClass: 100, testPerClass: 50 }, groupSize: 2, rounds: ROUNDS, localSteps: 5, batchSize: 16, evalEvery: 4, seed: 3, deadline: { initialMs: 30_000 } }

const hosts: Host[] = []
const services: TrainingService[] = []

test.after(async () => {
  for (const s of services) await s.stop()
  for (const h of hosts) await h.stop()
})

async function natMember (relay: Host): Promise<{ host: Host, circuit: string }> {
  const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()] })
  hosts.push(host)
  const s = new TrainingService(host)
  await s.start()
  services.push(s)
  const deadline = Date.now() + 30_000
  let circuit: string | undefined
  while ((circuit = host.getMultiaddrs().map(String).find(a => a.includes('/p2p-circuit'))) === undefined && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  assert.ok(circuit, 'the NATed member got a reservation on the relay')
  return { host, circuit }
}

test('two members reachable only through a relay train every round together; used-up relayed connections are replaced', async () => {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false, relayLimits: { dataBytes: RELAY_LIMIT } })
  hosts.push(relay)
  const a = await natMember(relay)
  const b = await natMember(relay)
  const coord = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(coord)
  // the coordinator knows the members only by their circuit addresses, and tells each the other's
  for (const m of [a, b]) await coord.peerStore.merge(m.host.peerId, { multiaddrs: [multiaddr(m.circuit)] })
  const transport = new TrainingTransport(coord)
  await transport.start()
  const members = [a, b].map(m => m.host.peerId.toString())
  const t0 = Date.now()
  const r = await runTrainingJob({ transport, spec: SPEC, peers: members, signal: AbortSignal.timeout(240_000) })
  await transport.stop()

  assert.is(r.history.length, ROUNDS)
  for (const h of r.history) {
    assert.equal([...h.members].sort(), [...members].sort(), `round ${h.round} had both members`)
    assert.equal(h.dropped, [], `round ${h.round} dropped nobody`)
  }
  assert.is(r.metering.length, 2 * ROUNDS, 'each member contributed (and was metered) every round')
  assert.ok(r.accuracy > 0.5, `accuracy ${r.accuracy}`)

  const [sa, sb] = services
  const ab = sa.transport.routes()[members[1]]
  const ba = sb.transport.routes()[members[0]]
  for (const [name, route] of [['a -> b', ab], ['b -> a', ba]] as const) {
    assert.ok(route !== undefined, `${name} has a route`)
    assert.is(route.kind, 'relayed', route.facts)
    assert.is(route.relay, relay.peerId.toString())
    assert.ok((route.frames.relayed ?? 0) >= ROUNDS, `${name} sent its slices relayed: ${JSON.stringify(route.frames)}`)
  }
  // each round moves ~200 KB between them: no single 320 KiB relayed connection carried the job
  const fresh = ab.freshRelayed + ba.freshRelayed
  assert.ok(fresh >= 2, `fresh relayed connections opened: ${fresh}`)
  for (const [s, other] of [[sa, b.host], [sb, a.host]] as const) {
    const relayed = s.transport.host.getConnections(other.peerId).filter(c => c.limits !== undefined)
    const desc = relayed.map(c => `${String(c.limits?.bytes)} bytes left, streams ${c.streams.map(x => x.protocol ?? '?').join('|')}`)
    // one in use each way, and at most one spare each side opened ahead of need (the used-up ones
    // were closed at each swap); the job's end then closes these too (below), so which of them
    // still carries slices depends on how far each member's release got by now
    assert.ok(relayed.length <= 4, `used-up relayed connections are closed (${relayed.length} open of ${fresh + 1}: ${desc.join('; ')})`)
  }
  assert.is(sa.transport.stats.routeLimited + sb.transport.stats.routeLimited, 0)
  // the job over on both members (workers stopped): every relayed connection the all-reduce opened or
  // used between them is closed, spares included, rather than holding a relay circuit for 10 min
  const relayedLeft = (): string[] => a.host.getConnections(b.host.peerId).filter(c => c.limits !== undefined && c.status === 'open').map(c => `${c.id} (${c.streams.map(x => x.protocol ?? '?').join('|')})`)
  const until = Date.now() + 30_000
  while ((sa.workers.size + sb.workers.size > 0 || relayedLeft().length > 0) && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 100))
  assert.is(sa.workers.size + sb.workers.size, 0, 'both members\' workers ended with the job')
  assert.equal(relayedLeft(), [], 'no relayed connection left between the members after the job')
  console.log(`${ROUNDS} rounds in ${Date.now() - t0} ms through a ${RELAY_LIMIT / 1024} KiB relay: a->b ${JSON.stringify(ab.bytes)} (${ab.freshRelayed} fresh), b->a ${JSON.stringify(ba.bytes)} (${ba.freshRelayed} fresh); round ms ${r.history.map(h => Math.round(h.roundMs)).join(',')}; deadlines ${r.history.map(h => Math.round(h.deadlineMs)).join(',')}; accuracy ${(r.accuracy * 100).toFixed(1)}%`)
})

test.run()
