// `dbc job list`'s PAID column (review s13 L8, seen again on the user walk of session 14): a running
// job showed "-" (its summary, which carries the payment, is written at its end) beside a
// cancelled job's "0 DBC". A running job now shows what its payer committed so far, from the
// job's payments route. Checked against a stand-in daemon.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const RUNNING = 'a1' + '0'.repeat(62)
const DONE = 'b2' + '0'.repeat(62)
const NOCHAIN = 'c3' + '0'.repeat(62)
const job = (jobId: string, status: string, summary?: Record<string, unknown>): Record<string, unknown> =>
  ({ jobId, name: 'squares', status, tasks: 10, done: 4, failed: 0, running: 2, queued: 4, billedCopies: 4, createdAt: Date.now(), updatedAt: 0, ...(summary !== undefined ? { summary } : {}) })
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-list-paid-', (_req, _res, { url, json }) => {
    if (url === '/v1/jobs') return json(200, { jobs: [job(RUNNING, 'running'), job(DONE, 'finished', { payment: { paid: '0.000002', refused: '0', unit: 'DBC' } }), job(NOCHAIN, 'running')] })
    if (url === '/v1/training') return json(200, { jobs: [] })
    if (url === `/v1/jobs/${RUNNING}/payments`) return json(200, { jobId: RUNNING, payment: { committed: '1500000000000', billed: '1500000000000', refused: '0', providers: [], refusals: [], receipts: [] } })
    // a job with no payment terms (no chain): the route has nothing to say
    json(404, { error: { code: 'NOT_FOUND', message: url } })
  })
})

test.after(async () => { await node.close() })

test('a running job shows what it paid so far; a finished one its summary; none known: "-"', async () => {
  const r = await node.dbc('job', 'list')
  assert.is(r.code, 0, r.stderr)
  const line = (id: string): string => r.stdout.split('\n').find(l => l.startsWith(id.slice(0, 16))) ?? ''
  assert.match(line(RUNNING), /\s0\.0000015 DBC so far\s/)
  assert.match(line(DONE), /\s0\.000002 DBC\s/)
  assert.match(line(NOCHAIN), /running\s+4\/10\s+0\s+-\s/)
  // the finished job's summary is used as is: no payments request for it
  assert.not.ok(r.requests.includes(`GET /v1/jobs/${DONE}/payments`), JSON.stringify(r.requests))
})

test.run()
