// Large frames only from peers the node has a lease or a training membership with, and only up to
// what that lease or job announced: the provider's lease lookup (leasedInputBytes), the task frame
// cap derived from it, and the all-reduce membership the transport learns from its own messages.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { ComputePeer } from '../../../src/compute/index.js'
import { ComputePeerProvider } from '../../../src/jobs/compute-provider.js'
import { signLease } from '../../../src/core/scheduler/ownership.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { taskFrameCap, TASK_MAX_FRAME, TASK_CODE_ALLOWANCE, TASK_REQUEST_MAX_FRAME } from '../../../src/net/tasks.js'
import { DEFAULT_MODULE_LIMITS } from '../../../src/core/compute/wasm-validate.js'
import { largestInputBytes, encodeValueInput, validateManifest, type Manifest } from '../../../src/core/scheduler/index.js'
import { dbc } from '../../../src/wire/gen/wire.js'
import { TrainingMembers, trainingFrameBytes, MEMBERSHIP_TTL_MS } from '../../../src/training/members.js'
import type { TrainingMessage } from '../../../src/training/transport.js'

test('the task frame cap follows the lease request\'s announced input, within TASK_MAX_FRAME', () => {
  assert.is(taskFrameCap(1000), TASK_CODE_ALLOWANCE + 2000 + TASK_REQUEST_MAX_FRAME)
  assert.is(taskFrameCap(100 * 1024 * 1024), TASK_MAX_FRAME)
  assert.ok(taskFrameCap(0) > TASK_REQUEST_MAX_FRAME)
})

const parseManifest = (raw: unknown): Manifest => {
  const r = validateManifest(raw)
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return r.manifest
}

test('an honest first task (the largest module providers validate, the job\'s largest input) fits its lease\'s frame cap', () => {
  assert.is(TASK_CODE_ALLOWANCE, DEFAULT_MODULE_LIMITS.maxModuleBytes)
  // a job whose first list item is small and a later one large: the lease announces the largest
  const big = 'x'.repeat(700_000)
  const m = parseManifest({ executor: 'wasm', code: { wasm: 'job.wasm' }, inputs: { list: ['a', big, 'b'] } })
  const announced = largestInputBytes(m)
  assert.is(announced, encodeValueInput(big).length)
  for (const input of [encodeValueInput('a'), encodeValueInput(big)]) {
    const frame = dbc.task.v1.TaskMessage.encode({
      task: { taskId: new Uint8Array(80), jobId: new Uint8Array(32), leaseId: new Uint8Array(64), index: 1, attempt: 1, executor: 'wasm', codeHash: new Uint8Array(32), code: new Uint8Array(DEFAULT_MODULE_LIMITS.maxModuleBytes), entry: 'main', input, deadlineMs: 60_000, memoryLimitMib: 256 }
    }).finish()
    assert.ok(frame.length <= taskFrameCap(announced), `a task frame of ${frame.length} bytes is above the cap of ${taskFrameCap(announced)}`)
  }
})

test('largestInputBytes: file chunks and partitions, file lists, ranges', () => {
  const chunks = parseManifest({ executor: 'wasm', code: { wasm: 'job.wasm' }, inputs: { files: { path: 'd.bin', chunkBytes: 1000 } } })
  assert.is(largestInputBytes(chunks, 2500), 1000)
  assert.is(largestInputBytes(chunks, 300), 300)
  const parts = parseManifest({ executor: 'wasm', code: { wasm: 'job.wasm' }, inputs: { files: { path: 'd.bin', partitions: 3 } } })
  assert.is(largestInputBytes(parts, 1000), 334)
  const files = parseManifest({ executor: 'wasm', code: { wasm: 'job.wasm' }, inputs: { files: { paths: ['a', 'b', 'c'] } } })
  assert.is(largestInputBytes(files, undefined, [10, 5000, 20]), 5000)
  const range = parseManifest({ executor: 'wasm', code: { wasm: 'job.wasm' }, inputs: { range: { from: 0, to: 1, step: 0.1 } } })
  assert.ok(largestInputBytes(range) >= 24)
})

test('a provider knows who holds a lease and what its request announced; none before the lease, none after it closes', async () => {
  const providerKey = randomBytes(32)
  const holderKey = randomBytes(32)
  const holder = peerIdBytesFromEd25519Key(ed25519PublicKey(holderKey))
  const peer = new ComputePeer({ secretKey: providerKey, cpuSlots: 1, memoryMib: 1024, benchmark: false } as any)
  await peer.start()
  const provider = new ComputePeerProvider(peer)
  try {
    const jobId = randomBytes(16)
    const offer = provider.offer({ jobId, requester: holder, slots: 1, maxPriceHour: 100, executor: 'wasm', expectedTaskMs: 10, maxInputBytes: 5000, requestExpiresAt: Date.now() + 10_000 })
    assert.is(offer.refusal ?? '', '', `the offer was refused: ${offer.refusal ?? ''}`)
    assert.is(provider.leasedInputBytes(holder), undefined)
    const leaseId = randomBytes(16)
    const lease = signLease(holderKey, { leaseId, offerId: offer.offerId, jobId, holder, provider: peer.peerId, expiresAt: Date.now() + 60_000, heartbeatMs: 1000 })
    provider.openLease(lease, holder)
    assert.is(provider.leasedInputBytes(holder), 5000)
    assert.is(provider.leasedInputBytes(randomBytes(38)), undefined, 'another peer holds no lease')
    provider.closeLease(leaseId)
    assert.is(provider.leasedInputBytes(holder), undefined)
  } finally {
    await peer.stop()
  }
})

const msg = (m: Partial<Record<keyof TrainingMessage, unknown>>): TrainingMessage => m as TrainingMessage

test('training members: only peers we invited, or that our accepted job\'s coordinator names, may send large frames', () => {
  const m = new TrainingMembers(64 * 1024 * 1024)
  // as coordinator: invite A; A accepts with 1,000 parameters
  m.onSend(0, 'A', { invite: { jobId: 'j1' } })
  assert.is(m.limitOf(0, 'A'), 0, 'an invitee sends its reply first (small)')
  m.onReceive(1, 'A', msg({ inviteReply: { jobId: 'j1', accepted: true, paramCount: 1000 } }))
  assert.is(m.limitOf(1, 'A'), trainingFrameBytes(1000))
  // a peer we never invited claims to accept: nothing
  m.onReceive(1, 'X', msg({ inviteReply: { jobId: 'j1', accepted: true, paramCount: 1000 } }))
  assert.is(m.limitOf(1, 'X'), 0)
  // as worker: we accept C's job; C's round names B
  m.onSend(2, 'C', { inviteReply: { jobId: 'j2', accepted: true, paramCount: 50 } })
  assert.is(m.limitOf(2, 'C'), trainingFrameBytes(50))
  m.onReceive(3, 'C', msg({ roundStart: { jobId: 'j2', members: ['B', 'self'] } }))
  assert.is(m.limitOf(3, 'B'), trainingFrameBytes(50))
  // a round start from someone who is not that job's coordinator names no one
  m.onReceive(3, 'X', msg({ roundStart: { jobId: 'j2', members: ['Y'] } }))
  assert.is(m.limitOf(3, 'Y'), 0)
  // memberships lapse without messages
  assert.is(m.limitOf(3 + MEMBERSHIP_TTL_MS + 1, 'B'), 0)
})

test.run()
