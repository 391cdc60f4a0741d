// Loading a training state: a late answer to an earlier request of ours is not taken for this one
// (review s11 M4, its reproducer); a donor hands one peer the same round's state at most once per
// STATE_SERVE_GAP_MS (review s11 H1; test/integration/training-state-requests.test.ts with real hosts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { TrainingWorker, floatsToBytes } from '../../../src/training/worker.js'
import { createMlpTrainer } from '../../../src/training/trainer.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { stateSigner } from '../../../src/training/state-sign.js'
import { stateDigest } from '../../../src/core/training/state.js'
import { StateServeLog, STATE_SERVE_GAP_MS } from '../../../src/training/state-serve.js'

/**
 * A worker of job 'j' (coordinator 'coord') on a transport double that records what it sends,
 * and a donor identity that signs states; `listener` delivers a message to the worker.
 */
async function workerWithDonor (specExtra: Record<string, unknown> = {}): Promise<{ donor: string, sign: (digest: Uint8Array) => Uint8Array, sent: any[], listener: (from: string, msg: any) => void, trainer: ReturnType<typeof createMlpTrainer>, w: TrainingWorker }> {
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 1, batchSize: 8, evalEvery: 0, rounds: 20, ...specExtra })
  const key = await generateKeyPair('Ed25519')
  const donor = peerIdFromPrivateKey(key).toString()
  const sign = stateSigner(key.raw.subarray(0, 32))
  let deliver: ((from: string, msg: any) => void) | undefined
  const sent: any[] = []
  const transport: any = {
    self: 'me', stats: { bytesSent: 0, sendBusyMs: 0 },
    listen: (fn: any) => { deliver = fn; return () => {} },
    send: (to: string, msg: any) => { sent.push({ to, msg }) },
    jobRoutes: { set () {}, delete () {} },
    overlay: { node: () => undefined },
    learnAddresses: async () => {}
  }
  const trainer = createMlpTrainer(spec, 0, 1)
  const w = new TrainingWorker({ transport, jobId: 'j', coordinator: 'coord', spec, trainer })
  await w.start()
  return { donor, sign, sent, listener: (from, msg) => { deliver!(from, msg) }, trainer, w }
}

test('a stale answer from the donor (an earlier round) is passed over; the right one that follows is loaded', async () => {
  const { donor, sign, sent, listener, trainer, w } = await workerWithDonor()
  const params = await trainer.getParams()
  const answer = (round: number): any => {
    const st = { jobId: 'j', round, params, optimizer: new Float32Array(0), optimizerRound: 0 }
    return { stateResponse: { jobId: 'j', round, params: floatsToBytes(params), optimizer: new Uint8Array(0), optimizerRound: 0, final: false, signature: sign(stateDigest(st)) } }
  }
  const load = w.joinFrom([donor], { fromRound: 6, timeoutMs: 3000 })
  await new Promise(resolve => setTimeout(resolve, 50))
  listener(donor, answer(5)) // the late answer to a request of the round before
  listener(donor, answer(6)) // the answer this load asked for, right behind it
  const folded = await load
  await w.stop()
  assert.is(folded, 6, 'the load took the stale answer and failed')
  assert.equal(w.loads.map(l => l.round), [6])
  assert.is(sent.filter(s => s.msg.stateRequest != null).length, 1)
})

test('a joiner whose group moved on while it set up takes a later round\'s signed state, and checks it against the next RoundStart before training on it', async () => {
  const { donor, sign, sent, listener, trainer, w } = await workerWithDonor()
  const params = await trainer.getParams()
  const st = (round: number): any => ({ jobId: 'j', round, params, optimizer: new Float32Array(0), optimizerRound: 0 })
  // invited for round 6 (with round 6's agreed digest); the donor is at round 9 when it answers
  const load = w.joinFrom([donor], { fromRound: 6, digest: stateDigest(st(6)), timeoutMs: 3000 })
  await new Promise(resolve => setTimeout(resolve, 50))
  listener(donor, { stateResponse: { jobId: 'j', round: 9, params: floatsToBytes(params), optimizer: new Uint8Array(0), optimizerRound: 0, final: false, signature: sign(stateDigest(st(9))) } })
  // before: "state of round 9, expected 6": refused, the join sent with no state (-1)
  assert.is(await load, 9)
  assert.ok(sent.some(s => s.to === 'coord' && s.msg.join != null), 'the join is sent')
  // its first round's agreed digest is not the held one: it asks a member for the state first
  const before = sent.filter(s => s.msg.stateRequest != null).length
  listener('coord', { roundStart: { jobId: 'j', round: 9, members: ['me', donor], deadlineMs: 2000, addrs: [], stateHash: new Uint8Array(32).fill(7), bandwidths: [], optimizerSkip: false } })
  await new Promise(resolve => setTimeout(resolve, 100))
  await w.stop()
  assert.ok(sent.filter(s => s.msg.stateRequest != null).length > before, 'trained on a state no RoundStart agreed on')
})

