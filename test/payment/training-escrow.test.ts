// Training members check the money before they work (review H2, member side), with real daemons on
// one anvil: an invitation carries the job's payment terms (escrow, payer, the payer's LeaseAuth
// over the coordinator); a member refuses one whose escrow does not cover its credit, with a typed
// code the submitter shows, and accepts a funded one, whose rounds are then paid by vouchers.
// A submitter killed with -9 mid-training resumes the job and its rounds keep being paid: each
// member's signed total keeps rising after the resume (the payer comes back from the node's store).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startPaidNetwork, waitFor, note, PRICE_CPU_HOUR, type PaidNetwork } from './paid-network.js'
import { chainJobIdOf } from '../../src/chain/job-id.js'

// small and quick (as test/integration/training-durable.test.ts). A member prices a round itself
// (core/settlement/training.ts): one core at its PRICE_CPU_HOUR (100 DBC) for its default floor of
// 60 s, 1.67 DBC, whatever the deadline says: its credit. The spec's maxPricePerHour must allow
// that price, and the budget cover the credit plus a round at each member.
const SPEC = { model: { kind: 'mlp', hidden: 32 }, dataset: { trainPerClass: 100, testPerClass: 100 }, groupSize: 2, rounds: 4, localSteps: 5, batchSize: 32, learningRate: 0.1, seed: 7, evalEvery: 2, deadline: { initialMs: 20_000 }, maxPricePerHour: PRICE_CPU_HOUR, budget: 10 }

let p: PaidNetwork
test.before(async () => { p = await startPaidNetwork(2) })
test.after(async () => { await p?.net.stop() })

const job = async (id: string): Promise<any> => await p.submitter.api.call<any>('GET', `/v1/training/${id}`, undefined, { timeoutMs: 5000 })
const ended = async (id: string): Promise<any> => await waitFor(`training job ${id} to end`, async () => { const j = await job(id); return j.status === 'running' ? undefined : j }, 240_000)

test('an escrow below the members\' credit: both refuse the invitation with ESCROW_TOO_SMALL and do no work', async () => {
  const peers = p.providers.map(n => n.peerId)
  // 0.001 DBC of escrow against a credit of one round (1.67 DBC)
  const { jobId } = await p.submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec: { ...SPEC, budget: 0.001 }, peers })
  const j = await ended(jobId)
  note(`under-funded job: ${JSON.stringify(j.error)}`)
  assert.is(j.status, 'failed')
  const refusals: Array<{ peer: string, reason: string, code?: string }> = j.error?.refusals ?? j.refusals
  assert.equal(refusals.map(r => r.peer).sort(), [...peers].sort(), 'every member refused')
  for (const r of refusals) {
    assert.is(r.code, 'ESCROW_TOO_SMALL', r.reason)
    assert.match(r.reason, /^ESCROW_TOO_SMALL: escrow of job 0x[0-9a-f]{8}… has 0\.001 DBC unspent, less than the 1\.6666\d* DBC owed/)
  }
  for (const n of p.providers) {
    const st = await n.api.call<any>('GET', '/v1/status')
    assert.ok(Array.isArray(st.training?.trainingWorkers))
    assert.equal(st.training.trainingWorkers.filter((w: any) => w.jobId === jobId), [], 'no worker ran for it')
  }
})

test('a funded job: the members accept, and each is signed a voucher for its rounds', async () => {
  const peers = p.providers.map(n => n.peerId)
  const { jobId } = await p.submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec: SPEC, peers })
  const j = await ended(jobId)
  assert.is(j.status, 'done', JSON.stringify(j.error))
  assert.equal([...j.members].sort(), [...peers].sort())
  for (const n of p.providers) {
    const e = await waitFor(`${n.spec.name}'s training voucher`, async () => {
      const e = await n.api.call<{ jobs: Array<{ chainJobId: string, signed: string }> }>('GET', '/v1/earnings')
      return e.jobs.some(r => BigInt(r.signed) > 0n) ? e : undefined
    }, 60_000)
    assert.ok(e.jobs.length >= 1)
  }
})

/** What `member` holds signed for the training job `jobId` of the submitter (its escrow id), in wei. */
async function signedFor (member: PaidNetwork['providers'][number], key: string): Promise<bigint> {
  const e = await member.api.call<{ jobs: Array<{ chainJobId: string, signed: string }> }>('GET', '/v1/earnings')
  return BigInt(e.jobs.find(r => r.chainJobId.toLowerCase() === key)?.signed ?? '0')
}

test('a submitter killed with -9 mid-training resumes, and its members\' signed totals keep rising after the resume', async () => {
  const peers = p.providers.map(n => n.peerId)
  const spec = { ...SPEC, rounds: 24, evalEvery: 8 }
  const { jobId } = await p.submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec, peers })
  // training job ids are text: the escrow id is keccak(payer, keccak(utf8(job id)))
  const key = chainJobIdOf(jobId, p.accounts.get(p.submitter)!).toLowerCase()
  await waitFor('a few rounds', async () => (await job(jobId)).round >= 5 ? true : undefined)
  const before = await Promise.all(p.providers.map(async n => await waitFor(`${n.spec.name}'s first voucher`, async () => { const s = await signedFor(n, key); return s > 0n ? s : undefined }, 60_000)))
  const exited = new Promise<void>(resolve => p.submitter.process.once('exit', () => { resolve() }))
  p.submitter.process.kill('SIGKILL')
  await exited
  note(`killed the submitter at signed totals ${before.join(', ')}`)
  p.submitter = await p.net.start({ name: 'submitter', location: 'Tokyo' }, p.providers.map(n => n.addrs[0]), { timeoutMs: 120_000 })
  const end = await ended(jobId)
  assert.is(end.status, 'done', JSON.stringify(end.error))
  assert.ok(end.resumedFrom > 0, `resumed from round ${end.resumedFrom}`)
  // the rounds after the resume are paid: each member is signed more than it held when the submitter died
  const after = await Promise.all(p.providers.map(async (n, i) => await waitFor(`${n.spec.name}'s total to rise past ${before[i]}`, async () => { const s = await signedFor(n, key); return s > before[i] ? s : undefined }, 60_000)))
  note(`resumed from round ${end.resumedFrom}; signed totals ${before.join(', ')} -> ${after.join(', ')}`)
  const payment = (await job(jobId)).payment
  assert.ok(payment != null && Number(payment.paid) > 0, `the submitter's view counts the rounds paid: ${JSON.stringify(payment)}`)
})

test.run()
