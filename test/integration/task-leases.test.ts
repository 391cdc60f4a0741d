// /dbc/task/1.0.0 between two libp2p hosts in this process: a provider opens a lease only on an
// offer it issued to the holder, charges a second lease on one offer and refuses (without a
// charge) a lease on an offer it does not hold; when the provider
// restarts (it forgets its offers and leases), the submitter stops using the old lease at once
// (no task under it reaches the new process, so nothing is charged), asks again and goes on.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport } from '../../src/net/tasks.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { signLease } from '../../src/core/scheduler/index.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import type { dbc } from '../../src/wire/gen/wire.js'

const seed = new Uint8Array(32).fill(42)
let skewMs = 0

async function startProvider (): Promise<{ host: Host, charged: string[] }> {
  const host = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', seed), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const charged: string[] = []
  const fake = new FakeProvider({ secretKey: seed, compute: x => x, now: () => Date.now() + skewMs })
  await registerTaskProtocol(host, fake, { heartbeatMs: 100, onBadInput: (_peer, err) => { charged.push(err.code) } })
  return { host, charged }
}

const submitterSecret = new Uint8Array(randomBytes(32))
const jobId = new Uint8Array(randomBytes(32))

async function leaseOnNewOffer (tr: Libp2pJobTransport, submitter: Host, provider: string): Promise<{ lease: dbc.task.v1.ILease, offer: dbc.task.v1.IOffer }> {
  const me = submitter.peerId.toMultihash().bytes
  const offers = await tr.requestOffers({ jobId, requester: me, slots: 1, executor: 'wasm' }, {})
  assert.is(offers.length, 1)
  const offer = offers[0].offer
  const lease = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: offer.offerId, jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 100 })
  await tr.openLease(provider, lease, { signal: AbortSignal.timeout(15_000) })
  return { lease, offer }
}
const task = (lease: dbc.task.v1.ILease, n: number): dbc.task.v1.ITask => ({ taskId: new Uint8Array([n]), jobId, leaseId: lease.leaseId, index: n, attempt: 1, executor: 'wasm', input: new Uint8Array([n]) })

test('leases need the provider\'s own offer; after a provider restart the submitter re-leases without being charged', async () => {
  // the submitter signs leases with this key, so its host must have it too
  const submitter = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', submitterSecret), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  let p = await startProvider()
  const provider = p.host.peerId.toString()
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [p.host.peerId], offerTimeoutMs: 15_000 })
  try {
    await submitter.dial(p.host.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    const { lease, offer } = await leaseOnNewOffer(tr, submitter, provider)
    assert.ok((await tr.runTask(provider, task(lease, 1), {})).ok)
    assert.equal(p.charged, [])

    // an offer backs one lease: a second lease on it is refused, and charged
    const me = submitter.peerId.toMultihash().bytes
    const again = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: offer.offerId, jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 600_000 })
    try { await tr.openLease(provider, again, {}); assert.unreachable('second lease on one offer opened') } catch (e) { assert.match((e as Error).message, /LEASE_OFFER_USED/) }
    assert.equal(p.charged, ['LEASE_OFFER_USED'])

    // a lease its holder signed for an offer the provider does not hold (restarted, or evicted it
    // under a flood of lease requests): refused with the reason, not charged
    const unknown = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: new Uint8Array(randomBytes(16)), jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 600_000 })
    try { await tr.openLease(provider, unknown, {}); assert.unreachable('lease on an unknown offer opened') } catch (e) { assert.match((e as Error).message, /LEASE_UNKNOWN_OFFER/) }
    assert.equal(p.charged, ['LEASE_OFFER_USED'])

    // an offer that expired before the lease came: refused with the reason, not charged
    const late = await tr.requestOffers({ jobId, requester: me, slots: 1, executor: 'wasm' }, {})
    skewMs = 61_000
    const lateLease = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: late[0].offer.offerId, jobId, holder: me, provider: late[0].offer.provider, expiresAt: Date.now() + 600_000 })
    try { await tr.openLease(provider, lateLease, {}); assert.unreachable('lease on an expired offer opened') } catch (e) { assert.match((e as Error).message, /LEASE_OFFER_EXPIRED/) }
    skewMs = 0
    assert.equal(p.charged, ['LEASE_OFFER_USED'])

    // restart: same identity, a fresh process state (no offers, no leases)
    await p.host.stop()
    p = await startProvider()
    // the old lease's stream ended: the submitter fails tasks under it locally (LEASE_LOST), never sends them
    let code = ''
    for (let i = 0; i < 200 && code !== 'LEASE_LOST'; i++) {
      try { await tr.runTask(provider, task(lease, 2), { signal: AbortSignal.timeout(5000) }) } catch (e) { code = (e as { code?: string }).code ?? '' }
      if (code !== 'LEASE_LOST') await new Promise(resolve => setTimeout(resolve, 50))
    }
    assert.is(code, 'LEASE_LOST')
    await submitter.dial(p.host.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    const fresh = await leaseOnNewOffer(tr, submitter, provider)
    assert.ok((await tr.runTask(provider, task(fresh.lease, 3), {})).ok)
    assert.equal(p.charged, [], 'the restarted provider charged the honest submitter')
  } finally {
    tr.close()
    await p.host.stop()
    await submitter.stop()
  }
})

test.run()
