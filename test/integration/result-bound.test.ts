// The result bound a job announces (manifest task.maxResultBytes, LeaseRequest.max_result_bytes) on
// real hosts: the submitter reads a lease's result frames with that bound (a provider sending more
// loses the copy, not 16 MiB read), and copies on WebRTC leases are admitted so that their bounds fit
// the node's cap on results that cannot be paused: four 12 MiB results through a 26 MiB cap are all
// read, none reset (before: sent at once, those past the cap were reset by its shed()). 127.0.0.1, in-process.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createHost, webrtcDialerOf, type Host } from '../../src/net/host.js'
import { registerTaskProtocol } from '../../src/net/tasks.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { signLease } from '../../src/core/scheduler/index.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import { isWebRTC } from '../../src/net/nat-addr.js'
import { rig, submitterSecret, type Rig } from './lease-budget-rig.js'

const MiB = 1024 * 1024
const jobId = new Uint8Array(randomBytes(32))
const hosts: Host[] = []
test.after(async () => {
  await Promise.all(hosts.map(async h => { await h.stop() }))
  setTimeout(() => { process.exit() }, 3000).unref() // a timed-out WebRTC dial can keep the process alive (outbound-budget-webrtc.test.ts)
})

/** Opens a lease with `p` announcing `maxResultBytes` and sends one task: the result's length or why the copy was lost. */
async function leaseAndRun (r: Rig, p: Host, fp: FakeProvider, n: number, maxResultBytes?: number): Promise<string> {
  const me = r.submitter.peerId.toMultihash().bytes
  const offerId = fp.offer({ jobId, requester: me, slots: 1, executor: 'wasm' }, me).offerId
  const l = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId, jobId, holder: me, provider: p.peerId.toMultihash().bytes, expiresAt: Date.now() + 600_000, heartbeatMs: 100 })
  const id = p.peerId.toString()
  await r.tr.openLease(id, l, { signal: AbortSignal.timeout(15_000), ...(maxResultBytes !== undefined ? { maxResultBytes } : {}) })
  return await r.tr.runTask(id, { taskId: new Uint8Array([n]), jobId, leaseId: l.leaseId, index: n, attempt: 1, executor: 'wasm', input: new Uint8Array([16]) }, { signal: AbortSignal.timeout(60_000) })
    .then(res => res.ok === true ? `ok ${res.output?.length ?? 0}` : `failed ${String(res.code)}`, (err: Error) => `lost: ${err.message}`)
}

test('the frame limit follows the announcement: a 2 MiB result on a lease announcing 1 MiB is not read (the copy is lost, nobody charged); announcing 4 MiB it is', async () => {
  const seed = new Uint8Array(32).fill(21)
  const b = await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', seed), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })
  hosts.push(b)
  // a provider that does not keep the bound (a test double: the real one fails the copy RESULT_TOO_LARGE)
  const fp = new FakeProvider({ secretKey: seed, slots: 2, compute: () => new Uint8Array(2 * MiB).fill(5) })
  await registerTaskProtocol(b, fp, { heartbeatMs: 100 })
  const r = await rig({})
  try {
    await r.submitter.dial(b.getMultiaddrs()[0])
    const small = await leaseAndRun(r, b, fp, 1, MiB)
    const enough = await leaseAndRun(r, b, fp, 2, 4 * MiB)
    const old = await leaseAndRun(r, b, fp, 3)
    console.log(`  announced 1 MiB: ${small.slice(0, 120)}; 4 MiB: ${enough}; none: ${old}; charges ${JSON.stringify(r.charges)}`)
    assert.match(small, /^lost: .*exceeds the limit of 1114112 bytes/)
    assert.is(enough, `ok ${2 * MiB}`)
    assert.is(old, `ok ${2 * MiB}`, 'an old submitter (nothing announced) reads up to 16 MiB, as before')
    assert.equal(r.charges, [])
  } finally { await r.stop() }
})

/** A submitter `a` that reaches provider `b` over WebRTC only (through a relay, hole-punched on loopback). */
async function webrtcPair (seed: Uint8Array): Promise<{ a: Host, b: Host }> {
  const relay = await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], connectionMonitor: false, dhtServer: false })
  hosts.push(relay)
  const mk = async (secret: Uint8Array): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', secret), listen: [], listenViaRelay: true, relayServer: false, dhtServer: false, connectionMonitor: false, bootstrap: [relay.getMultiaddrs()[0].toString()], webrtc: { enabled: true, iceServers: () => [] } })
  const b = await mk(seed); const a = await mk(submitterSecret)
  hosts.push(a, b)
  const deadline = Date.now() + 30_000
  while (!b.getMultiaddrs().some(x => x.toString().includes('/p2p-circuit/webrtc')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 100))
  const w = b.getMultiaddrs().find(x => x.toString().includes('/p2p-circuit/webrtc'))
  assert.ok(w !== undefined, 'b announces a WebRTC address')
  const ma = w.toString().endsWith(b.peerId.toString()) ? w : multiaddr(`${w.toString()}/p2p/${b.peerId.toString()}`)
  for (let i = 1; ; i++) {
    try { await webrtcDialerOf(a)!(ma, AbortSignal.timeout(20_000)); break } catch (err) { if (i === 3) throw err; console.log(`  WebRTC dial ${i} failed: ${(err as Error).message}`) }
  }
  await Promise.all(a.getConnections(b.peerId).filter(c => !isWebRTC(c.remoteAddr)).map(async c => { await c.close() }))
  assert.ok(a.getConnections(b.peerId).length > 0 && a.getConnections(b.peerId).every(c => isWebRTC(c.remoteAddr)), 'a reaches b over WebRTC only')
  return { a, b }
}

