// The submitter's outbound lease streams count a provider's result frames against the node's
// buffer budgets (src/net/guard), as its inbound streams do: a provider answering with results
// larger than its share cannot make the submitter hold them. The frame is refused at its length
// prefix, the lease ends (its copies go elsewhere), the refusal is charged to that provider, and
// nothing stays reserved. A result within the budget on the same kind of lease goes through.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport } from '../../src/net/tasks.js'
import { createInboundGuard, installGuard } from '../../src/net/guard/index.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { signLease } from '../../src/core/scheduler/index.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import type { WireError } from '../../src/errors.js'
import type { dbc } from '../../src/wire/gen/wire.js'

const MiB = 1024 * 1024
const seed = new Uint8Array(32).fill(7)
const submitterSecret = new Uint8Array(randomBytes(32))
const jobId = new Uint8Array(randomBytes(32))

/** A provider whose result is its input's first byte times 1 MiB of bytes. */
async function startProvider (): Promise<Host> {
  const host = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', seed), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const fake = new FakeProvider({ secretKey: seed, compute: x => new Uint8Array(x[0] * MiB).fill(1) })
  await registerTaskProtocol(host, fake, { heartbeatMs: 100 })
  return host
}

async function lease (tr: Libp2pJobTransport, submitter: Host, provider: string): Promise<dbc.task.v1.ILease> {
  const me = submitter.peerId.toMultihash().bytes
  const offers = await tr.requestOffers({ jobId, requester: me, slots: 1, executor: 'wasm' }, {})
  assert.is(offers.length, 1)
  const offer = offers[0].offer
  const l = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: offer.offerId, jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 100 })
  await tr.openLease(provider, l, { signal: AbortSignal.timeout(15_000) })
  return l
}
const task = (l: dbc.task.v1.ILease, n: number, mib: number): dbc.task.v1.ITask => ({ taskId: new Uint8Array([n]), jobId, leaseId: l.leaseId, index: n, attempt: 1, executor: 'wasm', input: new Uint8Array([mib]) })

test('a provider\'s result frames on the submitter\'s lease stream count against the node\'s per-peer buffer budget', async () => {
  const submitter = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', submitterSecret), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const charges: string[] = []
  const guard = createInboundGuard({ peerBufferBytes: 4 * MiB, nodeBufferBytes: 64 * MiB, identityGate: false, charge: (_peer: PeerId, err: WireError) => { charges.push(err.code) } })
  installGuard(submitter, guard)
  const provider = await startProvider()
  const id = provider.peerId.toString()
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [provider.peerId], offerTimeoutMs: 15_000 })
  try {
    await submitter.dial(provider.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    // within the budget: a 2 MiB result arrives whole, and its bytes are given back once read
    const l1 = await lease(tr, submitter, id)
    const ok = await tr.runTask(id, task(l1, 1, 2), { signal: AbortSignal.timeout(15_000) })
    assert.ok(ok.ok, 'a 2 MiB result within a 4 MiB budget')
    assert.is(ok.output?.length, 2 * MiB)
    assert.is(guard.bufferedBytes(), 0)
    assert.equal(charges, [])

    // over the budget: a 6 MiB result is refused at its prefix; the lease ends, the copy is lost
    // (the runner places it again elsewhere), the provider is charged, nothing stays reserved
    let code = ''
    try {
      const r = await tr.runTask(id, task(l1, 2, 6), { signal: AbortSignal.timeout(15_000) })
      code = r.ok === true ? 'OK' : `${r.code ?? ''} ${r.error ?? ''}`
    } catch (e) { code = `${(e as { code?: string }).code ?? ''} ${(e as Error).message}` }
    assert.ok(code !== 'OK', 'a 6 MiB result over a 4 MiB per-peer budget was taken')
    assert.equal(charges, ['BUFFER_LIMIT'])
    assert.ok(guard.stats.framesRefused >= 1)
    assert.is(guard.bufferedBytes(), 0)
    assert.is(guard.bufferedBytes(id), 0)
    console.log(`over-budget result: the copy ended with ${code}`)

    // the node goes on: a new lease with a small result works
    const l2 = await lease(tr, submitter, id)
    assert.ok((await tr.runTask(id, task(l2, 3, 1), { signal: AbortSignal.timeout(15_000) })).ok)
    assert.is(guard.bufferedBytes(), 0)
  } finally {
    await submitter.stop()
    await provider.stop()
  }
})

test.run()
