// Training that survives, with real daemons (`dbc node start` processes on 127.0.0.1):
//  - the submitter is killed with -9 after a few rounds and started again on the same data dir:
//    it resumes the job from its last checkpoint (round > 0) and finishes within 1 point of an
//    uninterrupted run of the same spec and seed on the same peers;
//  - a member added after round 10 (a provider that comes up then; the coordinator grows the
//    group back to its size) gets parameters, momentum and the round from a live member, checked
//    against the members' digest, and ends holding the very state of the others.
// Exact reproduction after a kill is impossible: the resumed members rebuild their trainers
// (their batch order restarts) and take the momentum as last averaged, so what is compared is
// the final test accuracy of the two runs, not their parameters.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { LocalNetwork, type LocalNode } from '../../demo/network.js'
import { sleep, waitFor as waitForAt } from '../helpers/wait.js'

const LOC = '35.68,139.69'
const EXTRA = ['--no-connection-monitor']
// small and quick: ~10k multiply-adds per sample, rounds of tens of ms of compute
const SPEC = { model: { kind: 'mlp', hidden: 32 }, dataset: { trainPerClass: 200, testPerClass: 200 }, groupSize: 2, rounds: 30, localSteps: 10, batchSize: 32, learningRate: 0.1, seed: 7, evalEvery: 10, averageOptimizerEvery: 3, deadline: { initialMs: 20_000 } }

// the daemons' training logs (few lines a job), printed when the late member test fails
process.env.DEBUG ??= 'dbc:training:worker,dbc:training:service,dbc:training:overlay-frames'

const net = new LocalNetwork()
let submitter: LocalNode
let providers: LocalNode[] = []

/** Waits up to 120 s by default, polling every 150 ms. */
const waitFor = async <T>(what: string, fn: () => Promise<T | undefined>, ms = 120_000): Promise<T> => await waitForAt(what, fn, { ms, everyMs: 150 })

async function connected (peers: LocalNode[]): Promise<void> {
  await waitFor('providers connected and serving training', async () => {
    const { peers: list } = await submitter.api.call<{ peers: Array<{ peerId: string }> }>('GET', '/v1/peers')
    return peers.every(p => list.some(x => x.peerId === p.peerId)) ? true : undefined
  })
  await sleep(500) // identify: the submitter learns that they serve /dbc/allreduce
}

const job = async (id: string): Promise<any> => await submitter.api.call<any>('GET', `/v1/training/${id}`, undefined, { timeoutMs: 5000 })
const finished = async (id: string): Promise<any> => await waitFor(`training job ${id} to end`, async () => { const j = await job(id); return j.status === 'running' ? undefined : j }, 240_000)

test.before(async () => {
  submitter = await net.start({ name: 'submitter', location: LOC, extra: EXTRA })
  providers = await Promise.all([0, 1].map(async i => await net.start({ name: `p${i}`, location: LOC, extra: EXTRA }, [submitter.addrs[0]])))
  await connected(providers)
})

test.after(async () => { await net.stop() })

test('a submitter killed with -9 mid-training resumes from its checkpoint and ends within 1 point of an uninterrupted run', async () => {
  const peers = providers.map(p => p.peerId)
  const { jobId: refId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec: SPEC, peers })
  const ref = await finished(refId)
  assert.is(ref.status, 'done', JSON.stringify(ref.error))

  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec: SPEC, peers })
  await waitFor('a few rounds', async () => (await job(jobId)).round >= 6 ? true : undefined)
  const exited = new Promise<void>(resolve => submitter.process.once('exit', () => { resolve() }))
  submitter.process.kill('SIGKILL')
  await exited
  submitter = await net.start({ name: 'submitter', location: LOC, extra: EXTRA }, providers.map(p => p.addrs[0]))
  await connected(providers)
  const end = await finished(jobId)
  console.log(`resumed from round ${end.resumedFrom}; accuracy uninterrupted ${(ref.accuracy * 100).toFixed(2)}%, resumed ${(end.accuracy * 100).toFixed(2)}%`)
  assert.is(end.status, 'done', JSON.stringify(end.error))
  assert.ok(end.resumedFrom > 0, `resumed from round ${end.resumedFrom}`)
  // every round ran exactly once (rounds before the checkpoint from the store, the rest after the restart)
  assert.equal(end.history.map((h: any) => h.round), Array.from({ length: SPEC.rounds }, (_, i) => i))
  assert.ok(end.accuracy >= 0.8, `accuracy ${end.accuracy}`)
  assert.ok(Math.abs(end.accuracy - ref.accuracy) <= 0.01, `resumed ${end.accuracy} vs uninterrupted ${ref.accuracy}`)
  const results = await submitter.api.call<any>('GET', `/v1/training/${jobId}/results`)
  assert.is(results.rounds, SPEC.rounds)
})

