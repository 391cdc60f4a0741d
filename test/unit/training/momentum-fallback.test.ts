// Momentum averaging with a member whose momentum never comes: the survivors of the first averaging
// with a silent member still end the round with the same state (review s11 L2); a member whose
// momentum slices are lost is reported dropped; a round whose RoundStart says a member keeps no
// optimizer state averages none (session 13). In-process transports, real workers.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { TrainingMessage } from '../../../src/training/transport.js'
import { hubTransport, type HubTransport } from './hub-transport.js'
import { TrainingWorker } from '../../../src/training/worker.js'
import { createMlpTrainer, type Trainer } from '../../../src/training/trainer.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'

const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 2, batchSize: 8, evalEvery: 0, rounds: 5, averageOptimizerEvery: 1 })
type Report = NonNullable<TrainingMessage['report']>

/**
 * Round 0 of job 'j' on two real workers (a, b) plus `extra` members that never answer; `setup`
 * may change b (its transport or trainer) first. Resolves with a's and b's reports.
 */
async function round0 (opts: { extra?: string[], deadlineMs: number, optimizerSkip?: boolean, setup?: (a: HubTransport, b: HubTransport) => Trainer | undefined }): Promise<{ ra: Report, rb: Report, a: HubTransport, b: HubTransport }> {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub)
  const a = await hubTransport(hub)
  const b = await hubTransport(hub)
  const trainerB = opts.setup?.(a, b) ?? createMlpTrainer(spec, 1, 2)
  const workers = [new TrainingWorker({ transport: a, jobId: 'j', coordinator: coordinator.self, spec, trainer: createMlpTrainer(spec, 0, 2) }), new TrainingWorker({ transport: b, jobId: 'j', coordinator: coordinator.self, spec, trainer: trainerB })]
  for (const w of workers) await w.start()
  const reports = new Map<string, Report>()
  const got = new Promise<void>(resolve => {
    coordinator.listen((from, msg) => {
      if (msg.report == null) return
      reports.set(from, msg.report)
      if (reports.size === 2) resolve()
    })
  })
  const members = [a.self, b.self, ...(opts.extra ?? [])]
  for (const t of [a, b]) coordinator.send(t.self, { roundStart: { jobId: 'j', round: 0, members, deadlineMs: opts.deadlineMs, addrs: [], ...(opts.optimizerSkip === true ? { optimizerSkip: true } : {}) } })
  await got
  for (const w of workers) await w.stop()
  return { ra: reports.get(a.self)!, rb: reports.get(b.self)!, a, b }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('a silent member\'s momentum slice in the first averaging: the survivors report the same state', async () => {
  const ghost = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const { ra, rb } = await round0({ extra: [ghost], deadlineMs: 1000 })
  assert.ok(ra.timedOut && rb.timedOut, 'the ghost\'s slices never came')
  assert.equal(hex(ra.stateHash), hex(rb.stateHash), 'the survivors hold different momentum')
})

test('a member whose momentum slices never come, its parameters\' did: the round\'s report names it dropped and timed out', async () => {
  // b's momentum slices (vector 1) to a are lost; everything else arrives
  const { ra, b } = await round0({
    deadlineMs: 1000,
    setup: (a, b) => {
      const send = b.send.bind(b)
      b.send = (to, msg) => { if (to === a.self && msg.slice != null && msg.slice.vector === 1) return; send(to, msg) }
      return undefined
    }
  })
  assert.ok(ra.dropped.includes(b.self), `a's report: dropped ${JSON.stringify(ra.dropped)}`)
  assert.ok(ra.timedOut)
})

test('a round whose RoundStart says a member keeps no optimizer state averages no momentum: nobody waits for slices that never come', async () => {
  // b: an external trainer's member (no optimizer state to average)
  const { ra, rb } = await round0({
    deadlineMs: 3000,
    optimizerSkip: true,
    setup: () => {
      const t = createMlpTrainer(spec, 1, 2)
      return { paramCount: t.paramCount, step: t.step.bind(t), getParams: t.getParams.bind(t), setParams: t.setParams.bind(t), evaluate: t.evaluate.bind(t), close: t.close.bind(t) }
    }
  })
  assert.equal(ra.dropped, [], 'a waited for b\'s momentum slices')
  assert.not.ok(ra.timedOut)
  assert.equal(hex(ra.stateHash), hex(rb.stateHash), 'both hold the same state')
})

test.run()
