// `dbc job cancel` on a training job: the grid route answers 404 for it, so the CLI asks the
// training one (as `job status` and `job results` do) and says how far the job got; an id neither
// knows is still "not found". Checked against a stand-in daemon.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const TRAINING = 'c4' + '0'.repeat(14)
const UNKNOWN = 'd5' + '0'.repeat(14)
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-training-cancel-', (req, _res, { url, json }) => {
    if (url === '/v1/jobs') return json(200, { jobs: [] })
    if (url === '/v1/training') return json(200, { jobs: [{ jobId: TRAINING, status: 'running' }] })
    if (req.method === 'POST' && url === `/v1/training/${TRAINING}/cancel`) return json(200, { jobId: TRAINING, name: 'mnist', status: 'cancelled', round: 6, rounds: 400, error: { code: 'CANCELLED', message: 'cancelled by the submitter' } })
    json(404, { error: { code: 'NOT_FOUND', message: `no job ${url}` } })
  })
})

test.after(async () => { await node.close() })

test('cancel falls back to the training route and says how many rounds were done', async () => {
  const r = await node.dbc('job', 'cancel', TRAINING)
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, `training job ${TRAINING} is cancelled (7 of 400 rounds done)\n`)
  assert.ok(r.requests.includes(`POST /v1/jobs/${TRAINING}/cancel`), r.requests.join(', '))
  assert.ok(r.requests.includes(`POST /v1/training/${TRAINING}/cancel`), r.requests.join(', '))
  const j = await node.dbc('job', 'cancel', TRAINING, '--json')
  assert.is(JSON.parse(j.stdout).status, 'cancelled')
})

test('an id neither route knows is reported as the grid route\'s not found', async () => {
  const r = await node.dbc('job', 'cancel', UNKNOWN)
  assert.is.not(r.code, 0)
  assert.match(r.stderr, `error: no job /v1/jobs/${UNKNOWN}/cancel`, r.stdout + r.stderr)
  assert.not.match(r.stderr, /at .*\.ts:\d+/, 'no stack trace')
})

test.run()
