// /dbc/task/1.0.0, provider side, against peers that misbehave without breaking the protocol: a
// submitter that never reads its task's result does not hold the handler (and the result) for
// ever: the write times out and the stream is reset; a lease holder's task frame above what its
// lease announced is refused with a typed reason and not charged, while the same frame from a
// peer without a lease is charged; every lease opened is closed again, however its stream ends.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { createHost, type Host } from '../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport, TASK_PROTOCOL, taskFrameCap } from '../../src/net/tasks.js'
import { FramedStream } from '../../src/net/framed.js'
import { FakeProvider } from '../../src/jobs/fake-provider.js'
import { signLease } from '../../src/core/scheduler/index.js'
import { nodeSigner } from '../../src/jobs/signing.js'
import { toHex } from '../../src/core/identity/index.js'
import { encodeFrame, encodeFramePrefix } from '../../src/wire/frame.js'
import { dbc } from '../../src/wire/gen/wire.js'

const TaskMessage = dbc.task.v1.TaskMessage
const ANNOUNCED = 1000

/** A FakeProvider with the frame-limit hook (its leases announce ANNOUNCED input bytes) that counts its leases. */
class LimitedProvider extends FakeProvider {
  readonly open = new Map<string, string>()
  opened = 0
  closed = 0
  override openLease (lease: dbc.task.v1.ILease, sender: Uint8Array): void {
    super.openLease(lease, sender)
    this.opened++
    this.open.set(toHex(lease.leaseId ?? new Uint8Array()), toHex(sender))
  }

  override closeLease (leaseId: Uint8Array): void {
    super.closeLease(leaseId)
    if (this.open.delete(toHex(leaseId))) this.closed++
  }

  leasedInputBytes (sender: Uint8Array): number | undefined {
    return [...this.open.values()].includes(toHex(sender)) ? ANNOUNCED : undefined
  }
}

async function until (what: string, cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

const seed = new Uint8Array(32).fill(7)
const submitterSecret = new Uint8Array(randomBytes(32))
const jobId = new Uint8Array(randomBytes(32))
const newHost = async (secret: Uint8Array): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', secret), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

test('a lease holder that never reads is cut off; an oversized task under a lease is refused, not charged', async () => {
  const providerHost = await newHost(seed)
  const charged: string[] = []
  // entry 'big' answers 2 MiB (above yamux's 256 KiB stream window): a result that needs a reader
  const provider = new LimitedProvider({ secretKey: seed, compute: (x, entry) => entry === 'big' ? new Uint8Array(2 * 1024 * 1024) : x })
  await registerTaskProtocol(providerHost, provider, { heartbeatMs: 100, writeTimeoutMs: 1000, onBadInput: (_peer, err) => { charged.push(err.code) } })
  const submitter = await newHost(submitterSecret)
  const stranger = await newHost(new Uint8Array(randomBytes(32)))
  const tr = new Libp2pJobTransport({ host: submitter, candidates: () => [providerHost.peerId], offerTimeoutMs: 15_000 })
  const pid = providerHost.peerId.toString()
  try {
    await submitter.dial(providerHost.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    await stranger.dial(providerHost.getMultiaddrs()[0], { signal: AbortSignal.timeout(15_000) })
    const me = submitter.peerId.toMultihash().bytes
    const offers = await tr.requestOffers({ jobId, requester: me, slots: 1, executor: 'wasm', maxInputBytes: ANNOUNCED }, {})
    assert.is(offers.length, 1)
    const offer = offers[0].offer
    const lease = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: offer.offerId, jobId, holder: me, provider: offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 100 })
    await tr.openLease(pid, lease, { signal: AbortSignal.timeout(15_000) })
    const task = (input: Uint8Array, entry = 'main'): dbc.task.v1.ITask => ({ taskId: new Uint8Array([1]), jobId, leaseId: lease.leaseId, index: 0, attempt: 1, executor: 'wasm', entry, input })
    assert.ok((await tr.runTask(pid, task(new Uint8Array(500)), { signal: AbortSignal.timeout(15_000) })).ok)

    // 1. a task whose 2 MiB result the submitter never reads: it stops the stream's window
    //    (pause) so the provider's write can not drain; the provider gives up and resets the stream
    const raw: Stream = await submitter.dialProtocol(providerHost.peerId, TASK_PROTOCOL, { signal: AbortSignal.timeout(15_000) })
    raw.pause()
    let ended = false
    raw.addEventListener('close', () => { ended = true })
    raw.send(encodeFrame(TaskMessage.encode({ task: task(new Uint8Array(ANNOUNCED), 'big') }).finish()))
    await until('the provider reset the task stream whose result was never read', () => ended)
    assert.equal(charged, [])

    // 2. a task frame above the lease's cap: refused with TASK_TOO_LARGE at its prefix, not charged
    const over = taskFrameCap(ANNOUNCED) + 1
    const big = await submitter.dialProtocol(providerHost.peerId, TASK_PROTOCOL, { signal: AbortSignal.timeout(15_000) })
    const bigFramed = new FramedStream(big, { maxFrameBytes: 64 * 1024 })
    big.send(encodeFramePrefix(over))
    const refusal = dbc.common.v1.ProtocolError.decode(await bigFramed.readRequired({ signal: AbortSignal.timeout(15_000) }))
    assert.is(refusal.code, 'TASK_TOO_LARGE')
    assert.equal(charged, [], 'the lease holder was charged for an oversized task')

    // the same prefix from a peer without a lease is charged
    const s = await stranger.dialProtocol(providerHost.peerId, TASK_PROTOCOL, { signal: AbortSignal.timeout(15_000) })
    const sFramed = new FramedStream(s, { maxFrameBytes: 64 * 1024 })
    s.send(encodeFramePrefix(over))
    try { await sFramed.readRequired({ signal: AbortSignal.timeout(15_000) }) } catch {}
    await until('the stranger is charged', () => charged.length > 0)
    assert.equal(charged, ['FRAME_TOO_LARGE'])

    // 3. a lease whose holder resets its stream at once: the provider closes the lease all the same
    for (let i = 0; i < 5; i++) {
      const more = await tr.requestOffers({ jobId, requester: me, slots: 1, executor: 'wasm', maxInputBytes: ANNOUNCED }, {})
      const l = signLease(nodeSigner(submitterSecret), { leaseId: new Uint8Array(randomBytes(16)), offerId: more[0].offer.offerId, jobId, holder: me, provider: more[0].offer.provider, expiresAt: Date.now() + 600_000, heartbeatMs: 100 })
      const ls = await submitter.dialProtocol(providerHost.peerId, TASK_PROTOCOL, { signal: AbortSignal.timeout(15_000) })
      ls.send(encodeFrame(TaskMessage.encode({ lease: l }).finish()))
      ls.abort(new Error('gone'))
    }
    tr.close()
    await until('every lease opened is closed', () => provider.opened === provider.closed && provider.opened >= 1)
    assert.is(provider.open.size, 0)
  } finally {
    tr.close()
    await providerHost.stop()
    await submitter.stop()
    await stranger.stop()
  }
})

test.run()