test('a member added after round 10 gets parameters, momentum and the round from a live member, and converges with the rest', async () => {
  const peers = providers.map(p => p.peerId)
  // a provider that is up but unknown to the submitter until it connects after round 10
  const late = await net.start({ name: 'late', location: LOC, extra: EXTRA })
  // the group's size is 3 and only 2 peers are known: the coordinator invites a third when one appears
  const { jobId } = await submitter.api.call<{ jobId: string }>('POST', '/v1/training', { spec: { ...SPEC, rounds: 200, groupSize: 3, minPeers: 2 }, peers })
  await waitFor('round 10', async () => (await job(jobId)).round >= 10 ? true : undefined)
  await late.api.call('POST', '/v1/ping', { peer: submitter.addrs[0], count: 1 })
  // its transfer, as its daemon reports it while it works in the job
  const load = await waitFor('the late member to load the state', async () => {
    const s = await late.api.call<any>('GET', '/v1/status')
    return s.training?.trainingWorkers?.find((w: any) => w.jobId === jobId)?.loads?.[0]
  }, 240_000).catch(async (err: Error) => {
    // what each side saw, for the next time this fails (CI runs in sessions 11 and 12: both donors'
    // answers to StateRequests sent over the overlay never came; session 13 sends the donors' addresses
    // with the invitation and answers a peer that reached us over the overlay on its connection once it has one)
    const j = await job(jobId).catch((e: Error) => ({ error: e.message }))
    const st = await late.api.call<any>('GET', '/v1/status').catch((e: Error) => ({ error: e.message }))
    console.log(`job: ${JSON.stringify(j).slice(0, 3000)}\nlate member's training: ${JSON.stringify(st.training ?? st).slice(0, 3000)}`)
    for (const n of [late, submitter, ...providers]) {
      const t = await n.api.call<any>('GET', '/v1/status').catch((e: Error) => ({ training: { error: e.message } }))
      console.log(`--- ${n.spec.name} training routes: ${JSON.stringify(t.training?.trainingRoutes ?? t.training).slice(0, 2000)}`)
    }
    for (const n of [late, submitter, ...providers]) console.log(`--- ${n.spec.name} log tail\n${net.logOf(n).split('\n').filter(l => /training|invit|state|join/i.test(l)).slice(-25).join('\n')}`)
    throw err
  }) // joining (discovery, invitation with its escrow check, trainer start, state) took 26 rounds on a loaded box: 200 rounds (~15 s on an idle one) leave room
  const end = await finished(jobId)
  assert.is(end.status, 'done', JSON.stringify(end.error))
  const firstRound = end.history.find((h: any) => h.members.includes(late.peerId))?.round
  console.log(`late member: state of round ${load.round} from ${load.from.slice(0, 16)}… (momentum of round ${load.optimizerRound}, norm ${load.optimizerNorm.toFixed(4)}), first round ${firstRound}; final accuracy ${(end.accuracy * 100).toFixed(2)}%`)
  // the joiner builds its trainer (seconds on a loaded box) while the group trains on: the state it
  // takes is that of the round it is admitted to, checked against the digest in that RoundStart
  assert.ok(load.round > 10, `loaded round ${load.round}`)
  assert.ok(peers.includes(load.from), 'loaded from a live member')
  assert.ok(load.optimizerRound > 0 && load.optimizerNorm > 0, 'the momentum came with the parameters')
  assert.ok(firstRound !== undefined && firstRound > 10, `first round ${firstRound}`)
  const last = end.history[end.history.length - 1]
  assert.is(last.members.length, 3)
  // all three reported the same digest of parameters and averaged momentum: the joiner holds the others' model,
  // so its accuracy is theirs
  assert.equal([...last.agreedBy].sort(), [...last.members].sort())
  assert.ok(end.accuracy >= 0.8, `accuracy ${end.accuracy}`)
})

test.run()
