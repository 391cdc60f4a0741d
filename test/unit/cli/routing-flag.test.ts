// `--routing auto|direct|overlay`: `dbc job submit --routing` overrides the manifest's routing
// (what the daemon receives, checked against a stand-in daemon); `dbc node start --routing` sets
// the config's routing.mode; a bad value is a BAD_ARGUMENT naming the flag and the choices, exit
// 1, no stack trace, before anything is read, sent or started. A training job takes it too: it
// becomes its spec's `routing` (between its coordinator and members; src/training/overlay-route.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseRoutingFlag } from '../../../src/cli/job.js'
import { loadConfig } from '../../../src/node/config.js'
import { validateManifest } from '../../../src/core/scheduler/index.js'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const JOB = 'b'.repeat(64)
const posted: Array<Record<string, any>> = []
/** Training jobs the stand-in daemon received (POST /v1/training). */
const trainings: Array<Record<string, any>> = []
let node: StandInNode
let dataDir = ''

test.before(async () => {
  node = await standInNode('dbc-routing-flag-', (req, _res, { url, body, json }) => {
    const ok = req.headers.authorization === `Bearer ${node.token}`
    if (ok && req.method === 'POST' && url === '/v1/jobs') { posted.push(JSON.parse(body)); return json(200, { jobId: JOB }) }
    if (ok && req.method === 'POST' && url === '/v1/training') { trainings.push(JSON.parse(body)); return json(200, { jobId: JOB }) }
    json(404, { error: { code: 'NOT_FOUND', message: `no route ${url}` } })
  })
  dataDir = node.dataDir
  writeFileSync(join(dataDir, 'grid.yaml'), 'name: routed\nexecutor: process\ncode:\n  command: [echo]\ninputs:\n  range: { from: 0, to: 2 }\nrouting: overlay\n')
  writeFileSync(join(dataDir, 'train.yaml'), 'type: training\nmodel: { kind: mlp, hidden: 8 }\nrounds: 2\n')
  writeFileSync(join(dataDir, 'train-routed.yaml'), 'type: training\nrouting: direct\ntraining:\n  model: { kind: mlp, hidden: 8 }\n  rounds: 2\n')
})

test.after(async () => { await node.close() })

const dbc = async (...args: string[]): ReturnType<StandInNode['dbc']> => await node.dbc(...args)

test('parseRoutingFlag: the three modes (any case), else BAD_ARGUMENT naming the choices', () => {
  assert.is(parseRoutingFlag('auto'), 'auto')
  assert.is(parseRoutingFlag(' Direct '), 'direct')
  assert.is(parseRoutingFlag('OVERLAY'), 'overlay')
  for (const bad of ['relayed', '', undefined, 'overlay,direct']) {
    try {
      parseRoutingFlag(bad)
      assert.unreachable(`${String(bad)} accepted`)
    } catch (err) {
      assert.is((err as { code?: string }).code, 'BAD_ARGUMENT')
      assert.match((err as Error).message, /--routing must be auto, direct or overlay/)
    }
  }
})

test('the config and the manifest take direct; node start --routing sets routing.mode', () => {
  const c = loadConfig({ flags: { dataDir, routing: { mode: 'direct' } }, env: {} })
  assert.is(c.routing?.mode, 'direct')
  assert.is(loadConfig({ flags: { dataDir }, env: { DBC_ROUTING_MODE: 'overlay' } }).routing?.mode, 'overlay')
  assert.throws(() => loadConfig({ flags: { dataDir, routing: { mode: 'relayed' } }, env: {} }), /routing/)
  const m = validateManifest({ executor: 'wasm', code: { wasm: 'x.wasm' }, inputs: { range: { from: 0, to: 1 } }, routing: 'direct' })
  assert.ok(m.ok && m.manifest.routing === 'direct')
})

test('job submit --routing overrides the manifest\'s routing in what the daemon receives', async () => {
  const r = await dbc('job', 'submit', join(dataDir, 'grid.yaml'), '--routing', 'direct', '--detach', '--json')
  assert.is(r.code, 0, r.stderr)
  assert.equal(JSON.parse(r.stdout), { jobId: JOB })
  assert.is(posted.length, 1)
  assert.is(posted[0].manifest.routing, 'direct', 'the flag, not the manifest\'s overlay')
  const plain = await dbc('job', 'submit', join(dataDir, 'grid.yaml'), '--detach', '--json')
  assert.is(plain.code, 0, plain.stderr)
  assert.is(posted[1].manifest.routing, 'overlay', 'without the flag: the manifest\'s')
})

test('a bad --routing: exit 1, the flag and the choices named, no stack trace, nothing sent or started', async () => {
  const before = posted.length
  for (const args of [['job', 'submit', join(dataDir, 'grid.yaml'), '--routing', 'relayed'], ['node', 'start', '--routing', 'sideways', '--api-port', '0']]) {
    const r = await dbc(...args)
    assert.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /--routing must be auto, direct or overlay/)
    assert.not.match(r.stderr, /\n\s+at /, 'no stack trace')
  }
  assert.is(posted.length, before, 'nothing reached the daemon')
  const t = await dbc('job', 'submit', join(dataDir, 'train.yaml'), '--routing', 'upward')
  assert.is(t.code, 1)
  assert.match(t.stderr, /--routing must be auto, direct or overlay/)
  assert.is(posted.length + trainings.length, before, 'no training job either')
})

test('a training job takes --routing (its own routing, in its spec), over the manifest\'s top-level routing', async () => {
  const flag = await dbc('job', 'submit', join(dataDir, 'train.yaml'), '--routing', 'overlay', '--detach', '--json')
  assert.is(flag.code, 0, flag.stderr)
  assert.is(trainings.at(-1)?.spec.routing, 'overlay')
  assert.is(trainings.at(-1)?.spec.rounds, 2)
  const manifest = await dbc('job', 'submit', join(dataDir, 'train-routed.yaml'), '--detach', '--json')
  assert.is(manifest.code, 0, manifest.stderr)
  assert.is(trainings.at(-1)?.spec.routing, 'direct', 'the manifest\'s top-level routing')
  const both = await dbc('job', 'submit', join(dataDir, 'train-routed.yaml'), '--routing', 'overlay', '--detach', '--json')
  assert.is(both.code, 0, both.stderr)
  assert.is(trainings.at(-1)?.spec.routing, 'overlay', 'the flag wins')
})

test.run()
