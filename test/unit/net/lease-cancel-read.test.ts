// A lease stream that holds all the copies a submitter reads ahead (slots + LEASE_READ_AHEAD) still
// reads the next frame: a cancel aborts its copy at once, not after another task of the lease ends
// (review s7 M1: with the stream's bound equal to the read-ahead it read nothing while full).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../../src/net/host.js'
import { registerTaskProtocol, Libp2pJobTransport } from '../../../src/net/tasks.js'
import { LEASE_STREAM_QUEUED } from '../../../src/net/task-lease-stream.js'
import { LEASE_READ_AHEAD } from '../../../src/jobs/runner-leases.js'
import { waitUntil } from '../../helpers/wait.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

/** A provider of `slots` slots whose tasks run until released or aborted. */
class HeldProvider {
  readonly id = 'p'; running = 0; aborted = 0
  readonly releases: Array<() => void> = []
  constructor (readonly slots: number) {}
  leaseSlotCount (): number { return this.slots }
  offer (): dbc.task.v1.IOffer { return { offerId: new Uint8Array([1]), slots: this.slots, expiresAt: Date.now() + 60_000 } }
  openLease (): void {}
  closeLease (): void {}
  leasedInputBytes (): number { return 0 }
  async runTask (task: dbc.task.v1.ITask, _s: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<dbc.task.v1.ITaskResult> {
    this.running++
    try {
      await Promise.race([
        new Promise<void>(resolve => { this.releases.push(resolve) }),
        new Promise<void>(resolve => { opts.signal?.addEventListener('abort', () => { this.aborted++; resolve() }, { once: true }) })
      ])
      return { taskId: task.taskId, jobId: task.jobId, attempt: task.attempt, ok: true, output: task.input }
    } finally { this.running-- }
  }
}

const newHost = async (): Promise<Host> => await createHost({ privateKey: await generateKeyPairFromSeed('Ed25519', new Uint8Array(randomBytes(32))), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })

test('the submitter reads ahead less than the provider\'s lease stream does', () => {
  assert.ok(LEASE_READ_AHEAD < LEASE_STREAM_QUEUED, `read-ahead ${LEASE_READ_AHEAD} vs stream ${LEASE_STREAM_QUEUED}`)
})

// 1 slot, and the largest offer (maxSlotsPerOffer 64: above LEASE_STREAM_MAX_INFLIGHT - LEASE_STREAM_QUEUED,
// where a bound of min(64, slots + queue) read no cancel: review s8)
for (const slots of [1, 64]) test(`a cancel is read while the lease stream holds slots + LEASE_READ_AHEAD copies (${slots} slots)`, async () => {
  const ph = await newHost(); const sh = await newHost(); const p = new HeldProvider(slots)
  const tr = new Libp2pJobTransport({ host: sh, candidates: () => [ph.peerId], offerTimeoutMs: 15_000 })
  try {
    await registerTaskProtocol(ph, p as never, { heartbeatMs: 200, onBadInput: () => {} })
    await sh.dial(ph.getMultiaddrs()[0])
    const id = ph.peerId.toString(); const leaseId = new Uint8Array(randomBytes(16))
    await tr.openLease(id, { leaseId, heartbeatMs: 200 }, { signal: AbortSignal.timeout(30_000) })
    const n = slots + LEASE_READ_AHEAD
    const cancel = new AbortController()
    const runs = Array.from({ length: n }, async (_, i) => await tr.runTask(id, { taskId: new Uint8Array([i, 9]), leaseId, attempt: 1, input: new Uint8Array([i]) }, { signal: i === 0 ? cancel.signal : AbortSignal.timeout(120_000) }))
    const settled = Promise.allSettled(runs)
    await waitUntil('every copy at the provider', () => p.running === n, 60_000)
    cancel.abort(new Error('the submitter cancels copy 0'))
    // no other task of the lease ends meanwhile: only reading the cancel can abort copy 0
    await waitUntil('the cancelled copy aborted at the provider', () => p.aborted === 1, 60_000)
    assert.is(p.running, n - 1)
    for (const r of p.releases) r()
    await settled
  } finally {
    tr.close(); await sh.stop(); await ph.stop()
  }
})

test.run()
