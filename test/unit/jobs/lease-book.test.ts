// A provider's book of issued offers and closed leases: a lease uses up its offer (a second lease on
// it is charged); the book is bounded per requester and in all, and a flood from one requester
// pushes out only its own offers; a lease on an offer the book does not hold is declined, not
// charged; a task under a lease never opened is a (charged) WireError, one racing a close is not.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { WireError } from '../../../src/errors.js'
import { ed25519PublicKey, peerIdBytesFromEd25519Key } from '../../../src/core/identity/index.js'
import { signLease } from '../../../src/core/scheduler/index.js'
import { LeaseBook, LeaseDeclinedError, LeaseRefusedError, TaskWithoutLeaseError, EXPIRED_OFFER_GRACE_MS, MAX_OFFERS_PER_REQUESTER } from '../../../src/jobs/lease-book.js'
import { FakeProvider } from '../../../src/jobs/fake-provider.js'

const k = (n: number): { sk: Uint8Array, id: Uint8Array } => { const sk = new Uint8Array(32).fill(n); return { sk, id: peerIdBytesFromEd25519Key(ed25519PublicKey(sk)) } }
const owner = k(1); const stranger = k(2); const provider = k(3)
const bytes = (...b: number[]): Uint8Array => new Uint8Array(b)
const offer = (id: number, expiresAt = 10_000, refusal = ''): { offerId: Uint8Array, jobId: Uint8Array, expiresAt: number, refusal: string } => ({ offerId: bytes(id), jobId: bytes(9), expiresAt, refusal })
const lease = (offerId: number, holder = owner): ReturnType<typeof signLease> =>
  signLease(holder.sk, { leaseId: bytes(7, offerId), offerId: bytes(offerId), jobId: bytes(9), holder: holder.id, provider: provider.id, expiresAt: 1_000_000 })
const admit = (b: LeaseBook, l: ReturnType<typeof signLease>, now = 5000, sender = owner.id): unknown => {
  try { b.admit({ lease: l, sender, self: provider.id, now }); return 'ok' } catch (e) { return e }
}
const codeOf = (e: unknown): string => e instanceof Error ? `${e.name}:${(e as WireError).code}` : String(e)

test('a lease uses up its offer: a second lease on it is refused and charged', () => {
  const b = new LeaseBook()
  b.issued(offer(1), owner.id, 0)
  assert.is(admit(b, lease(1)), 'ok')
  const again = admit(b, lease(1))
  assert.instance(again, LeaseRefusedError)
  assert.instance(again, WireError)
  assert.is(codeOf(again), 'LeaseRefusedError:LEASE_OFFER_USED')
})

