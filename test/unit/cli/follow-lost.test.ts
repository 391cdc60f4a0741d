// The node stops while `dbc job submit` follows its job (Ctrl-C or SIGTERM on the daemon): the
// command used to end with "error: aborted / hint: run again with --verbose". It now says the node
// closed the job's event stream, that the job is kept, and how to look at it again (DAEMON_LOST,
// exit 1, no stack trace). `dbc job logs --follow` gets the client's own DAEMON_LOST message.
// Checked against a stand-in daemon that sends one progress event and then cuts the connection.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dbcBin = fileURLToPath(new URL('../../../bin/dbc.js', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'dbc-follow-lost-'))
const TOKEN = 't'.repeat(64)
const JOB = 'c'.repeat(64)
let server: Server

test.before(async () => {
  server = createServer((req, res) => {
    let body = ''
    req.on('data', d => { body += String(d) })
    req.on('end', () => {
      const url = req.url ?? ''
      if (req.method === 'POST' && url === '/v1/jobs') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jobId: JOB }))
        return
      }
      if (url === `/v1/jobs/${JOB}/events` || url === `/v1/jobs/${JOB}/logs/follow`) {
        // one event, then the node "dies": the socket closes with the response unfinished
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write(JSON.stringify({ type: 'progress', progress: { total: 3, done: 1, failed: 0, running: 1, retries: 0 } }) + '\n')
        setTimeout(() => { res.socket?.destroy() }, 100)
        return
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${url}` } }))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ port, pid: process.pid, peerId: '12D3KooWfake', startedAt: Date.now() }))
  writeFileSync(join(dataDir, 'api-token'), TOKEN, { mode: 0o600 })
  writeFileSync(join(dataDir, 'job.yaml'), 'name: lost\nexecutor: process\ncode:\n  command: [echo]\ninputs:\n  range: { from: 0, to: 2 }\nbudget: { total: 1 }\n')
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

test('job submit: the node lost mid-follow is named, the job is said to be kept, with the command to look again', async () => {
  const r = await dbc('job', 'submit', join(dataDir, 'job.yaml'))
  assert.is(r.code, 1, r.stderr)
  assert.match(r.stderr, new RegExp(`error: the node closed /v1/jobs/${JOB}/events before its end \\(`))
  assert.match(r.stderr, new RegExp(`job ${JOB} is kept in the node's store`))
  assert.match(r.stderr, new RegExp(`hint: it resumes when the node starts again \\(\`dbc node start\`\\); then \`dbc job status ${JOB}\``))
  assert.not.match(r.stderr, /error: aborted/)
  assert.not.match(r.stderr, /\n\s+at /)
})

test('job logs --follow: the same loss is DAEMON_LOST with the client\'s hint', async () => {
  const r = await dbc('job', 'logs', JOB, '--follow')
  assert.is(r.code, 1, r.stderr)
  assert.match(r.stderr, new RegExp(`error: the node closed /v1/jobs/${JOB}/logs/follow before its end`))
  assert.match(r.stderr, /hint: it may have stopped: run `dbc node status`/)
  assert.not.match(r.stderr, /\n\s+at /)
})

test.run()
