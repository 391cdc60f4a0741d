// PEERS_BUSY at submit (review s13 L6): a running built-in job holds the peers it has now (its
// members, joiners and invitees), not the group it started with; and the peers of a submit that is
// still locking its escrow are held, so a second submit running meanwhile does not take them too.
// The subsystem alone: its payments hook stands in for the escrow (held open, or refusing).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TrainingSubsystem, type TrainingPaymentHook } from '../../../src/training/subsystem.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'

const [A, B, C] = ['12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', '12D3KooWBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', '12D3KooWCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC']
const spec = { groupSize: 2, rounds: 10 }

/** A subsystem that got as far as submit needs; its escrow step waits on `escrow` (by default refuses at once). */
function subsystem (escrow: (jobId: string) => Promise<void> = async () => { throw new Error('escrow refused (stand-in)') }, selectPeers?: () => Promise<string[]>): TrainingSubsystem {
  const payments = { start: async (jobId: string) => { await escrow(jobId) } } as unknown as TrainingPaymentHook
  const sub = new TrainingSubsystem({ payments: () => payments, ...(selectPeers !== undefined ? { selectPeers } : {}) })
  Object.assign(sub as any, { ctx: {}, service: {} })
  return sub
}

const codeOf = async (p: Promise<unknown>): Promise<string> => await p.then(() => 'accepted', (err: any) => String(err.code ?? err.message))

test('a running job holds the peers it has now: one that left its group is free, a joiner it invited is not', async () => {
  const sub = subsystem()
  // a job placed on A and B whose group is now A, with C invited as a replacement (B left)
  ;(sub as any).jobs.set('job1', { status: 'running', spec: parseTrainingSpec(spec), peers: [A, B], history: [{ round: 0, members: [A, B] }], session: { heldPeers: () => [A, C] } })
  assert.is(await codeOf(sub.submit(spec, [A])), 'PEERS_BUSY')
  assert.is(await codeOf(sub.submit(spec, [C])), 'PEERS_BUSY')
  // B passes the check (the stand-in escrow then refuses)
  assert.match(await codeOf(sub.submit(spec, [B])), /escrow refused/)
})

test('two submits at once on the same peers: the second is refused while the first locks its escrow; once that fails the peers are free', async () => {
  let release: (() => void) | undefined
  let fail = false
  const sub = subsystem(async () => { await new Promise<void>(resolve => { release = resolve }); if (fail) throw new Error('escrow refused (stand-in)') })
  const first = codeOf(sub.submit(spec, [A, B]))
  await new Promise(resolve => setImmediate(resolve))
  assert.ok(release !== undefined, 'the first submit waits on its escrow')
  assert.is(await codeOf(sub.submit(spec, [B])), 'PEERS_BUSY')
  fail = true
  release!()
  assert.match(await first, /escrow refused/)
  // nothing held after the failed submit
  assert.is((sub as any).reserved.size, 0)
  const third = codeOf(sub.submit(spec, [B]))
  await new Promise(resolve => setImmediate(resolve))
  release!()
  assert.match(await third, /escrow refused/)
})

test('peers chosen for a submit leave out those a submit running meanwhile took', async () => {
  let release: (() => void) | undefined
  const sub = subsystem(async () => { await new Promise<void>(resolve => { release = resolve }); throw new Error('escrow refused (stand-in)') }, async () => [A, B])
  const first = codeOf(sub.submit(spec, [A, B]))
  await new Promise(resolve => setImmediate(resolve))
  // automatic selection offers A and B again: both held, so the job has no group
  assert.is(await codeOf(sub.submit(spec)), 'PEERS_BUSY')
  release!()
  assert.match(await first, /escrow refused/)
})

test.run()
