// Training jobs from the CLI (found by helper user on real daemons): a member stopped with SIGTERM
// mid-job showed only as "2 peers" turning into "1 peers" (the event's `dropped` is a list of peer
// ids, compared with 0 as a number), and `dbc job status` never said who left; a manifest with a
// misspelt `type: trainig` was read as a grid manifest and failed on executor/code/inputs; and
// `dbc job submit train.yaml --yes` never sent allowTopUp (checked against a stand-in daemon).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readTrainingManifest, trainingProgressLine, trainingStatusLines } from '../../../src/cli/training.js'
import { ManifestError } from '../../../src/errors.js'
import { standInNode } from '../../helpers/cli.js'

const A = '12D3KooWLcAnXiM93Zeh1cEE9BYgFYue37K2dLHCDZPSGnuu5off'
const B = '12D3KooWPuvxcDyJXqndSN3WRUJScqdmAJ3XWsQTWvJ3Zp9dk2bH'

test('a progress line names the member dropped in that round; one peer is "1 peer"', () => {
  // the event /v1/training/:id/events sent for the round where member A was stopped
  const line = trainingProgressLine({ type: 'progress', round: 54, loss: 0.0184, accuracy: null, members: 2, dropped: [A], roundMs: 1794.8 })
  assert.is(line, 'round 55: loss 0.0184, accuracy -, 2 peers, 1795 ms, dropped 12D3KooWLcAnXiM9… (late or silent: the round averaged without some of its part)')
  assert.is(trainingProgressLine({ round: 55, loss: 0.0084, accuracy: null, members: 1, dropped: [], roundMs: 75 }), 'round 56: loss 0.0084, accuracy -, 1 peer, 75 ms')
  // peer text is made printable, and a long list is cut
  const many = trainingProgressLine({ round: 0, members: 1, dropped: ['x\u001b[2J', 'b', 'c', 'd', 'e', 'f'], roundMs: 1 })
  assert.not.match(many, '\u001b')
  assert.match(many, /and 2 more/)
})

test('`dbc job status` of a training job lists who dropped out and in which round', () => {
  const t = {
    jobId: '2f03f5baae60c5a3',
    status: 'running',
    round: 214,
    rounds: 300,
    loss: 0.0003,
    accuracy: 0.935,
    members: [B],
    refusals: [],
    error: null,
    routing: 'auto',
    routes: { [B]: { kind: 'direct', relays: [] } },
    history: [
      { round: 53, members: [A, B], dropped: [] },
      { round: 54, members: [A, B], dropped: [A] },
      { round: 55, members: [B], dropped: [] }
    ]
  }
  const lines = trainingStatusLines(t)
  assert.is(lines[0], 'training job 2f03f5baae60c5a3: running, round 215/300, loss 0.0003, accuracy 93.50%, 1 member')
  assert.ok(lines.includes('dropped 12D3KooWLcAnXiM9… in round 55'), lines.join('\n'))
  assert.ok(lines.includes('  12D3KooWPuvxcDyJ…: direct'), lines.join('\n'))
})

test('a manifest whose type is not training is refused naming the field, not read as a grid job', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-training-type-'))
  try {
    const typo = join(dir, 'typo.yaml')
    writeFileSync(typo, 'type: trainig\nmodel: { kind: mlp, hidden: 64 }\n')
    const err = await readTrainingManifest(typo).then(() => undefined, (e: unknown) => e)
    assert.instance(err, ManifestError)
    assert.match((err as Error).message, 'type: "trainig" is not a job type')
    const grid = join(dir, 'grid.yaml')
    writeFileSync(grid, 'name: g\nexecutor: wasm\n')
    assert.is(await readTrainingManifest(grid), undefined, 'no type: a grid manifest')
    const training = join(dir, 'train.yaml')
    writeFileSync(training, 'type: training\nname: n\nrounds: 3\n')
    assert.equal(await readTrainingManifest(training), { spec: { rounds: 3 }, peers: undefined, name: 'n' }, 'the name goes to the job, not into the spec')
    // a field beside a training: section would be dropped unread (review s13 L3)
    const beside = join(dir, 'beside.yaml')
    writeFileSync(beside, 'type: training\nrounds: 5\ntraining: { model: { kind: mlp } }\n')
    const e2 = await readTrainingManifest(beside).then(() => undefined, (e: unknown) => e)
    assert.instance(e2, ManifestError)
    assert.match((e2 as Error).message, 'rounds: a training manifest with a training: section takes the spec\'s fields there')
    const routed = join(dir, 'routed.yaml')
    writeFileSync(routed, 'type: training\nrouting: overlay\ntraining: { rounds: 2 }\n')
    assert.equal((await readTrainingManifest(routed))?.spec, { rounds: 2, routing: 'overlay' }, 'routing beside it is the job\'s')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('--yes on a training manifest lets its escrow be topped up (allowTopUp), as on a grid one', async () => {
  const bodies: unknown[] = []
  const node = await standInNode('dbc-training-yes-', (req, _res, { url, body, json }) => {
    if (req.method === 'POST' && url === '/v1/training') bodies.push(JSON.parse(body))
    json(200, { jobId: 'feed'.repeat(4) })
  })
  try {
    writeFileSync(join(node.dataDir, 'train.yaml'), 'type: training\nrounds: 3\n')
    for (const extra of [['--yes'], []]) {
      const r = await node.dbc('job', 'submit', join(node.dataDir, 'train.yaml'), '--detach', ...extra)
      assert.is(r.code, 0, r.stderr)
    }
    assert.equal(bodies.map(b => (b as { allowTopUp?: boolean }).allowTopUp), [true, false])
  } finally {
    await node.close()
  }
})

test('a training job\'s status names the job and says when its group is smaller than the spec asked', () => {
  const t = { jobId: 'abc', name: 'mnist-mlp', groupSize: 4, status: 'running', round: 2, rounds: 20, loss: 0.5, accuracy: null, members: [A, B], history: [] }
  assert.match(trainingStatusLines(t)[0], /^training job abc \(mnist-mlp\): running, round 3\/20, .*2 members of 4 asked \(looking for more\)$/)
  assert.not.match(trainingStatusLines({ ...t, groupSize: 2 })[0], /asked/)
  assert.not.match(trainingStatusLines({ ...t, status: 'done' })[0], /asked/)
  assert.not.match(trainingStatusLines({ ...t, name: 'training' })[0], /\(training\)/)
  assert.not.match(trainingStatusLines({ ...t, members: [], round: -1 })[0], /asked/, 'before the first round: no group yet')
})

test('a training job\'s status says who turned the momentum averaging off (a member\'s no_optimizer claim; review s13 L8)', () => {
  const t = { jobId: 'abc', status: 'running', round: 2, rounds: 20, loss: 0.5, accuracy: null, members: [A, B], history: [] }
  assert.not.ok(trainingStatusLines(t).some(l => /momentum/.test(l)))
  assert.not.ok(trainingStatusLines({ ...t, momentumOffBy: [] }).some(l => /momentum/.test(l)))
  const lines = trainingStatusLines({ ...t, momentumOffBy: [B] })
  assert.ok(lines.includes('momentum averaging off: 12D3KooWPuvxcDyJ… keeps no optimizer state (its invitation reply said so); each member\'s momentum stays its own'), lines.join('\n'))
  assert.match(trainingStatusLines({ ...t, momentumOffBy: [A, B] }).join('\n'), /momentum averaging off: 12D3KooWLcAnXiM9…, 12D3KooWPuvxcDyJ… keep no optimizer state \(their/)
})

test.run()
