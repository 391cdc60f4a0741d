// The overlay bench's task rows: one task message's full round trip (TaskMessage out on the
// /dbc/task protocol, the provider runs it, TaskResult back) through the submitter's route book
// on each route it can take: a direct connection, a circuit-relay-v2 connection through a relay
// (the provider listens only via the relay, as behind NAT), and sealed envelopes through that
// relay (the route book's overlay route, forced as `routing: overlay` forces it). Real hosts
// (createHost: TCP, Noise, yamux, the inbound guard) in one process on 127.0.0.1; the provider
// is the FakeProvider (echoes the input).
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type Host } from '../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport } from '../src/net/tasks.js'
import { FakeProvider } from '../src/jobs/fake-provider.js'
import { signLease } from '../src/core/scheduler/ownership.js'
import { nodeSigner } from '../src/jobs/signing.js'
import type { dbc } from '../src/wire/gen/wire.js'
import { registerPlainEcho, PlainEchoClient } from './plain-echo.js'
import { EnvelopeService } from '../src/net/overlay/envelopes.js'
import { TaskEnvelopes } from '../src/net/overlay/task-envelopes.js'
import { RouteBook } from '../src/net/routes/index.js'

export interface TaskRoute {
  name: 'direct' | 'relayed' | 'overlay'
  /** One task round trip (resolves when the correct result is back; throws otherwise). */
  roundTrip: () => Promise<void>
  /** What the route book recorded for the provider (direct / relayed via ...). */
  recorded: () => string
}

export interface TaskRoutes {
  routes: TaskRoute[]
  /** A plain libp2p stream echo on the submitter's direct connection to the direct provider. */
  plainEcho: () => Promise<void>
  stop: () => Promise<void>
}

const INPUT_BYTES = 256

async function provider (hosts: Host[], opts: { relay?: Host }): Promise<{ host: Host, seed: Uint8Array, fake: FakeProvider }> {
  const seed = new Uint8Array(randomBytes(32))
  const privateKey = await generateKeyPairFromSeed('Ed25519', seed)
  const host = opts.relay === undefined
    ? await createHost({ privateKey, listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
    : await createHost({ privateKey, listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [opts.relay.getMultiaddrs()[0].toString()] })
  hosts.push(host)
  const fake = new FakeProvider({ secretKey: seed, compute: x => x })
  await registerTaskProtocol(host, fake, { heartbeatMs: 5000 })
  return { host, seed, fake }
}

async function leased (tr: Libp2pJobTransport, submitter: Host, secret: Uint8Array, jobId: Uint8Array, peer: string): Promise<dbc.task.v1.ILease> {
  const me = submitter.peerId.toMultihash().bytes
  const offers = await tr.requestOffers({ jobId, requester: me, slots: 1, executor: 'wasm' }, {})
  const offer = offers.find(o => o.view.provider === peer)?.offer
  if (offer === undefined) throw new Error(`bench: provider ${peer} made no offer`)
  const lease = signLease(nodeSigner(secret), { leaseId: new Uint8Array(randomBytes(16)), offerId: offer.offerId, jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 3_600_000, heartbeatMs: 5000 })
  await tr.openLease(peer, lease, { signal: AbortSignal.timeout(20_000) })
  return lease
}

export async function startTaskRoutes (): Promise<TaskRoutes> {
  const hosts: Host[] = []
  const relaySecret = new Uint8Array(randomBytes(32))
  const relay = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', relaySecret), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const direct = await provider(hosts, {})
  const natted = await provider(hosts, { relay })
  const deadline = Date.now() + 30_000
  while (!natted.host.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  const circuit = natted.host.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit'))
  if (circuit === undefined) throw new Error('bench: the NATed provider got no relay reservation')
  const secret = new Uint8Array(randomBytes(32))
  const submitter = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', secret), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(submitter)
  await submitter.peerStore.merge(direct.host.peerId, { multiaddrs: direct.host.getMultiaddrs() })
  await submitter.peerStore.merge(natted.host.peerId, { multiaddrs: [multiaddr(circuit.toString())] })
  await registerPlainEcho(direct.host)
  const jobId = new Uint8Array(randomBytes(32))
  const routes: TaskRoute[] = []
  const transports: Libp2pJobTransport[] = []
  // the overlay route: envelope services on submitter, relay and the NATed provider; the
  // submitter's copies go only through the relay (direct: false, k = 1: one relay here)
  const relayId = relay.peerId.toString()
  const envelopes = [
    new EnvelopeService(submitter, { secretKey: secret, relayCandidates: () => [relayId] }),
    new EnvelopeService(relay, { secretKey: relaySecret }),
    new EnvelopeService(natted.host, { secretKey: natted.seed, relayCandidates: () => [relayId] })
  ]
  for (const e of envelopes) await e.start()
  await submitter.dial(relay.getMultiaddrs()[0])
  const submitterTasks = new TaskEnvelopes(envelopes[0], { k: 1, direct: false })
  const providerTasks = new TaskEnvelopes(envelopes[2], { k: 1, direct: false, provider: () => natted.fake, heartbeatMs: 5000 })
  const overlayBook = new RouteBook(submitter, { upgradeWaitMs: 200, overlay: () => submitterTasks, forceOverlay: () => true })
  for (const [name, p] of [['direct', direct], ['relayed', natted], ['overlay', natted]] as const) {
    const peer = p.host.peerId.toString()
    const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [p.host.peerId], offerTimeoutMs: 20_000, upgradeWaitMs: 200, ...(name === 'overlay' ? { routes: overlayBook } : {}) })
    transports.push(tr)
    const lease = await leased(tr, submitter, secret, jobId, peer)
    let n = 0
    routes.push({
      name,
      roundTrip: async () => {
        const input = new Uint8Array(INPUT_BYTES).fill(n & 0xff)
        const index = n++
        const r = await tr.runTask(peer, { taskId: new Uint8Array(randomBytes(16)), jobId, leaseId: lease.leaseId, index, attempt: 1, executor: 'wasm', input }, { signal: AbortSignal.timeout(20_000) })
        if (!r.ok || r.output?.length !== INPUT_BYTES || r.output[0] !== input[0]) throw new Error(`bench: task ${index} on the ${name} route failed: ${r.error ?? 'wrong output'}`)
      },
      recorded: () => {
        const r = tr.routes.get(peer)
        const via = r?.relay ?? r?.relays?.join(', ')
        return r === undefined ? 'none' : r.kind + (via !== undefined ? ` via ${via}` : '')
      }
    })
  }
  const echo = await PlainEchoClient.open(submitter, direct.host.peerId)
  const payload = new Uint8Array(INPUT_BYTES).fill(7)
  return {
    routes,
    plainEcho: async () => { await echo.roundTrip(payload) },
    stop: async () => {
      await echo.close()
      for (const tr of transports) tr.close()
      submitterTasks.close(); providerTasks.close()
      for (const e of envelopes) await e.stop()
      await Promise.all(hosts.map(async h => { await h.stop() }))
    }
  }
}
