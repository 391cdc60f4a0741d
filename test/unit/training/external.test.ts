import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { fileURLToPath } from 'node:url'
import { PassThrough } from 'node:stream'
import { ExternalTrainer, ExternalFrameReader, encodeExternalFrame } from '../../../src/training/external.js'
import { TrainerRegistry } from '../../../src/training/trainers.js'
import { createMlpTrainer, initialMlp } from '../../../src/training/trainer.js'
import { parseTrainingSpec } from '../../../src/training/spec.js'
import { fixtureTrainer } from './fixtures/trainer-config.js'

const fixture = fileURLToPath(new URL('./fixtures/external-trainer.ts', import.meta.url))
const command = (...extra: string[]): string[] => [process.execPath, '--import', 'tsx', '--no-warnings', fixture, ...extra]

test('frames split and joined at any byte boundary decode the same', () => {
  const a = encodeExternalFrame({ id: 1, op: 'step', steps: 3 })
  const b = encodeExternalFrame({ id: 2, op: 'get_params', params: new Uint8Array([1, 2, 3, 4]) })
  const all = Buffer.concat([a, b])
  for (let cut = 0; cut <= all.length; cut++) {
    const r = new ExternalFrameReader()
    const msgs = [...r.push(all.subarray(0, cut)), ...r.push(all.subarray(cut))]
    assert.is(msgs.length, 2)
    assert.is(msgs[0].steps, 3)
    assert.equal(Array.from(msgs[1].params as Uint8Array), [1, 2, 3, 4])
  }
})

test('an oversized frame is refused before it is buffered', () => {
  const r = new ExternalFrameReader(100)
  const head = Buffer.alloc(4)
  head.writeUInt32BE(1000, 0)
  assert.throws(() => r.push(head), /exceeds/)
})

test('a child process drives the protocol: hello, get/set params, step, push_update, evaluate', async () => {
  const t = await ExternalTrainer.spawn(command(), { rank: 0, shards: 1, seed: 3, batch_size: 16 })
  try {
    assert.is(t.paramCount, 784 * 64 + 64 + 640 + 10)
    const p0 = await t.getParams()
    assert.is(p0.length, t.paramCount)
    const step = await t.step(20)
    assert.is(step.samples, 320)
    assert.ok(step.loss > 0 && Number.isFinite(step.loss))
    const p1 = await t.getParams()
    assert.ok(p1.some((x, i) => x !== p0[i]), 'steps changed the parameters')
    await t.setParams(p0)
    assert.equal(Array.from(await t.getParams()), Array.from(p0))
    const delta = new Float32Array(p0.length).fill(0.5)
    await t.pushUpdate(delta)
    const p2 = await t.getParams()
    assert.ok(Math.abs(p2[7] - (p0[7] + 0.5)) < 1e-6)
    const ev = await t.evaluate()
    assert.ok(ev.accuracy >= 0 && ev.accuracy <= 1)
  } finally {
    await t.close()
  }
})

test('an error in the trainer comes back as a TrainingError, and the trainer stays usable', async () => {
  const t = await ExternalTrainer.spawn(command('--fail-step'), {})
  try {
    try {
      await t.step(1)
      assert.unreachable('step should fail')
    } catch (err) {
      assert.is((err as Error).name, 'TrainingError')
      assert.match((err as Error).message, /out of memory/)
    }
    assert.is((await t.getParams()).length, t.paramCount)
  } finally {
    await t.close()
  }
})

test('a trainer that goes away fails pending requests instead of hanging', async () => {
  const toNode = new PassThrough()
  const fromNode = new PassThrough()
  const t = new ExternalTrainer(toNode, fromNode)
  const pending = t.request('step', { steps: 1 })
  toNode.end()
  try {
    await pending
    assert.unreachable()
  } catch (err) {
    assert.is((err as any).code, 'EXTERNAL_TRAINER_GONE')
  }
})

test('the node delivers the member\'s shard, the test set and the seeded start (load_data, set_params)', async () => {
  // full batches of the 100-sample shard: the same steps as a built-in member of rank 1 only on the same shard
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 16 }, dataset: { trainPerClass: 20, testPerClass: 10 }, batchSize: 100, learningRate: 0.1, seed: 11 })
  const registry = new TrainerRegistry({ trainers: { 'stand-in': fixtureTrainer([], { serves: ['mlp'] }) } })
  assert.is(registry.serving('mlp'), 'stand-in')
  const t = await registry.start('stand-in', { rank: 1, shards: 2, spec })
  try {
    assert.equal(Array.from(await t.getParams()), Array.from(initialMlp(spec).params))
    const builtin = createMlpTrainer(spec, 1, 2)
    const a = await t.step(2)
    const b = await builtin.step(2)
    assert.is(a.samples, 200)
    const pa = await t.getParams()
    const pb = await builtin.getParams()
    let diff = 0
    for (let i = 0; i < pa.length; i++) diff = Math.max(diff, Math.abs(pa[i] - pb[i]))
    assert.ok(diff < 1e-5, `the external member trained on another shard (max difference ${diff})`)
    const ev = await t.evaluate()
    assert.ok(Math.abs(ev.accuracy - (await builtin.evaluate()).accuracy) < 1e-9, 'evaluated on the same test set')
  } finally {
    await t.close()
  }
})

test('an external trainer whose model does not match the spec\'s MLP is refused', async () => {
  const spec = parseTrainingSpec({ model: { kind: 'mlp', hidden: 16 }, dataset: { trainPerClass: 20, testPerClass: 10 } })
  const registry = new TrainerRegistry({ trainers: { odd: fixtureTrainer(['--params=1234'], { serves: ['mlp'] }) } })
  try {
    await registry.start('odd', { rank: 0, shards: 1, spec })
    assert.unreachable()
  } catch (err) {
    assert.is((err as any).code, 'TRAINER_SPAWN_FAILED')
    assert.match((err as Error).message, /1234 parameters, the spec's MLP 12730/)
  }
})

test.run()