test('a lease on an offer the book does not hold (restart, eviction) is declined, not charged', () => {
  const b = new LeaseBook()
  const unknown = admit(b, lease(1))
  assert.instance(unknown, LeaseDeclinedError)
  assert.not.instance(unknown, WireError)
  assert.is(codeOf(unknown), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER')
  // forged on an unknown offer: charged (the signature is checked first)
  const forged = { ...lease(1), signature: new Uint8Array(64) }
  assert.is(codeOf(admit(b, forged)), 'LeaseRefusedError:LEASE_BAD_SIGNATURE')
})

test('the announced input bytes travel with the offer to its lease', () => {
  const b = new LeaseBook()
  b.issued(offer(1), owner.id, 0, 123_456)
  b.issued(offer(2), owner.id, 0)
  assert.is(b.admit({ lease: lease(1), sender: owner.id, self: provider.id, now: 5000 }).inputBytes, 123_456)
  assert.is(b.admit({ lease: lease(2), sender: owner.id, self: provider.id, now: 5000 }).inputBytes, undefined)
})

test('refusals and offers without a requester back no lease', () => {
  const b = new LeaseBook()
  b.issued(offer(1, 10_000, 'busy'), owner.id, 0)
  b.issued(offer(2), undefined, 0)
  b.issued(offer(3), new Uint8Array(), 0)
  assert.is(b.size, 0)
  assert.is(codeOf(admit(b, lease(1))), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER')
})

test('a stranger can not lease an offer made to someone else; the offer stays for its requester', () => {
  const b = new LeaseBook()
  b.issued(offer(1), owner.id, 0)
  assert.is(codeOf(admit(b, lease(1, stranger), 5000, stranger.id)), 'LeaseRefusedError:LEASE_OFFER_MISMATCH')
  assert.is(admit(b, lease(1)), 'ok')
})

test('a lease just after its offer expired is declined, not charged; long after, the offer is forgotten', () => {
  const b = new LeaseBook()
  b.issued(offer(1, 10_000), owner.id, 0)
  const late = admit(b, lease(1), 10_500)
  assert.instance(late, LeaseDeclinedError)
  assert.not.instance(late, WireError)
  assert.is(codeOf(late), 'LeaseDeclinedError:LEASE_OFFER_EXPIRED')
  // a new offer issued past the grace drops the long-expired one
  b.issued(offer(2, 100_000), owner.id, 10_000 + EXPIRED_OFFER_GRACE_MS)
  assert.is(b.size, 1)
  assert.is(codeOf(admit(b, lease(1), 10_000 + EXPIRED_OFFER_GRACE_MS)), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER')
})

test('the book holds at most maxOffers: past it, the requester holding the most loses its oldest', () => {
  const b = new LeaseBook({ maxOffers: 3 })
  for (let i = 1; i <= 5; i++) b.issued(offer(i), owner.id, 0)
  assert.is(b.size, 3)
  assert.is(codeOf(admit(b, lease(1))), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER')
  assert.is(codeOf(admit(b, lease(2))), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER')
  assert.is(admit(b, lease(5)), 'ok')
})

test('one requester holds at most maxPerRequester offers: its flood pushes out only its own', () => {
  assert.ok(MAX_OFFERS_PER_REQUESTER >= 16 && MAX_OFFERS_PER_REQUESTER <= 1024)
  const b = new LeaseBook({ maxOffers: 1000, maxPerRequester: 4 })
  b.issued(offer(1), owner.id, 0) // the honest submitter's offer, issued first
  for (let i = 10; i < 210; i++) b.issued(offer(i), stranger.id, 0)
  assert.is(b.heldBy(stranger.id), 4)
  assert.is(b.heldBy(owner.id), 1)
  assert.is(b.size, 5)
  assert.is(admit(b, lease(1)), 'ok', 'the honest offer survived the flood')
  assert.is(codeOf(admit(b, lease(10, stranger), 5000, stranger.id)), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER', 'the flooder lost its own oldest')
  assert.is(admit(b, lease(209, stranger), 5000, stranger.id), 'ok')
})

test('at the global cap, the requester holding the most offers loses its oldest, not an honest one', () => {
  const b = new LeaseBook({ maxOffers: 10, maxPerRequester: 5 })
  b.issued(offer(1), owner.id, 0)
  b.issued(offer(2), owner.id, 0)
  // many identities (a flood across keys): each new offer evicts from the heaviest holder
  const flooders = [k(10), k(11), k(12)]
  let n = 100
  for (let round = 0; round < 10; round++) for (const f of flooders) b.issued(offer(n++), f.id, 0)
  assert.is(b.size, 10)
  assert.is(b.heldBy(owner.id), 2, 'the honest requester kept both its offers')
  for (const f of flooders) assert.ok(b.heldBy(f.id) <= 3)
  assert.is(admit(b, lease(1)), 'ok')
  assert.is(admit(b, lease(2)), 'ok')
})

test('a second lease on a used offer is charged even after the offer left the book; used ids are bounded', () => {
  const b = new LeaseBook({ maxUsed: 2 })
  for (let i = 1; i <= 3; i++) { b.issued(offer(i), owner.id, 0); assert.is(admit(b, lease(i)), 'ok') }
  assert.is(codeOf(admit(b, lease(3))), 'LeaseRefusedError:LEASE_OFFER_USED')
  assert.is(codeOf(admit(b, lease(1))), 'LeaseDeclinedError:LEASE_UNKNOWN_OFFER', 'the oldest used id is forgotten')
})

test('a task under a lease never opened throws a charged TASK_NO_LEASE; one closed lately is refused quietly', () => {
  const b = new LeaseBook({ maxClosed: 2 })
  assert.throws(() => b.missingLease(bytes(7, 1)), (e: Error) => e instanceof TaskWithoutLeaseError && e instanceof WireError && (e as WireError).code === 'TASK_NO_LEASE')
  b.closedLease(bytes(7, 1))
  assert.equal(b.missingLease(bytes(7, 1)), { ok: false, reason: 'the lease is closed' })
  b.closedLease(bytes(7, 2)); b.closedLease(bytes(7, 3))
  assert.throws(() => b.missingLease(bytes(7, 1)), (e: Error) => e instanceof TaskWithoutLeaseError, 'bounded: the oldest closed lease is forgotten')
})

test('FakeProvider: offer, lease, task; a task for a lease never opened throws, after close it is refused', async () => {
  const p = new FakeProvider({ secretKey: provider.sk, compute: x => x })
  const o = p.offer({ jobId: bytes(9), requester: owner.id })
  const l = signLease(owner.sk, { leaseId: bytes(7), offerId: o.offerId, jobId: bytes(9), holder: owner.id, provider: p.peerId, expiresAt: Date.now() + 60_000 })
  // the fuzzer's lease: a made-up offer id
  assert.throws(() => p.openLease({ ...signLease(owner.sk, { ...l, offerId: bytes(1), signature: undefined }) }, owner.id), (e: Error) => e instanceof LeaseDeclinedError && /no open offer/.test(e.message))
  p.openLease(l, owner.id)
  const task = { taskId: bytes(1), jobId: bytes(9), leaseId: bytes(7), index: 0, attempt: 1, input: bytes(5) }
  assert.ok((await p.runTask(task, owner.id)).ok)
  try { await p.runTask({ ...task, leaseId: bytes(8) }, owner.id); assert.unreachable('ran under no lease') } catch (e) { assert.instance(e, TaskWithoutLeaseError) }
  p.closeLease(bytes(7))
  const late = await p.runTask(task, owner.id)
  assert.not.ok(late.ok)
  assert.match(late.error ?? '', /lease is closed/)
  assert.is(p.refusedTasks, 2)
})

test.run()
