// The node stops while `dbc job submit` follows its job (Ctrl-C or SIGTERM on the daemon): the
// command used to end with "error: aborted / hint: run again with --verbose". It now says the node
// closed the job's event stream, that the job is kept, and how to look at it again (DAEMON_LOST,
// exit 1, no stack trace). `dbc job logs --follow` gets the client's own DAEMON_LOST message.
// Checked against a stand-in daemon that sends one progress event and then cuts the connection.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const JOB = 'c'.repeat(64)
let node: StandInNode
let dataDir = ''

test.before(async () => {
  node = await standInNode('dbc-follow-lost-', (req, res, { url, json }) => {
    if (req.method === 'POST' && url === '/v1/jobs') return json(200, { jobId: JOB })
    if (url === `/v1/jobs/${JOB}/events` || url === `/v1/jobs/${JOB}/logs/follow`) {
      // one event, then the node "dies": the socket closes with the response unfinished
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      res.write(JSON.stringify({ type: 'progress', progress: { total: 3, done: 1, failed: 0, running: 1, retries: 0 } }) + '\n')
      setTimeout(() => { res.socket?.destroy() }, 100)
      return
    }
    json(404, { error: { code: 'NOT_FOUND', message: `no route ${url}` } })
  })
  dataDir = node.dataDir
  writeFileSync(join(dataDir, 'job.yaml'), 'name: lost\nexecutor: process\ncode:\n  command: [echo]\ninputs:\n  range: { from: 0, to: 2 }\nbudget: { total: 1 }\n')
})

test.after(async () => { await node.close() })

const dbc = async (...args: string[]): ReturnType<StandInNode['dbc']> => await node.dbc(...args)

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
