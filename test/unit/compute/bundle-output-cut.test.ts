// review18 F4: a TaskBundle's results are held until the bundle ends (written together, one
// receipt signature), and a bundle is ONE unit of the lease stream's pipeline bound: so a holder
// that reads nothing made a provider hold up to 16 results per unit instead of one (slots + 7 units
// per lease, each task's output up to maxOutputBytes, 16 MiB: 16 times what single tasks could).
// A bundle now starts no further task once its tasks' outputs reach `cutBytes` (TASK_BUNDLE_CUT_BYTES,
// or the lease's result bound if larger, else the provider's output limit): it holds about what one
// task may return, and the rest are LEASE_SLOTS_BUSY (not run: sent again), as at the time cut.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ComputePeer } from '../../../src/compute/index.js'
import { ComputePeerProvider } from '../../../src/jobs/compute-provider.js'
import { signLease } from '../../../src/core/scheduler/ownership.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { encodeTileInput } from '../../../src/compute/mandelbrot.js'
import { TASK_BUNDLE_CUT_BYTES } from '../../../src/core/scheduler/ports.js'
import type { dbc } from '../../../src/wire/gen/wire.js'

const mandelbrot = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/mandelbrot.wasm', import.meta.url)))
const hash = new Uint8Array(createHash('sha256').update(mandelbrot).digest())
// a 64 x 64 tile at 1 iteration: a tiny task whose output is 16 KiB
const input = encodeTileInput(-2, -1.25, 2.5 / 64, 64, 64, 1)
const codes = (outs: ReadonlyArray<{ refused: Error } | object>): string[] => outs.map(o => 'refused' in o ? String((o.refused as { code?: string }).code) : 'ran')

test('ComputePeer.runBundle: no further task starts once the outputs reach cutBytes', async () => {
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  try {
    const t = (): dbc.task.v1.ITask => ({ taskId: randomBytes(8), jobId: new Uint8Array([1]), executor: 'wasm', code: mandelbrot, entry: 'run', input })
    const one = await peer.runBundle([t()])
    const size = 'refused' in one[0] ? 0 : (one[0].result.output?.length ?? 0)
    assert.ok(size > 1000, `a tile's output: ${size} bytes`)
    // outputs under the cut: every task runs
    assert.equal(codes(await peer.runBundle([t(), t(), t()], { cutBytes: 10 * size })), ['ran', 'ran', 'ran'])
    // the second task's output reaches it: the third is not started
    assert.equal(codes(await peer.runBundle([t(), t(), t(), t()], { cutBytes: 2 * size })), ['ran', 'ran', 'LEASE_SLOTS_BUSY', 'LEASE_SLOTS_BUSY'])
  } finally { await peer.stop() }
})

/** A provider (no payment) with an open lease for tiny tasks whose results the job bounds at `maxResultBytes`. */
async function leased (peer: ComputePeer, maxResultBytes: number): Promise<{ provider: ComputePeerProvider, holder: Uint8Array, tasks: (n: number, tile: Uint8Array) => dbc.task.v1.ITask[] }> {
  const provider = new ComputePeerProvider(peer)
  const holderKey = randomBytes(32)
  const holder = peerIdBytesFromEd25519Key(ed25519PublicKey(holderKey))
  const jobId = randomBytes(16)
  const offer = provider.offer({ jobId, requester: holder, slots: 1, executor: 'wasm', expectedTaskMs: 2, maxInputBytes: 64, maxResultBytes, requestExpiresAt: Date.now() + 10_000, bundles: true })
  assert.is(offer.bundleMax, 16)
  const leaseId = randomBytes(16)
  await provider.openLease(signLease(holderKey, { leaseId, offerId: offer.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000 }), holder)
  const tasks = (n: number, tile: Uint8Array): dbc.task.v1.ITask[] => Array.from({ length: n }, (_, i) => ({ taskId: randomBytes(8), jobId, leaseId, index: i, attempt: 1, executor: 'wasm', ...(i === 0 ? { code: mandelbrot } : {}), codeHash: hash, entry: 'run', input: tile, deadlineMs: 20_000 }))
  return { provider, holder, tasks }
}

test('ComputePeerProvider.runBundle cuts a bundle at TASK_BUNDLE_CUT_BYTES of outputs (or the lease\'s result bound, if larger); small outputs under a small bound are not cut', async () => {
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  try {
    // 16 KiB outputs under a bound of 20000 bytes: all eight run (the cut is the bundle's, not one task's bound)
    const small = await leased(peer, 20_000)
    assert.equal((await small.provider.runBundle(small.tasks(8, input), small.holder)).map(r => r.ok === true ? 'ok' : r.code), Array(8).fill('ok'))
    // 256 KiB outputs (a 256 x 256 tile): the fifth would start with 1 MiB held
    const big = await leased(peer, 300_000)
    const tile = encodeTileInput(-2, -1.25, 2.5 / 256, 256, 256, 1)
    assert.is(TASK_BUNDLE_CUT_BYTES, 4 * 256 * 1024)
    assert.equal((await big.provider.runBundle(big.tasks(8, tile), big.holder)).map(r => r.ok === true ? 'ok' : r.code), [...Array(4).fill('ok'), ...Array(4).fill('LEASE_SLOTS_BUSY')])
  } finally { await peer.stop() }
})

test.run()
