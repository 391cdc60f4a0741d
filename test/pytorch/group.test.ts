// One training group with a real PyTorch member (trainers/torch_trainer.py on Debian's
// python3-torch, CPU) and a built-in member reaches the MNIST accuracy of a group of two built-in
// members, from the same spec (seed, data, shards). The PyTorch node's operator declares the
// trainer with `serves: [mlp]`, so the job is an ordinary built-in MLP job: the node gives the
// trainer its shard and the seeded start, and the group averages one vector in one layout.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createHost, type Host } from '../../src/net/host.js'
import { TrainingService } from '../../src/training/service.js'
import { TrainingTransport } from '../../src/training/transport.js'
import { TrainingSession, decodeModel, type TrainingResult } from '../../src/training/session.js'
import { TrainerRegistry } from '../../src/training/trainers.js'
import { createMlpTrainer } from '../../src/training/trainer.js'
import { parseTrainingSpec, type TrainingSpecInput } from '../../src/training/spec.js'
import { requireTorch, torchTrainer } from './fixtures/torch.js'

requireTorch()
const dir = mkdtempSync(join(tmpdir(), 'dbc-torch-group-'))
const hosts: Host[] = []
const services: TrainingService[] = []
test.after(async () => {
  for (const s of services) await s.stop()
  for (const h of hosts) await h.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** Few rounds of big local steps: ~93% for two built-in members, a 3-point margin over the goal. */
const GROUP_SPEC: TrainingSpecInput = {
  model: { kind: 'mlp', hidden: 64 },
  dataset: { trainPerClass: 600, testPerClass: 200 },
  groupSize: 2,
  rounds: 25,
  localSteps: 20,
  batchSize: 64,
  learningRate: 0.1,
  momentum: 0.9,
  seed: 3,
  evalEvery: 0,
  deadline: { initialMs: 60_000 }
}

async function makeHosts (n: number): Promise<Host[]> {
  const made = await Promise.all(Array.from({ length: n }, async () => await createHost({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], dhtServer: false, connectionMonitor: false })))
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await made[i].dial(made[j].getMultiaddrs()[0])
  for (let t = 0; t < 200 && !made.every(h => made.every(o => o === h || h.getConnections(o.peerId).length > 0)); t++) await new Promise(resolve => setTimeout(resolve, 20))
  hosts.push(...made)
  return made
}

/** Trains one job on a fresh coordinator and one member per entry of `members`, in rank order. */
async function train (members: Array<'torch' | 'builtin'>): Promise<{ result: TrainingResult, accuracy: number, startMs: number }> {
  const t0 = performance.now()
  let startMs = NaN
  const [coord, ...peers] = await makeHosts(1 + members.length)
  for (let i = 0; i < members.length; i++) {
    const trainers = members[i] === 'torch' ? new TrainerRegistry({ trainers: { 'torch-mlp': torchTrainer() }, dataDir: dir }) : undefined
    const s = new TrainingService(peers[i], { trainers })
    await s.start()
    services.push(s)
  }
  const transport = new TrainingTransport(coord)
  await transport.start()
  try {
    const session = new TrainingSession({ transport, peers: peers.map(h => h.peerId.toString()), spec: GROUP_SPEC, inviteTimeoutMs: 120_000 })
    // the time to the first round's end is mostly the members' start (PyTorch: import torch, load_data)
    session.on('progress', (p) => { if (p.round === 0) startMs = performance.now() - t0 - p.roundMs })
    const result = await session.run()
    // every member's view ends identical (fp32 all-reduce): score the final model with the built-in MLP
    const check = createMlpTrainer(session.spec, 0, 1)
    await check.setParams(decodeModel(result.model).params)
    return { result, accuracy: (await check.evaluate()).accuracy, startMs }
  } finally {
    await transport.stop()
  }
}

test('a PyTorch member and a built-in member reach >= 90% MNIST accuracy, within 2 points of two built-in members', async () => {
  const t0 = performance.now()
  // PyTorch at rank 0: it evaluates the last round, on the test set the node sent it
  const mixed = await train(['torch', 'builtin'])
  const t1 = performance.now()
  const pair = await train(['builtin', 'builtin'])
  const t2 = performance.now()
  console.log(`mixed group: ${(mixed.accuracy * 100).toFixed(2)}% in ${Math.round(t1 - t0)} ms (${Math.round(mixed.startMs)} ms to start); two built-in: ${(pair.accuracy * 100).toFixed(2)}% in ${Math.round(t2 - t1)} ms (${Math.round(pair.startMs)} ms to start)`)
  for (const run of [mixed, pair]) {
    assert.is(run.result.history.length, GROUP_SPEC.rounds)
    assert.is(run.result.members.length, 2)
    assert.ok(run.result.history.every(h => h.dropped.length === 0 && h.members.length === 2), 'no member dropped out')
  }
  assert.ok(Math.abs(mixed.result.accuracy - mixed.accuracy) < 1e-6, `PyTorch's own evaluation ${mixed.result.accuracy} is the built-in one's ${mixed.accuracy}`)
  assert.ok(mixed.accuracy >= 0.9, `mixed group accuracy ${mixed.accuracy}`)
  assert.ok(pair.accuracy >= 0.9, `built-in pair accuracy ${pair.accuracy}`)
  assert.ok(Math.abs(mixed.accuracy - pair.accuracy) <= 0.02, `mixed ${mixed.accuracy} vs built-in ${pair.accuracy}`)
  // the PyTorch member trained every round (its samples weigh in the average)
  const torchPeer = mixed.result.members[0]
  assert.is(mixed.result.metering.filter(m => m.peer === torchPeer && m.samples === 20 * 64).length, GROUP_SPEC.rounds)
  assert.equal(parseTrainingSpec(GROUP_SPEC).seed, 3)
})

test.run()
