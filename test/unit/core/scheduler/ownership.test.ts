import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { signJob, verifyJob, signJobAction, authorizeJobAction, signSessionToken } from '../../../../src/core/scheduler/index.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../../src/core/identity/index.js'

const k = (n: number): { sk: Uint8Array, id: Uint8Array } => { const sk = new Uint8Array(32).fill(n); return { sk, id: peerIdBytesFromEd25519Key(ed25519PublicKey(sk)) } }
const owner = k(1); const other = k(2)
const manifest = new TextEncoder().encode('{"a":1}')

test('jobs are signed by their owner; tampering is detected', () => {
  const job = signJob(owner.sk, owner.id, manifest, 1000, new Uint8Array(16))
  assert.ok(verifyJob(job, manifest))
  assert.not.ok(verifyJob(job, new TextEncoder().encode('{"a":2}')))
  assert.not.ok(verifyJob({ ...job, owner: other.id }))
  assert.not.ok(verifyJob({ ...job, createdAt: 1001 }))
})

test('actions: owner yes, stranger no, stale no, session within scope', () => {
  const job = signJob(owner.sk, owner.id, manifest, 1000, new Uint8Array(16))
  assert.ok(authorizeJobAction(job, signJobAction(owner.sk, owner.id, job.jobId, 'cancel', 5000), 5000).ok)
  assert.not.ok(authorizeJobAction(job, signJobAction(other.sk, other.id, job.jobId, 'cancel', 5000), 5000).ok)
  assert.not.ok(authorizeJobAction(job, signJobAction(owner.sk, owner.id, job.jobId, 'cancel', 5000), 5000 + 3_600_000).ok)
  assert.not.ok(authorizeJobAction(job, signJobAction(owner.sk, owner.id, 'other', 'cancel', 5000), 5000).ok)
  const forgedSig = { ...signJobAction(owner.sk, owner.id, job.jobId, 'cancel', 5000), action: 'results' as const }
  assert.not.ok(authorizeJobAction(job, forgedSig, 5000).ok)
  const session = signSessionToken(owner.sk, { owner: owner.id, session: other.id, expiresAt: 10_000, scope: ['results', 'status'] })
  assert.equal(authorizeJobAction(job, signJobAction(other.sk, other.id, job.jobId, 'results', 5000, session), 5000), { ok: true, via: 'session' })
  assert.not.ok(authorizeJobAction(job, signJobAction(other.sk, other.id, job.jobId, 'cancel', 5000, session), 5000).ok)
  assert.not.ok(authorizeJobAction(job, signJobAction(other.sk, other.id, job.jobId, 'results', 10_000, session), 10_000).ok)
  assert.not.ok(authorizeJobAction(job, signJobAction(other.sk, other.id, job.jobId, 'results', 5000, { ...session, scope: ['*'] }), 5000).ok)
})

test.run()
