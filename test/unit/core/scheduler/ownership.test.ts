import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { signJob, verifyJob, signJobAction, authorizeJobAction, signSessionToken, signLease, checkLease, type IssuedOffer, type LeaseAdmission } from '../../../../src/core/scheduler/index.js'
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

// ---- leases: only for an offer this provider issued to the holder ----------------------

const provider = k(3)
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b)
const issued: IssuedOffer = { offerId: bytes(1, 1), jobId: bytes(9), requester: owner.id, expiresAt: 10_000 }
const leaseFor = (holder = owner, fields: Record<string, unknown> = {}): ReturnType<typeof signLease> =>
  signLease(holder.sk, { leaseId: bytes(7), offerId: bytes(1, 1), jobId: bytes(9), holder: holder.id, provider: provider.id, expiresAt: 100_000, heartbeatMs: 200, ...fields })
const refusal = (r: LeaseAdmission): string => r.ok ? 'ok' : `${r.code}/${r.action}`

test('a lease on an offer the provider issued to its holder, for its job, is admitted', () => {
  assert.equal(checkLease({ lease: leaseFor(), sender: owner.id, self: provider.id, now: 5000, issuedOffer: issued }), { ok: true })
})

test('a lease its holder signed for us naming no offer of ours is refused, not charged; a second lease on one offer is charged', () => {
  // the fuzzer's case: signed by the sender as holder, addressed to the provider, offer made up
  // (an honest runner meets it after a provider restart or an offer evicted under a flood)
  assert.is(refusal(checkLease({ lease: leaseFor(), sender: owner.id, self: provider.id, now: 5000, issuedOffer: undefined })), 'LEASE_UNKNOWN_OFFER/ignore')
  // the book handed over another offer than the lease names
  assert.is(refusal(checkLease({ lease: leaseFor(owner, { offerId: bytes(1, 2) }), sender: owner.id, self: provider.id, now: 5000, issuedOffer: issued })), 'LEASE_UNKNOWN_OFFER/ignore')
  // the offer backed a lease already: no honest runner leases one offer twice
  assert.is(refusal(checkLease({ lease: leaseFor(), sender: owner.id, self: provider.id, now: 5000, issuedOffer: undefined, offerUsed: true })), 'LEASE_OFFER_USED/reject')
  // forged or misaddressed leases on an unknown offer stay charged (checked first)
  assert.is(refusal(checkLease({ lease: leaseFor(), sender: other.id, self: provider.id, now: 5000, issuedOffer: undefined })), 'LEASE_NOT_HOLDER/reject')
  assert.is(refusal(checkLease({ lease: leaseFor(), sender: owner.id, self: other.id, now: 5000, issuedOffer: undefined })), 'LEASE_WRONG_PROVIDER/reject')
})

test('an offer is leased only by its requester, for its job', () => {
  // a stranger that knows or guesses the offer id (a FakeProvider numbers its offers)
  const stolen = leaseFor(other)
  assert.is(refusal(checkLease({ lease: stolen, sender: other.id, self: provider.id, now: 5000, issuedOffer: issued })), 'LEASE_OFFER_MISMATCH/reject')
  assert.is(refusal(checkLease({ lease: leaseFor(owner, { jobId: bytes(8) }), sender: owner.id, self: provider.id, now: 5000, issuedOffer: issued })), 'LEASE_OFFER_MISMATCH/reject')
})

test('an offer past its expiry is refused without a charge (an honest submitter may be slow)', () => {
  assert.is(refusal(checkLease({ lease: leaseFor(), sender: owner.id, self: provider.id, now: 10_000, issuedOffer: issued })), 'LEASE_OFFER_EXPIRED/ignore')
  assert.ok(checkLease({ lease: leaseFor(), sender: owner.id, self: provider.id, now: 9_999, issuedOffer: issued }).ok)
})

test('signature, provider and holder come before the offer: forged leases are charged as such', () => {
  const lease = leaseFor()
  assert.is(refusal(checkLease({ lease: { ...lease, expiresAt: 200_000 }, sender: owner.id, self: provider.id, now: 5000, issuedOffer: issued })), 'LEASE_BAD_SIGNATURE/reject')
  assert.is(refusal(checkLease({ lease, sender: owner.id, self: other.id, now: 5000, issuedOffer: issued })), 'LEASE_WRONG_PROVIDER/reject')
  assert.is(refusal(checkLease({ lease, sender: other.id, self: provider.id, now: 5000, issuedOffer: issued })), 'LEASE_NOT_HOLDER/reject')
  assert.is(refusal(checkLease({ lease, sender: owner.id, self: provider.id, now: 100_000, issuedOffer: issued })), 'LEASE_EXPIRED/ignore')
})

test.run()
