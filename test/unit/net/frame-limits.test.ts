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
import { TrainingMembers, trainingFrameBytes, MEMBERSHIP_TTL_MS } from '../../../src/training/members.js'
import type { TrainingMessage } from '../../../src/training/transport.js'

test('the task frame cap follows the lease request\'s announced input, within TASK_MAX_FRAME', () => {
  assert.is(taskFrameCap(1000), TASK_CODE_ALLOWANCE + 2000 + TASK_REQUEST_MAX_FRAME)
  assert.is(taskFrameCap(100 * 1024 * 1024), TASK_MAX_FRAME)
  assert.ok(taskFrameCap(0) > TASK_REQUEST_MAX_FRAME)
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
