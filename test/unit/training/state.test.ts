// The pure parts of training that survives: the state digest, the majority rule, the checks a
// joiner runs on a transfer (a lying donor is caught), shard choice for joiners, the optimizer
// schedule, and a coordinator resumed mid-job.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { agreedDigest, averagesOptimizer, joinerRank, replacementsWanted, stateDigest, stateProblem, toHexString, fromHexString, type TrainingState } from '../../../src/core/training/state.js'
import { RoundCoordinator } from '../../../src/core/training/coordinator.js'
import { stateSigner, verifyStateSignature } from '../../../src/training/state-sign.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'

const state = (over: Partial<TrainingState> = {}): TrainingState => ({ jobId: 'j1', round: 12, params: Float32Array.from([1, 2, 3, 4]), optimizer: Float32Array.from([0.5, -0.5, 0, 0.25]), optimizerRound: 12, ...over })

test('the digest covers the job, the round, the parameters and the optimizer state', () => {
  const d = toHexString(stateDigest(state()))
  assert.is(d, toHexString(stateDigest(state())))
  assert.is.not(d, toHexString(stateDigest(state({ jobId: 'j2' }))))
  assert.is.not(d, toHexString(stateDigest(state({ round: 13 }))))
  assert.is.not(d, toHexString(stateDigest(state({ params: Float32Array.from([1, 2, 3, 4.0001]) }))))
  assert.is.not(d, toHexString(stateDigest(state({ optimizer: Float32Array.from([0.5, -0.5, 0, 0.26]) }))))
  assert.is.not(d, toHexString(stateDigest(state({ optimizerRound: 9 }))))
  assert.equal(fromHexString(d), stateDigest(state()))
})

test('a digest counts when a strict majority of the round\'s members reported it', () => {
  assert.is(agreedDigest(['a', 'a', 'b'], 3), 'a')
  assert.is(agreedDigest(['a', 'b'], 2), undefined)
  assert.is(agreedDigest(['a', 'a'], 4), undefined, 'half of the members is no majority')
  assert.is(agreedDigest(['a', undefined, ''], 3), undefined)
  assert.is(agreedDigest(['a'], 1), 'a')
})

test('a joiner refuses a state that is not the agreed one, has the wrong size, round or values', () => {
  const honest = state()
  const digest = stateDigest(honest)
  const expect = { params: 4, optimizer: 4, round: 12, digest }
  assert.is(stateProblem(honest, expect), undefined)
  assert.match(stateProblem(state({ params: Float32Array.from([1, 2, 3, 9]) }), expect)!, /digest differs/)
  assert.match(stateProblem(state({ optimizer: Float32Array.from([50, -0.5, 0, 0.25]) }), expect)!, /digest differs/)
  assert.match(stateProblem(state({ params: new Float32Array(5) }), expect)!, /5 parameters/)
  assert.match(stateProblem(state({ optimizer: new Float32Array(3) }), expect)!, /3 optimizer values/)
  assert.match(stateProblem(state({ round: 13 }), expect)!, /round 13, expected 12/)
  assert.match(stateProblem(state({ params: Float32Array.from([1, NaN, 3, 4]) }), { params: 4, optimizer: 4 })!, /not finite/)
  assert.match(stateProblem(state({ optimizerRound: 20 }), { params: 4, optimizer: 4 })!, /newer/)
  // no momentum handed over yet (never averaged) is allowed
  assert.is(stateProblem(state({ optimizer: new Float32Array(0), optimizerRound: 0 }), { params: 4, optimizer: 4 }), undefined)
})

test('a state signature is the sender\'s: another key, or another digest, fails', async () => {
  const key = await generateKeyPair('Ed25519')
  const other = await generateKeyPair('Ed25519')
  const peer = peerIdFromPrivateKey(key).toString()
  const digest = stateDigest(state())
  const sig = stateSigner(key.raw.subarray(0, 32))(digest)
  assert.ok(verifyStateSignature(peer, digest, sig))
  assert.not.ok(verifyStateSignature(peerIdFromPrivateKey(other).toString(), digest, sig))
  assert.not.ok(verifyStateSignature(peer, stateDigest(state({ round: 1 })), sig))
  assert.not.ok(verifyStateSignature(peer, digest, new Uint8Array(3)))
  assert.not.ok(verifyStateSignature('not-a-peer', digest, sig))
})

test('joiners take a free shard first, then the least used one; the group grows back to its size', () => {
  assert.is(joinerRank(3, [0, 2]), 1)
  assert.is(joinerRank(2, [0, 1]), 0)
  assert.is(joinerRank(2, [0, 0, 1]), 1)
  assert.is(replacementsWanted(4, 2, 1), 1)
  assert.is(replacementsWanted(2, 3, 0), 0)
})

test('the optimizer is averaged every N rounds (default 5), never with 0', () => {
  assert.is(parseTrainingSpec({}).averageOptimizerEvery, 5)
  assert.equal([0, 1, 2, 3, 4, 5, 9].map(r => averagesOptimizer(r, 5)), [false, false, false, false, true, false, true])
  assert.not.ok(averagesOptimizer(4, 0))
})

test('a resumed coordinator starts at its checkpoint round with its digest, and passes agreed digests on', () => {
  const c = new RoundCoordinator({ members: ['a', 'b', 'c'], rounds: 10, startRound: 7, startDigest: 'd7' })
  c.start(0)
  const [start] = c.poll()
  assert.equal(start, { kind: 'roundStart', to: ['a', 'b', 'c'], round: 7, members: ['a', 'b', 'c'], deadlineMs: 30_000, stateDigest: 'd7' })
  const rep = (stateDigest: string): any => ({ round: 7, loss: 1, accuracy: NaN, computeMs: 1, samples: 1, timedOut: false, dropped: [], bytesSent: 0, stateDigest })
  c.handleReport(1, 'a', rep('d8'))
  c.handleReport(2, 'b', rep('d8'))
  c.handleReport(3, 'c', rep('liar'))
  const out = c.poll()
  const progress = out.find(o => o.kind === 'progress') as any
  assert.is(progress.stateDigest, 'd8')
  assert.equal(progress.agreedBy, ['a', 'b'])
  const next = out.find(o => o.kind === 'roundStart') as any
  assert.is(next.round, 8)
  assert.is(next.stateDigest, 'd8')
  assert.is(c.upcomingRound, 8)
})

test.run()
