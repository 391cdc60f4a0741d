// A job announces its largest result (manifest task.maxResultBytes -> LeaseRequest.max_result_bytes):
// a provider does not send a larger one (the copy fails RESULT_TOO_LARGE: the task's failure, nobody
// charged, never billed); the submitter reads a lease's result frames with that bound.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ComputePeer } from '../../../src/compute/index.js'
import { ComputePeerProvider } from '../../../src/jobs/compute-provider.js'
import { signLease } from '../../../src/core/scheduler/ownership.js'
import { validateManifest, MAX_RESULT_BYTES } from '../../../src/core/scheduler/manifest.js'
import { RESULT_TOO_LARGE } from '../../../src/core/scheduler/ports.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { TASK_MAX_FRAME, RESULT_FRAME_OVERHEAD, resultFrameCap, announcedResultBytes } from '../../../src/net/task-protocol.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import type { WireError } from '../../../src/errors.js'

const square = new Uint8Array(readFileSync(new URL('../../../src/compute/modules/square.wasm', import.meta.url)))

test('a provider does not send a result past the lease\'s announced bound: RESULT_TOO_LARGE naming the manifest field, nobody charged, no receipt', async () => {
  const holderKey = randomBytes(32)
  const holder = peerIdBytesFromEd25519Key(ed25519PublicKey(holderKey))
  const peer = new ComputePeer({ secretKey: randomBytes(32), cpuSlots: 1, memoryMib: 1024, benchmark: false })
  await peer.start()
  const provider = new ComputePeerProvider(peer)
  const charged: WireError[] = []
  try {
    const run = async (maxResultBytes: number | undefined): Promise<dbc.task.v1.ITaskResult> => {
      const jobId = randomBytes(16)
      const offer = provider.offer({ jobId, requester: holder, slots: 1, executor: 'wasm', expectedTaskMs: 10, maxInputBytes: 64, requestExpiresAt: Date.now() + 10_000, ...(maxResultBytes !== undefined ? { maxResultBytes } : {}) })
      assert.is(offer.refusal ?? '', '')
      const leaseId = randomBytes(16)
      await provider.openLease(signLease(holderKey, { leaseId, offerId: offer.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000 }), holder)
      return await provider.runTask({ taskId: randomBytes(8), jobId, leaseId, index: 7, attempt: 1, executor: 'wasm', code: square, entry: 'run', input: new TextEncoder().encode('[3]'), deadlineMs: 20_000, memoryLimitMib: 16 }, holder, { charge: (e) => { charged.push(e) } })
    }
    const free = await run(undefined) // an old submitter: announces nothing (0)
    assert.is(free.ok, true, free.error ?? '')
    const size = free.output?.length ?? 0
    assert.ok(size > 1)
    assert.is((await run(size)).ok, true, 'a result of exactly the bound is sent')
    const over = await run(size - 1)
    assert.is(over.ok, false)
    assert.is(over.code, RESULT_TOO_LARGE)
    assert.match(over.error ?? '', new RegExp(`^RESULT_TOO_LARGE: task 7: its result of ${size} bytes is above the ${size - 1} bytes the job announced \\(manifest task.maxResultBytes\\)`))
    assert.is(over.output == null || over.output.length === 0, true, 'nothing of it is sent')
    assert.is(over.receipt ?? undefined, undefined, 'no receipt: never billed')
    assert.equal(charged, [], 'the task\'s fault: nobody is charged')
  } finally {
    await peer.stop()
  }
})

test('the announced bound: a manifest field (at most and by default 16 MiB), the lease request\'s field, the submitter\'s frame limit', () => {
  const base = { executor: 'wasm', code: { wasm: 'tile.wasm' }, inputs: { range: { from: 0, to: 9 } } }
  const ok = validateManifest({ ...base, task: { maxResultBytes: 4096 } })
  assert.ok(ok.ok && ok.manifest.task.maxResultBytes === 4096)
  const big = validateManifest({ ...base, task: { maxResultBytes: MAX_RESULT_BYTES + 1 } })
  assert.ok(!big.ok && big.issues.some(i => i.path === 'task.maxResultBytes'))
  assert.is(MAX_RESULT_BYTES, TASK_MAX_FRAME)
  // the wire field round-trips; 0 (an old peer) and hostile values mean "not announced": 16 MiB
  const req = dbc.task.v1.LeaseRequest.decode(dbc.task.v1.LeaseRequest.encode({ maxResultBytes: 4096 }).finish())
  assert.is(req.maxResultBytes, 4096)
  for (const v of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e300, undefined]) assert.is(announcedResultBytes(v), TASK_MAX_FRAME, String(v))
  assert.is(resultFrameCap(4096), 4096 + RESULT_FRAME_OVERHEAD)
  assert.is(resultFrameCap(undefined), TASK_MAX_FRAME)
  assert.is(resultFrameCap(TASK_MAX_FRAME - 1), TASK_MAX_FRAME)
})

test.run()
