// `dbc job submit` piped (no TTY) prints a progress line every 2 s. Before the runner's first report
// the job's event carries counts only (progress: null), and the line read "0/2 tasks done, 0 running,
// 0 retries" while both copies ran (the user walk of session 14, a job of two 2-second tasks): the
// zeros were made up. It now prints what is known. `--detach` names a command that follows.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const JOB = 'd'.repeat(64)
const status = { jobId: JOB, name: 'loop', status: 'finished', tasks: 2, done: 2, failed: 0, running: 0, queued: 0, billedCopies: 2, createdAt: 0, updatedAt: 0, summary: {} }
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-follow-progress-', (req, res, { url, json }) => {
    if (req.method === 'POST' && url === '/v1/jobs') return json(200, { jobId: JOB })
    if (url === `/v1/jobs/${JOB}/events`) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write(JSON.stringify({ type: 'progress', status: 'running', progress: null, tasks: 2, done: 0, failed: 0 }) + '\n')
      res.end(JSON.stringify({ type: 'end', status }) + '\n')
      return
    }
    json(404, { error: { code: 'NOT_FOUND', message: `no route ${url}` } })
  })
  writeFileSync(join(node.dataDir, 'job.yaml'), 'name: loop\nexecutor: process\ncode:\n  command: [echo]\ninputs:\n  range: { from: 0, to: 1 }\nbudget: { total: 1 }\n')
})

test.after(async () => { await node.close() })

test('before the first report the progress line has no made-up running and retries', async () => {
  const r = await node.dbc('job', 'submit', join(node.dataDir, 'job.yaml'))
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stderr, /progress: 0\/2 tasks done, 0 failed\n/)
  assert.not.match(r.stderr, /0 running/)
})

test('--detach names a command that follows the job, beside the status snapshot', async () => {
  const r = await node.dbc('job', 'submit', join(node.dataDir, 'job.yaml'), '--detach')
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout.split('\n')[0], JOB, 'the id first, alone on its line (scripts read it)')
  assert.match(r.stdout, `dbc job logs ${JOB} --follow`)
})

test.run()
