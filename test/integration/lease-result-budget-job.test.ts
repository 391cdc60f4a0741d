// A job whose results are large, over libp2p (one real provider host), with the outbound read
// budget smaller than the results in flight (three providers): lease streams wait for the budget instead of being
// refused, the lease stays alive meanwhile (the job's default 2 s lease timeout, while the
// provider's heartbeats are behind the pause or the frame), every task is done once, nobody is
// charged, and the budget held no more than one frame past itself.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost } from '../../src/net/host.js'
import { Libp2pJobTransport, registerTaskProtocol } from '../../src/net/tasks.js'
import { createInboundGuard, installGuard } from '../../src/net/guard/index.js'
import { FakeProvider, JobRunner } from '../../src/jobs/index.js'
import { validateManifest } from '../../src/core/scheduler/index.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../src/core/identity/index.js'

const MiB = 1024 * 1024
const RESULT = 6 * MiB
const sk = (n: number): Uint8Array => new Uint8Array(32).fill(n)

test('a job of 6 MiB results through a 8 MiB outbound budget: all done once, no lease lost, nobody charged', async () => {
  const owner = { secretKey: sk(61), peerId: peerIdBytesFromEd25519Key(ed25519PublicKey(sk(61))) }
  const submitter = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', owner.secretKey), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  const charges: string[] = []
  const budget = 8 * MiB
  const guard = createInboundGuard({ identityGate: false, charge: (_p, e) => { charges.push(e.code) }, outboundBufferBytes: budget, outboundPeerBufferBytes: budget })
  installGuard(submitter, guard)
  // three providers, each task's result 6 MiB: results of three leases arrive at once, past the budget
  const providers = await Promise.all([62, 63, 64].map(async n => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', sk(n)), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })))
  const providerCharges: string[] = []
  for (const [i, h] of providers.entries()) {
    const fp = new FakeProvider({ secretKey: sk(62 + i), compute: (x) => new Uint8Array(RESULT).fill(x[0] ?? 0), slots: 2 })
    await registerTaskProtocol(h, fp, { heartbeatMs: 200, onBadInput: (_p, e) => { providerCharges.push(e.code) } })
  }
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => providers.map(h => h.peerId), offerTimeoutMs: 15_000 })
  const m = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 11 } }, task: { timeoutMs: 60_000, expectedMs: 50, maxAttempts: 3 }, verification: { mode: 'off' } })
  if (!m.ok) throw new Error(JSON.stringify(m.issues))
  try {
    for (const h of providers) await submitter.dial(h.getMultiaddrs()[0])
    const s = await new JobRunner({ jobId: 'b16'.padStart(64, '0'), manifest: m.manifest, holder: owner, transport: tr, code: new Uint8Array([0, 97, 115, 109]) }).run()
    const st = guard.outbound.stats
    console.log(`done ${s.done}, failed ${s.failed}, copies ${s.copies}, retries ${s.retries}; outbound paused ${st.paused}, exempted ${st.exempted}, peak ${(st.peakBytes / MiB).toFixed(1)} MiB`)
    assert.is(s.done, 12)
    assert.is(s.failed, 0)
    assert.is(s.copies, 12, 'every task ran once: no copy lost to a lease timeout or a refusal')
    assert.equal(charges, [])
    assert.equal(providerCharges, [])
    assert.ok(st.paused > 0, 'the budget was contended')
    // the budget, the one frame let past it, and at most what each of the 3 streams received in the chunk that took it over (< its 2 MiB yamux window)
    assert.ok(st.peakBytes <= budget + RESULT + 3 * 2 * MiB, `peak ${st.peakBytes}`)
    assert.is(guard.outbound.bufferedBytes(), 0)
  } finally {
    tr.close()
    await submitter.stop()
    for (const h of providers) await h.stop()
  }
})

test.run()
