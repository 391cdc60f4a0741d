// `dbc job explain JOB --task N` prints the job's line and the task's, not the whole job's
// placement, failures and routes first (helper user's walk, session 14: the task's lines came after
// a screen of the job's). Without --task the job's explanation is unchanged. Stand-in daemon.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const JOB = 'e6' + '0'.repeat(62)
const job = { jobId: JOB, status: 'running', placement: { tasks: 3, placedTasks: 3, offersUsed: 1, offers: 1, usableOffers: 1, predictedCost: 0.001, predictedMakespanMs: 2000 }, failures: [{ index: 2, reason: 'TASK_TRAP: unreachable' }], routes: { 'prov-a': { kind: 'direct', facts: 'direct connection we opened' } } }
const task = { index: 1, status: 'queued', waiting: 'waiting for a free slot', copies: [] }
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-explain-task-', (_req, _res, { url, json }) => {
    if (url === '/v1/jobs') return json(200, { jobs: [] })
    if (url === '/v1/training') return json(200, { jobs: [] })
    if (url === `/v1/jobs/${JOB}/explain`) return json(200, job)
    if (url === `/v1/jobs/${JOB}/explain?task=1`) return json(200, { ...job, task })
    json(404, { error: { code: 'NOT_FOUND', message: url } })
  })
})

test.after(async () => { await node.close() })

test('--task prints the job line and the task only', async () => {
  const r = await node.dbc('job', 'explain', JOB, '--task', '1')
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, `job ${JOB}: running\ntask 1: queued\n  waiting for a free slot\n  no copy sent yet\n`)
})

test('without --task the job\'s placement, failures and routes are printed', async () => {
  const r = await node.dbc('job', 'explain', JOB)
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, 'placement: 3 of 3 tasks placed')
  assert.match(r.stdout, 'task 2: TASK_TRAP: unreachable')
  assert.match(r.stdout, 'routes:\n  prov-a:')
})

test.run()
