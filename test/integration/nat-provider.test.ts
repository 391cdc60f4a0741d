// A provider behind "NAT" (no listener at all, only a circuit-relay-v2 reservation) takes
// leases and tasks over the limited relayed connection; the submitter records the route
// (relayed via which relay) for explain; a message that cannot fit what the relay allows is
// refused with a typed code (ROUTE_LIMIT) on either side, or sent on a fresh relayed
// connection when only the current one is used up; never a silent hang.
// In-process on 127.0.0.1 (private addresses: DCUtR has nothing public to dial, so the route
// stays relayed); the real-NAT version with daemons in namespaces is test/netns/nat-provider.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, type Host } from '../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport } from '../../src/net/tasks.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { signLease } from '../../src/core/scheduler/ownership.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import { withRoutes } from '../../src/net/routes/explain.js'
import type { dbc } from '../../src/wire/gen/wire.js'

const hosts: Host[] = []
const RELAY_LIMIT = 96 * 1024
const jobId = new Uint8Array(randomBytes(32))
const submitterSecret = new Uint8Array(randomBytes(32))

async function setup (compute: (x: Uint8Array) => Uint8Array): Promise<{ relay: Host, submitter: Host, provider: Host, tr: Libp2pJobTransport }> {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, relayLimits: { dataBytes: RELAY_LIMIT } })
  hosts.push(relay)
  const seed = new Uint8Array(randomBytes(32))
  const provider = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', seed), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()] })
  hosts.push(provider)
  await registerTaskProtocol(provider, new FakeProvider({ secretKey: seed, compute }), { heartbeatMs: 1000 })
  const deadline = Date.now() + 30_000
  while (!provider.getMultiaddrs().some(a => a.toString().includes('/p2p-circuit')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  const circuit = provider.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit'))
  assert.ok(circuit, 'the provider got a reservation on the relay')
  const submitter = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', submitterSecret), listen: ['/ip4/127.0.0.1/tcp/0'], relayServer: false, dhtServer: false, connectionMonitor: false })
  hosts.push(submitter)
  await submitter.peerStore.merge(provider.peerId, { multiaddrs: [multiaddr(circuit.toString())] })
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [provider.peerId], offerTimeoutMs: 20_000, upgradeWaitMs: 500 })
  return { relay, submitter, provider, tr }
}

async function lease (tr: Libp2pJobTransport, submitter: Host, provider: string): Promise<dbc.task.v1.ILease> {
  const me = submitter.peerId.toMultihash().bytes
  const offers = await tr.requestOffers({ jobId, requester: me, slots: 2, executor: 'wasm' }, {})
  assert.is(offers.length, 1, 'the NATed provider answered the lease request through the relay')
  const offer = offers[0].offer
  const l = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: offer.offerId, jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 1000 })
  await tr.openLease(provider, l, { signal: AbortSignal.timeout(20_000) })
  return l
}
const task = (l: dbc.task.v1.ILease, n: number, input: Uint8Array): dbc.task.v1.ITask => ({ taskId: new Uint8Array([n]), jobId, leaseId: l.leaseId, index: n, attempt: 1, executor: 'wasm', input })

test('a provider reachable only through a relay takes a lease and tasks; the route says relayed via the relay', async () => {
  const { relay, submitter, provider, tr } = await setup(x => x.map(b => b ^ 0xff))
  const id = provider.peerId.toString()
  const l = await lease(tr, submitter, id)
  for (let n = 0; n < 5; n++) {
    const input = new Uint8Array(randomBytes(1000))
    const r = await tr.runTask(id, task(l, n, input), { signal: AbortSignal.timeout(20_000) })
    assert.ok(r.ok, r.error ?? '')
    assert.equal(Array.from(r.output ?? []), Array.from(input.map(b => b ^ 0xff)), 'the result came back whole')
  }
  const route = tr.routes.get(id)
  assert.ok(route)
  assert.is(route.kind, 'relayed')
  assert.is(route.relay, relay.peerId.toString())
  assert.match(route.facts, /no direct connection after 500 ms of DCUtR/)
  assert.ok((route.uses?.relayed ?? 0) >= 7, `offer + lease + 5 tasks counted on the relayed route: ${JSON.stringify(route.uses)}`)
  // explain: each copy carries the route of the provider that ran it
  const e = withRoutes({ jobId: 'j', task: { index: 0, copies: [{ provider: id, attempt: 1 }] } }, tr.routes)
  assert.equal((e.task?.copies[0] as any).route.kind, 'relayed')
  assert.equal((e.task?.copies[0] as any).route.relay, relay.peerId.toString())
  tr.close()
})

test('a task or result the relay cannot carry is refused with ROUTE_LIMIT; a used-up connection is replaced by a fresh one', async () => {
  // the provider answers three times the input: a 24 KiB input's result (72 KiB) fits no relayed connection here
  const { submitter, provider, tr } = await setup(x => { const o = new Uint8Array(x.length * 3); o.set(x); o.set(x, x.length); o.set(x, 2 * x.length); return o })
  const id = provider.peerId.toString()
  const l = await lease(tr, submitter, id)

  // an input larger than the relay's whole budget: refused before a byte is sent
  // a typed refusal comes back as a failed result carrying its code (TaskResult.code)
  const refusal = async (n: number, input: Uint8Array): Promise<{ code: string, message: string }> => {
    try {
      const r = await tr.runTask(id, task(l, n, input), { signal: AbortSignal.timeout(20_000) })
      return { code: r.ok === true ? 'OK' : r.code ?? '', message: r.error ?? '' }
    } catch (e) { return { code: (e as { code?: string }).code ?? String(e), message: (e as Error).message } }
  }
  let { code } = await refusal(1, new Uint8Array(RELAY_LIMIT + 1))
  assert.is(code, 'ROUTE_LIMIT', 'a task input over the relay limit is refused with a typed code')

  // a result that does not fit what the connection has left: the provider refuses it typed
  let message: string
  ({ code, message } = await refusal(2, new Uint8Array(randomBytes(24 * 1024))))
  assert.is(code, 'ROUTE_LIMIT', 'a result over what the relay still allows is refused with a typed code, not cut')
  assert.match(message, /a result of \d+ bytes does not fit/, 'the provider refused it (the submitter let the task through)')

  // small tasks, more bytes in all than one relayed connection carries: fresh connections take them
  const relayedBefore = submitter.getConnections(provider.peerId).length
  let sent = 0
  for (let n = 10; n < 22; n++) {
    const input = new Uint8Array(randomBytes(3000))
    const r = await tr.runTask(id, task(l, n, input), { signal: AbortSignal.timeout(20_000) })
    assert.ok(r.ok, r.error ?? '')
    assert.is(r.output?.length, 9000)
    sent += 12_000
  }
  assert.ok(sent > RELAY_LIMIT)
  const conns = submitter.getConnections(provider.peerId)
  assert.ok(conns.every(c => c.remoteAddr.toString().includes('/p2p-circuit')), 'every connection to the provider is relayed')
  console.log(`relayed connections to the provider: ${relayedBefore} before, ${conns.length} after ${sent} bytes of tasks and results`)
  assert.ok(conns.length > relayedBefore, `a fresh relayed connection was opened (${relayedBefore} -> ${conns.length})`)
  tr.close()
})

test.after(async () => { await Promise.all(hosts.map(async h => { await h.stop() })) })
test.run()
