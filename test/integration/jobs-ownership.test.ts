// Only the owner (or a session the owner signed) may read results or cancel; providers
// run tasks only for the holder of the lease.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../src/store/db.js'
import { JobService, JobStore, JobAccessDeniedError, FakeProvider } from '../../src/jobs/index.js'
import { signSessionToken, signLease, checkTaskFromLeaseHolder, signTask } from '../../src/core/scheduler/index.js'
import { compute, key, manifest, providers, transport } from './jobs-helpers.js'

const owner = key(1)
const stranger = key(2)
const delegate = key(3)

async function setup (): Promise<{ svc: JobService, jobId: string, close: () => void }> {
  const store = new JobStore(openStore(':memory:'))
  const tr = transport(providers(4, () => ({ delayMs: 1 })), owner)
  const svc = new JobService({ store, transport: tr, identity: owner })
  const { jobId, done } = await svc.submit(manifest({ inputs: { range: { from: 0, to: 49 } } }), { code: new Uint8Array([1]) })
  await done
  return { svc, jobId, close: () => { tr.close(); store.store.close() } }
}

test('the owner reads results; a stranger can neither read nor cancel', async () => {
  const { svc, jobId, close } = await setup()
  assert.is(svc.results(jobId, svc.localRequest(jobId, 'results')).length, 50)
  assert.throws(() => svc.results(jobId, svc.localRequest(jobId, 'results', undefined, stranger)), (e: Error) => e instanceof JobAccessDeniedError && /only the job owner/.test(e.message))
  try { await svc.cancel(jobId, svc.localRequest(jobId, 'cancel', undefined, stranger)); assert.unreachable('cancel allowed') } catch (e) { assert.instance(e, JobAccessDeniedError) }
  // A request signed for one action does not authorize another.
  assert.throws(() => svc.results(jobId, svc.localRequest(jobId, 'cancel')), (e: Error) => e instanceof JobAccessDeniedError)
  close()
})

test('a session token the owner signed authorizes exactly its scope, until it expires', async () => {
  const { svc, jobId, close } = await setup()
  const session = signSessionToken(owner.secretKey, { owner: owner.peerId, session: delegate.peerId, expiresAt: Date.now() + 60_000, scope: ['results'] })
  assert.is(svc.results(jobId, svc.localRequest(jobId, 'results', session, delegate)).length, 50)
  try { await svc.cancel(jobId, svc.localRequest(jobId, 'cancel', session, delegate)); assert.unreachable() } catch (e) { assert.match((e as Error).message, /does not allow "cancel"/) }
  const expired = signSessionToken(owner.secretKey, { owner: owner.peerId, session: delegate.peerId, expiresAt: Date.now() - 1, scope: ['*'] })
  assert.throws(() => svc.results(jobId, svc.localRequest(jobId, 'results', expired, delegate)), /expired/)
  // A token a stranger signs for itself is worthless.
  const forged = signSessionToken(stranger.secretKey, { owner: owner.peerId, session: delegate.peerId, expiresAt: Date.now() + 60_000, scope: ['*'] })
  assert.throws(() => svc.results(jobId, svc.localRequest(jobId, 'results', forged, delegate)), /bad owner signature/)
  close()
})

test('providers accept tasks only from the lease holder', async () => {
  const p = new FakeProvider({ secretKey: key(50).secretKey, compute })
  const now = Date.now()
  // a lease names an offer this provider issued to its holder
  const offer = p.offer({ jobId: new Uint8Array([9]), requester: owner.peerId, slots: 1 })
  const lease = signLease(owner.secretKey, { leaseId: new Uint8Array([7]), offerId: offer.offerId, jobId: new Uint8Array([9]), holder: owner.peerId, provider: p.peerId, expiresAt: now + 60_000, heartbeatMs: 200 })
  p.openLease(lease, owner.peerId)
  const task = { taskId: new Uint8Array([1]), jobId: new Uint8Array([9]), leaseId: new Uint8Array([7]), index: 0, attempt: 1, input: new Uint8Array([1]) }
  assert.ok((await p.runTask(task, owner.peerId)).ok)
  const refused = await p.runTask(task, stranger.peerId)
  assert.not.ok(refused.ok)
  assert.match(refused.error ?? '', /only the lease holder/)
  assert.throws(() => p.openLease(lease, stranger.peerId), /does not hold the lease/)
  // Tampered signed task and wrong job are refused by the pure check.
  const signed = signTask(owner.secretKey, task)
  const issuedOffer = { offerId: offer.offerId!, jobId: new Uint8Array([9]), requester: owner.peerId, expiresAt: now + 60_000 }
  assert.ok(checkTaskFromLeaseHolder({ task: signed, lease, sender: owner.peerId, self: p.peerId, now, issuedOffer }).ok)
  assert.not.ok(checkTaskFromLeaseHolder({ task: { ...signed, input: new Uint8Array([2]) }, lease, sender: owner.peerId, now, issuedOffer }).ok)
  assert.not.ok(checkTaskFromLeaseHolder({ task: { ...task, jobId: new Uint8Array([8]) }, lease, sender: owner.peerId, now, issuedOffer }).ok)
  assert.not.ok(checkTaskFromLeaseHolder({ task, lease, sender: owner.peerId, now: now + 120_000, issuedOffer }).ok)
  assert.not.ok(checkTaskFromLeaseHolder({ task, lease: { ...lease, holder: stranger.peerId }, sender: stranger.peerId, now, issuedOffer }).ok)
  assert.not.ok(checkTaskFromLeaseHolder({ task: signed, lease, sender: owner.peerId, self: p.peerId, now, issuedOffer: undefined }).ok, 'no offer backs the lease')
})

test.run()
