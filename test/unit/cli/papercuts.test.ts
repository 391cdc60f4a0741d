// The real `dbc` against a stand-in daemon (an HTTP server in this process, found through the
// data dir's api.json and api-token like a real one): a closed pipe ends the CLI quietly, amounts
// print in DBC with a unit, refusals are summarised, the daemon's range error reaches the user.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dbcBin = fileURLToPath(new URL('../../../bin/dbc.js', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'dbc-papercuts-'))
const JOB = 'a'.repeat(64)
const TOKEN = 't'.repeat(64)

const status = {
  jobId: JOB, name: 'squares', status: 'running', tasks: 1000, done: 400, failed: 0, running: 6, queued: 594, billedCopies: 400, createdAt: 0, updatedAt: 0,
  summary: { predictedCost: 0.00012000000000000002, meteredSpent: 4.999999999909999e-7, payment: { paid: '0.00000049', refused: '0', unit: 'DBC' }, refusals: { PRICE_TOO_LOW: 3, BUSY: 12 } }
}

function answer (path: string): { code: number, body: unknown } {
  if (path === `/v1/jobs/${JOB}`) return { code: 200, body: status }
  if (path === `/v1/jobs/${JOB}/results`) {
    // far more than a pipe holds, so the writer is still writing when the reader goes away
    return { code: 200, body: { results: Array.from({ length: 20_000 }, (_, i) => ({ index: i, hash: 'ab'.repeat(32), output: Buffer.from(`result number ${i}`).toString('base64') })) } }
  }
  if (path === `/v1/jobs/${JOB}/explain?task=5000`) {
    return { code: 400, body: { error: { code: 'TASK_OUT_OF_RANGE', message: `job ${JOB} has 1000 tasks (indices 0 to 999): there is no task 5000`, hint: 'pass --task N with N from 0 to 999' } } }
  }
  return { code: 404, body: { error: { code: 'NOT_FOUND', message: `no route ${path}` } } }
}

let server: Server
const requests: string[] = []
test.before(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`)
    const ok = req.headers.authorization === `Bearer ${TOKEN}`
    const { code, body } = ok ? answer(req.url ?? '') : { code: 401, body: { error: { code: 'UNAUTHORIZED', message: 'bad token' } } }
    res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ port, pid: process.pid, peerId: '12D3KooWfake', startedAt: Date.now() }))
  writeFileSync(join(dataDir, 'api-token'), TOKEN, { mode: 0o600 })
})

/** Runs a shell line with $DBC set to this checkout's dbc; bash's pipefail gives dbc's own status. */
async function sh (line: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const child = spawn('bash', ['-c', `set -o pipefail; ${line}`], { env: { ...process.env, DBC: `${process.execPath} ${dbcBin} --data-dir ${dataDir}` } })
    let stdout = ''; let stderr = ''
    child.stdout.on('data', d => { stdout += d })
    child.stderr.on('data', d => { stderr += d })
    child.on('close', code => { resolve({ code, stdout, stderr }) })
  })
}

test('`dbc job results J | head -5` ends quietly: exit 0, no stack trace', async () => {
  const r = await sh(`$DBC job results ${JOB} | head -5`)
  assert.is(r.stdout.split('\n').filter(Boolean).length, 5)
  assert.match(r.stdout, /^0\tresult number 0\n/)
  assert.is(r.stderr, '', r.stderr)
  assert.is(r.code, 0)
})

test('job status: amounts in DBC with a unit and sane precision, refusals summarised', async () => {
  const r = await sh(`$DBC job status ${JOB}`)
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /billed \(receipts\)\s+0\.0000005 DBC\n/)
  assert.match(r.stdout, /cost \(predicted\)\s+0\.00012 DBC\n/)
  assert.match(r.stdout, /paid \(signed\)\s+0\.00000049 DBC\n/)
  assert.match(r.stdout, /refusals\s+BUSY x12, PRICE_TOO_LOW x3\n/)
  assert.not.match(r.stdout, /e-\d/)
})

test('explain --task out of range: the error names the range, exit 1, no stack trace', async () => {
  const r = await sh(`$DBC job explain ${JOB} --task 5000`)
  assert.is(r.code, 1)
  assert.is(r.stdout, '')
  assert.match(r.stderr, /^error: job a+ has 1000 tasks \(indices 0 to 999\): there is no task 5000\nhint: pass --task N with N from 0 to 999\n$/)
})

test('`dbc logs` (not a command) names the two that are (user walk s15)', async () => {
  const r = await sh('$DBC logs -f')
  assert.is(r.code, 1)
  assert.match(r.stderr, /^error: `dbc logs` is not a command\nhint: this node's own log: `dbc node logs \[-f\]`; what a job's tasks did: `dbc job logs JOB \[-f\]`\n$/)
})

test('`dbc job submit` checks the manifest\'s files and module before anything ships', async () => {
  writeFileSync(join(dataDir, 'job.yaml'), 'executor: wasm\ncode: { wasm: missing.wasm }\ninputs: { list: [1, 2] }\n')
  const r = await sh(`$DBC job submit ${join(dataDir, 'job.yaml')}`)
  assert.is(r.code, 1)
  assert.match(r.stderr, /^error: .*job\.yaml can not be submitted:\n {2}code\.wasm \(missing\.wasm\): no such file .*missing\.wasm\n/)
  assert.not.match(r.stderr, /ENOENT|at .*\.ts:\d+/)
  assert.not.ok(requests.some(q => q.startsWith('POST')), `nothing was sent to the node: ${requests.join(', ')}`)
})

test.after(async () => {
  await new Promise(resolve => server.close(resolve))
  rmSync(dataDir, { recursive: true, force: true })
})
test.run()
