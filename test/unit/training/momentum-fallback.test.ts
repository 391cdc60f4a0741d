// The first momentum averaging of a job, with a member that went silent: the survivors still end
// the round with the same state (review s11 L2). In-process transports, two real workers and a ghost.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { TrainingMessage } from '../../../src/training/transport.js'
import { hubTransport, type HubTransport } from './hub-transport.js'
import { TrainingWorker } from '../../../src/training/worker.js'
import { createMlpTrainer } from '../../../src/training/trainer.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'

test('a silent member\'s momentum slice in the first averaging: the survivors report the same state', async () => {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub)
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 2, batchSize: 8, evalEvery: 0, rounds: 5, averageOptimizerEvery: 1 })
  const a = await hubTransport(hub)
  const b = await hubTransport(hub)
  const ghost = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  const workers = [a, b].map((t, rank) => new TrainingWorker({ transport: t, jobId: 'j', coordinator: coordinator.self, spec, trainer: createMlpTrainer(spec, rank, 2) }))
  for (const w of workers) await w.start()
  const reports = new Map<string, TrainingMessage['report']>()
  const got = new Promise<void>(resolve => {
    coordinator.listen((from, msg) => {
      if (msg.report == null) return
      reports.set(from, msg.report)
      if (reports.size === 2) resolve()
    })
  })
  const members = [a.self, b.self, ghost]
  for (const t of [a, b]) coordinator.send(t.self, { roundStart: { jobId: 'j', round: 0, members, deadlineMs: 1000, addrs: [] } })
  await got
  const [ra, rb] = [reports.get(a.self)!, reports.get(b.self)!]
  assert.ok(ra.timedOut && rb.timedOut, 'the ghost\'s slices never came')
  assert.equal(Buffer.from(ra.stateHash).toString('hex'), Buffer.from(rb.stateHash).toString('hex'), 'the survivors hold different momentum')
  for (const w of workers) await w.stop()
})

test('a member whose momentum slices never come, its parameters\' did: the round\'s report names it dropped and timed out', async () => {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub)
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 2, batchSize: 8, evalEvery: 0, rounds: 5, averageOptimizerEvery: 1 })
  const a = await hubTransport(hub)
  const b = await hubTransport(hub)
  // b's momentum slices (vector 1) to a are lost; everything else arrives
  const send = b.send.bind(b)
  b.send = (to, msg) => { if (to === a.self && msg.slice != null && msg.slice.vector === 1) return; send(to, msg) }
  const workers = [a, b].map((t, rank) => new TrainingWorker({ transport: t, jobId: 'j', coordinator: coordinator.self, spec, trainer: createMlpTrainer(spec, rank, 2) }))
  for (const w of workers) await w.start()
  const reports = new Map<string, TrainingMessage['report']>()
  const got = new Promise<void>(resolve => {
    coordinator.listen((from, msg) => {
      if (msg.report == null) return
      reports.set(from, msg.report)
      if (reports.size === 2) resolve()
    })
  })
  const members = [a.self, b.self]
  for (const t of [a, b]) coordinator.send(t.self, { roundStart: { jobId: 'j', round: 0, members, deadlineMs: 1000, addrs: [] } })
  await got
  const ra = reports.get(a.self)!
  assert.ok(ra.dropped.includes(b.self), `a's report: dropped ${JSON.stringify(ra.dropped)}`)
  assert.ok(ra.timedOut)
  for (const w of workers) await w.stop()
})

test('a round whose RoundStart says a member keeps no optimizer state averages no momentum: nobody waits for slices that never come', async () => {
  const hub: HubTransport[] = []
  const coordinator = await hubTransport(hub)
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 8 }, dataset: { trainPerClass: 10, testPerClass: 5 }, localSteps: 2, batchSize: 8, evalEvery: 0, rounds: 5, averageOptimizerEvery: 1 })
  const a = await hubTransport(hub)
  const b = await hubTransport(hub)
  // b: an external trainer's member (no optimizer state to average)
  const plain = createMlpTrainer(spec, 1, 2) as any
  const external = { ...plain, paramCount: plain.paramCount, step: plain.step.bind(plain), getParams: plain.getParams.bind(plain), setParams: plain.setParams.bind(plain), evaluate: plain.evaluate.bind(plain), close: plain.close.bind(plain), getOptimizerState: undefined, setOptimizerState: undefined }
  const workers = [new TrainingWorker({ transport: a, jobId: 'j', coordinator: coordinator.self, spec, trainer: createMlpTrainer(spec, 0, 2) }), new TrainingWorker({ transport: b, jobId: 'j', coordinator: coordinator.self, spec, trainer: external })]
  for (const w of workers) await w.start()
  const reports = new Map<string, TrainingMessage['report']>()
  const got = new Promise<void>(resolve => {
    coordinator.listen((from, msg) => {
      if (msg.report == null) return
      reports.set(from, msg.report)
      if (reports.size === 2) resolve()
    })
  })
  const members = [a.self, b.self]
  for (const t of [a, b]) coordinator.send(t.self, { roundStart: { jobId: 'j', round: 0, members, deadlineMs: 3000, addrs: [], optimizerSkip: true } })
  await got
  const ra = reports.get(a.self)!
  assert.equal(ra.dropped, [], 'a waited for b\'s momentum slices')
  assert.not.ok(ra.timedOut)
  assert.equal(Buffer.from(ra.stateHash).toString('hex'), Buffer.from(reports.get(b.self)!.stateHash).toString('hex'), 'both hold the same state')
  for (const w of workers) await w.stop()
})

test.run()
