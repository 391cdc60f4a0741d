// `--routing auto|direct|overlay`: `dbc job submit --routing` overrides the manifest's routing
// (what the daemon receives, checked against a stand-in daemon); `dbc node start --routing` sets
// the config's routing.mode; a bad value is a BAD_ARGUMENT naming the flag and the choices, exit
// 1, no stack trace, before anything is read, sent or started. A training job takes it too: it
// becomes its spec's `routing` (between its coordinator and members; src/training/overlay-route.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseRoutingFlag } from '../../../src/cli/job.js'
import { loadConfig } from '../../../src/node/config.js'
import { validateManifest } from '../../../src/core/scheduler/index.js'

const dbcBin = fileURLToPath(new URL('../../../bin/dbc.js', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'dbc-routing-flag-'))
const TOKEN = 't'.repeat(64)
const JOB = 'b'.repeat(64)
const posted: Array<Record<string, any>> = []
/** Training jobs the stand-in daemon received (POST /v1/training). */
const trainings: Array<Record<string, any>> = []
let server: Server

test.before(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', d => { body += String(d) })
    req.on('end', () => {
      const ok = req.headers.authorization === `Bearer ${TOKEN}`
      if (ok && req.method === 'POST' && req.url === '/v1/jobs') {
        posted.push(JSON.parse(body))
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jobId: JOB }))
        return
      }
      if (ok && req.method === 'POST' && req.url === '/v1/training') {
        trainings.push(JSON.parse(body))
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jobId: JOB }))
        return
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${req.url ?? ''}` } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ port, pid: process.pid, peerId: '12D3KooWfake', startedAt: Date.now() }))
  writeFileSync(join(dataDir, 'api-token'), TOKEN, { mode: 0o600 })
  writeFileSync(join(dataDir, 'grid.yaml'), 'name: routed\nexecutor: process\ncode:\n  command: [echo]\ninputs:\n  range: { from: 0, to: 2 }\nrouting: overlay\n')
  writeFileSync(join(dataDir, 'train.yaml'), 'type: training\nmodel: { kind: mlp, hidden: 8 }\nrounds: 2\n')
  writeFileSync(join(dataDir, 'train-routed.yaml'), 'type: training\nrouting: direct\ntraining:\n  model: { kind: mlp, hidden: 8 }\n  rounds: 2\n')
})

test.after(async () => {
  await new Promise<void>(resolve => server.close(() => { resolve() }))
  rmSync(dataDir, { recursive: true, force: true })
})

async function dbc (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const child = spawn(process.execPath, [dbcBin, '--data-dir', dataDir, ...args], { env: { ...process.env, DEBUG: '' } })
    let stdout = ''; let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    child.on('close', code => { resolve({ code, stdout, stderr }) })
  })
}

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
