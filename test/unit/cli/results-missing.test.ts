// Found on a new user's walk (session 14): `dbc job results` of a failed job printed nothing and
// exited 0, and of a partly failed one a shorter list, with no word that tasks are missing; the
// job summary printed its waiting reason as "waiting    waiting: 1 provider unreachable ...", and
// counted copies sent ahead of a slot as running ("16 running" on two providers of 2 slots), and a
// failed job's summary read "billed (receipts) 0.000057 DBC, paid 0 DBC" with no word why.
// Checked against a stand-in daemon.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const FAILED = 'f1' + '0'.repeat(62)
const PART = 'a2' + '0'.repeat(62)
const ALL = 'b3' + '0'.repeat(62)
const status = (jobId: string, done: number, failed: number, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ jobId, name: 'squares', status: failed > 0 ? 'failed' : 'finished', tasks: 3, done, failed, running: 0, queued: 0, billedCopies: done, createdAt: 0, updatedAt: 0, summary: {}, ...extra })
const result = (index: number): Record<string, unknown> => ({ index, hash: 'ab'.repeat(32), output: Buffer.from(`out ${index}`).toString('base64') })
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-results-', (_req, _res, { url, json }) => {
    if (url === '/v1/jobs') return json(200, { jobs: [] })
    if (url === '/v1/training') return json(200, { jobs: [] })
    if (url === `/v1/jobs/${FAILED}`) return json(200, status(FAILED, 0, 3, { summary: { meteredSpent: 0.000057, payment: { paid: '0', refused: '0', unit: 'DBC' }, failures: [0, 1, 2].map(index => ({ index, reason: 'not placed: no provider answered the lease request (no candidates found)' })) } }))
    if (url === `/v1/jobs/${PART}`) return json(200, status(PART, 2, 1, { status: 'running', failed: 1, running: 4, ahead: 12, summary: { waiting: 'waiting: 1 provider unreachable since its lease was lost' } }))
    if (url === `/v1/jobs/${ALL}`) return json(200, status(ALL, 3, 0))
    if (url === `/v1/jobs/${FAILED}/results`) return json(200, { jobId: FAILED, results: [] })
    if (url === `/v1/jobs/${PART}/results`) return json(200, { jobId: PART, results: [result(0), result(2)] })
    if (url === `/v1/jobs/${ALL}/results`) return json(200, { jobId: ALL, results: [result(0), result(1), result(2)] })
    json(404, { error: { code: 'NOT_FOUND', message: url } })
  })
})

test.after(async () => { await node.close() })

test('a failed job with no results says so and where the reasons are', async () => {
  const r = await node.dbc('job', 'results', FAILED)
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout, '')
  assert.match(r.stderr, `note: 0 of 3 tasks have an accepted result (job failed, 3 failed: \`dbc job explain ${FAILED}\` says why)`)
})

test('a failed job\'s status says why its receipts bill more than it paid', async () => {
  const r = await node.dbc('job', 'status', FAILED)
  assert.match(r.stdout, /billed \(receipts\)\s+0\.000057 DBC \(receipts of every copy that came back, failed ones too; only accepted copies are paid\)\n/)
  const all = await node.dbc('job', 'status', ALL)
  assert.not.match(all.stdout, /failed ones too/)
  // every failure for one reason (a node alone): the summary names it, not only the command
  assert.match(r.stdout, `why                no provider answered the lease request (no candidates found); dbc job explain ${FAILED}`)
})

test('a partial list is marked partial; a whole one gets no note', async () => {
  const r = await node.dbc('job', 'results', PART)
  assert.is(r.stdout, '0\tout 0\n2\tout 2\n')
  assert.match(r.stderr, 'note: 2 of 3 tasks have an accepted result (job running, 1 failed')
  const all = await node.dbc('job', 'results', ALL)
  assert.is(all.stdout.split('\n').filter(Boolean).length, 3)
  assert.is(all.stderr, '')
})

test('job status prints the waiting reason once, not "waiting  waiting: ...", and copies sent ahead apart', async () => {
  const r = await node.dbc('job', 'status', PART)
  assert.match(r.stdout, /\nwaiting\s+1 provider unreachable since its lease was lost/)
  assert.not.match(r.stdout, /waiting\s+waiting:/)
  // copies sent ahead of a slot are named apart from the running ones (the daemon counts them apart)
  assert.match(r.stdout, /tasks\s+2\/3 done, 1 failed, 4 running \(12 more sent ahead, waiting for a slot\)/)
})

test.run()