test('a later round\'s state whose round the group has not reached (a member that lies about it) does not make the joiner sit out: its first round loads the agreed state (review16a)', async () => {
  const { donor, sign, sent, listener, trainer, w } = await workerWithDonor()
  const params = await trainer.getParams()
  const st = (round: number): any => ({ jobId: 'j', round, params, optimizer: new Float32Array(0), optimizerRound: 0 })
  const answer = (round: number): any => ({ stateResponse: { jobId: 'j', round, params: floatsToBytes(params), optimizer: new Uint8Array(0), optimizerRound: 0, final: false, signature: sign(stateDigest(st(round))) } })
  const until = async (pred: () => boolean): Promise<void> => { for (let i = 0; i < 300 && !pred(); i++) await new Promise(resolve => setTimeout(resolve, 10)) }
  // invited for round 6; the donor (a member of the group, hostile) hands a signed state "of round 1,000,000"
  const load = w.joinFrom([donor], { fromRound: 6, digest: stateDigest(st(6)), timeoutMs: 3000 })
  await new Promise(resolve => setTimeout(resolve, 50))
  listener(donor, answer(1_000_000))
  await load
  // the group is at round 7 and includes the joiner: it must load round 7's agreed state (then train),
  // not skip every round as already done (silent, it is dropped: the join was for nothing)
  const requested = (): number => sent.filter(s => s.msg.stateRequest != null).length
  const before = requested()
  listener('coord', { roundStart: { jobId: 'j', round: 7, members: ['me', donor], deadlineMs: 3000, addrs: [], stateHash: stateDigest(st(7)), bandwidths: [], optimizerSkip: false } })
  await until(() => requested() > before)
  assert.ok(requested() > before, 'the joiner sat the round out: it took the donor\'s round 1,000,000 for its own')
  listener(donor, answer(7))
  await until(() => sent.some(s => s.msg.report?.round === 7))
  await w.stop()
  assert.ok(sent.some(s => s.msg.report?.round === 7), 'round 7 ran from the agreed state')
  assert.equal(w.loads.map(l => l.round), [1_000_000, 7])
})

test('a member whose state is not the agreed one (its all-reduce reached nobody) loads the agreed state before its next round (review s11 L3)', async () => {
  const { donor, sign, sent, listener, trainer, w } = await workerWithDonor({ averageOptimizerEvery: 0 })
  const until = async (pred: () => boolean): Promise<void> => { for (let i = 0; i < 300 && !pred(); i++) await new Promise(resolve => setTimeout(resolve, 10)) }
  const roundStart = (round: number, members: string[], stateHash?: Uint8Array): any => ({ roundStart: { jobId: 'j', round, members, deadlineMs: 1500, addrs: [], bandwidths: [], stateHash: stateHash ?? new Uint8Array(0) } })
  const reported = (round: number): boolean => sent.some(s => s.msg.report?.round === round)
  // round 0 alone: this member now holds its own state
  listener('coord', roundStart(0, ['me']))
  await until(() => reported(0))
  // the others agreed on another state (what the fallback gave them): the round names its digest
  const params = (await trainer.getParams()).map(v => v + 0.01)
  const agreed = { jobId: 'j', round: 1, params, optimizer: new Float32Array(0), optimizerRound: 0 }
  listener('coord', roundStart(1, ['me', donor], stateDigest(agreed)))
  await until(() => sent.some(s => s.to === donor && s.msg.stateRequest != null) || reported(1))
  assert.ok(sent.some(s => s.to === donor && s.msg.stateRequest != null), 'the member ran the round from a state the others do not hold')
  listener(donor, { stateResponse: { jobId: 'j', round: 1, params: floatsToBytes(params), optimizer: new Uint8Array(0), optimizerRound: 0, final: false, signature: sign(stateDigest(agreed)) } })
  await until(() => reported(1))
  assert.equal(w.loads.map(l => [l.from, l.round]), [[donor, 1]])
  // a round that starts from the state it holds loads nothing
  const held = sent.find(s => s.msg.report?.round === 1).msg.report.stateHash
  listener('coord', roundStart(2, ['me', donor], held))
  await until(() => reported(2))
  assert.is(w.loads.length, 1)
  await w.stop()
})

test('a stopped worker asks no donor for the state any more (review s11 L1)', async () => {
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 1, batchSize: 8, evalEvery: 0, rounds: 20 })
  const sent: any[] = []
  const transport: any = {
    self: 'me', stats: { bytesSent: 0, sendBusyMs: 0 },
    listen: () => () => {},
    send: (to: string, msg: any) => { sent.push({ to, msg }) },
    jobRoutes: { set () {}, delete () {} },
    overlay: { node: () => undefined }
  }
  const w = new TrainingWorker({ transport, jobId: 'j', coordinator: 'coord', spec, trainer: createMlpTrainer(spec, 0, 1) })
  await w.start()
  // silent donors: each would be asked, and waited for, in turn
  const load = w.joinFrom(['d1', 'd2', 'd3'], { fromRound: 6, timeoutMs: 200 })
  await new Promise(resolve => setTimeout(resolve, 50))
  await w.stop() // e.g. the service restarted the job's worker for a re-invitation
  assert.is(await load, -1)
  await new Promise(resolve => setTimeout(resolve, 700))
  assert.equal(sent.map(s => [s.to, Object.keys(s.msg)[0]]), [['d1', 'stateRequest']], 'the stopped worker went on asking')
})

test('a donor hands a peer the same round\'s state once per gap; a later round, or after the gap, again', () => {
  const log = new StateServeLog()
  assert.ok(log.allow('p', 3, 0))
  assert.not.ok(log.allow('p', 3, 10))
  assert.not.ok(log.allow('p', 3, STATE_SERVE_GAP_MS - 1))
  assert.ok(log.allow('q', 3, 10), 'another peer')
  assert.ok(log.allow('p', 4, 20), 'a later round')
  assert.ok(log.allow('p', 4, 20 + STATE_SERVE_GAP_MS), 'after the gap')
  for (let i = 0; i < 1000; i++) log.allow(`x${i}`, 1, 30)
  assert.ok(log.allow('p', 4, 40), 'bounded: the oldest fell out')
})

test.run()