test('WebRTC: four 12 MiB results (12 MiB announced) through a 26 MiB cap on results that cannot be paused are all read (two at a time), none reset', async () => {
  const seed = new Uint8Array(32).fill(23)
  const { a, b } = await webrtcPair(seed)
  const fp = new FakeProvider({ secretKey: seed, slots: 4, compute: () => new Uint8Array(12 * MiB).fill(3) })
  await registerTaskProtocol(b, fp, { heartbeatMs: 100 })
  const r = await rig({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 64 * MiB, outboundUnpausableBytes: 26 * MiB }, a)
  try {
    const got = await Promise.all([1, 2, 3, 4].map(async n => await leaseAndRun(r, b, fp, n, 12 * MiB)))
    const s = r.guard.outbound.stats
    console.log(`  results: ${JSON.stringify(got.map(g => g.slice(0, 120)))}; cut ${s.unpausableCut}, peak ${s.unpausablePeakBytes}; charges ${JSON.stringify(r.charges)}`)
    assert.equal(got, [`ok ${12 * MiB}`, `ok ${12 * MiB}`, `ok ${12 * MiB}`, `ok ${12 * MiB}`])
    assert.is(s.unpausableCut, 0)
    assert.ok(s.unpausablePeakBytes <= 26 * MiB, `peak ${s.unpausablePeakBytes}`)
    assert.equal(r.charges, [])
  } finally { await r.stop() }
})

test('WebRTC, no bound declared: copies are not held back for the 16 MiB default (three at once on one provider), the guard cap stays the backstop', async () => {
  const seed = new Uint8Array(32).fill(24)
  const { a, b } = await webrtcPair(seed)
  // each run waits (up to 5 s) until three run at once: how many the submitter let out together
  let running = 0; let most = 0
  let threeRun = (): void => {}
  const three = new Promise<void>(resolve => { threeRun = resolve })
  const fp = new FakeProvider({
    secretKey: seed,
    slots: 4,
    compute: async () => {
      most = Math.max(most, ++running)
      if (running >= 3) threeRun()
      await Promise.race([three, new Promise(resolve => setTimeout(resolve, 5000))])
      running--
      return new Uint8Array(1024).fill(4)
    }
  })
  await registerTaskProtocol(b, fp, { heartbeatMs: 100 })
  const r = await rig({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 64 * MiB, outboundUnpausableBytes: 26 * MiB }, a)
  try {
    const got = await Promise.all([1, 2, 3].map(async n => await leaseAndRun(r, b, fp, n)))
    console.log(`  results: ${JSON.stringify(got)}; at most ${most} at once`)
    assert.equal(got, ['ok 1024', 'ok 1024', 'ok 1024'])
    // with each copy reserving the 16 MiB default against the 26 MiB cap, one would run at a time
    assert.is(most, 3)
  } finally { await r.stop() }
})

test('WebRTC, 12 MiB declared: one provider\'s copies are admitted within its share (13 MiB: one at a time), not the whole cap (review s12 M2)', async () => {
  const seed = new Uint8Array(32).fill(25)
  const { a, b } = await webrtcPair(seed)
  // each run waits (up to 1.5 s) for a second one beside it: how many the submitter let out together
  let running = 0; let most = 0
  let twoRun = (): void => {}
  const two = new Promise<void>(resolve => { twoRun = resolve })
  const fp = new FakeProvider({
    secretKey: seed,
    slots: 4,
    compute: async () => {
      most = Math.max(most, ++running)
      if (running >= 2) twoRun()
      await Promise.race([two, new Promise(resolve => setTimeout(resolve, 1500))])
      running--
      return new Uint8Array(1024).fill(5)
    }
  })
  await registerTaskProtocol(b, fp, { heartbeatMs: 100 })
  const r = await rig({ outboundBufferBytes: MiB, outboundPeerBufferBytes: 13 * MiB, outboundUnpausableBytes: 26 * MiB }, a)
  try {
    const got = await Promise.all([1, 2].map(async n => await leaseAndRun(r, b, fp, n, 12 * MiB)))
    console.log(`  results: ${JSON.stringify(got)}; at most ${most} at once`)
    assert.equal(got, ['ok 1024', 'ok 1024'])
    // before: the cap (26 MiB) alone held them back, and two 12 MiB bounds fit it
    assert.is(most, 1)
  } finally { await r.stop() }
})

test.run()
