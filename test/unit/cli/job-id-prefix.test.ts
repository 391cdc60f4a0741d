// `dbc job list` prints the first 16 hex digits of each job id; every command that takes a job
// (status, cancel, explain, results, top-up, logs, settle) takes that prefix (or any of >= 6 digits
// naming one job of this node, grid or training) and sends the daemon the whole id. An ambiguous
// prefix is a BAD_ARGUMENT naming the count, sent nowhere; an unknown one reaches the daemon as
// given (its JOB_NOT_FOUND). `dbc job explain` prints its placement as lines (not JSON), the first
// 20 failed tasks and counts the rest;
// a failed job's summary names `dbc job explain JOB` for the reasons.
// Checked against a stand-in daemon that records every request.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { EXPLAIN_FAILURES } from '../../../src/cli/job.js'
import { standInNode, type StandInNode } from '../../helpers/cli.js'

const A = 'ab12cd0' + '1'.repeat(57)
const B = 'ab12cd1' + '2'.repeat(57)
const T = 'f00d' + '3'.repeat(60)
const status = (jobId: string): Record<string, unknown> => ({ jobId, name: 'squares', status: 'failed', tasks: 50, done: 0, failed: 50, running: 0, queued: 0, billedCopies: 0, createdAt: 0, updatedAt: 0 })
let node: StandInNode

test.before(async () => {
  node = await standInNode('dbc-job-id-', (req, _res, { url, json }) => {
    if (req.headers.authorization !== `Bearer ${node.token}`) return json(401, { error: { code: 'UNAUTHORIZED', message: 'no' } })
    if (url === '/v1/jobs') return json(200, { jobs: [status(A), status(B)] })
    if (url === '/v1/training') return json(200, { jobs: [{ jobId: T, status: 'running', round: 0, rounds: 2 }] })
    if (url === `/v1/jobs/${A}`) return json(200, status(A))
    if (url === `/v1/jobs/${A}/cancel`) return json(200, { ...status(A), status: 'cancelled' })
    if (url === `/v1/jobs/${A}/explain`) return json(200, { jobId: A, status: 'failed', placement: { tasks: 50, placedTasks: 0, offers: 2, usableOffers: 0, offersUsed: 0, rejectedOffers: { refused: 2 }, unplaced: { 'all-refused': 50 }, predictedCost: 0, predictedMakespanMs: 0 }, failures: Array.from({ length: 50 }, (_, index) => ({ index, reason: 'no provider offered' })) })
    if (url === `/v1/jobs/${A}/logs`) return json(200, { jobId: A, status: 'failed', events: [] })
    if (url === `/v1/chain/jobs/${A}`) return json(200, { jobId: A })
    if (url === `/v1/training/${T}`) return json(200, { jobId: T, status: 'running', round: 0, rounds: 2, members: [] })
    const id = /^\/v1\/(?:jobs|training)\/([^/?]+)/.exec(url)?.[1] ?? '?'
    json(404, { error: { code: 'JOB_NOT_FOUND', message: `no job ${decodeURIComponent(id)} on this node`, hint: 'list jobs with `dbc job list`' } })
  })
})

test.after(async () => { await node.close() })

/** Runs `dbc ARGS` against the stand-in; `requests`: every request it received, "METHOD URL". */
const dbc = async (...args: string[]): ReturnType<StandInNode['dbc']> => await node.dbc(...args)

test('the 16-digit id `dbc job list` prints names the job in status, cancel, explain, logs and settle', async () => {
  const listed = await dbc('job', 'list')
  assert.is(listed.code, 0, listed.stderr)
  const short = A.slice(0, 16)
  assert.ok(listed.stdout.includes(short), listed.stdout)
  for (const [args, want] of [
    [['job', 'status', short, '--json'], `GET /v1/jobs/${A}`],
    [['job', 'cancel', short.toUpperCase(), '--json'], `POST /v1/jobs/${A}/cancel`],
    [['job', 'explain', short, '--json'], `GET /v1/jobs/${A}/explain`],
    [['job', 'logs', short, '--json'], `GET /v1/jobs/${A}/logs`],
    [['job', 'settle', short, '--json'], `GET /v1/chain/jobs/${A}`]
  ] as Array<[string[], string]>) {
    const r = await dbc(...args)
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`)
    assert.ok(r.requests.includes(want), `${args.join(' ')} sent ${r.requests.join(', ')}`)
    assert.ok(r.stdout.includes(A), `${args.join(' ')} printed ${r.stdout.slice(0, 200)}`)
  }
})

test('a training job by prefix; a full id is sent as given, with no listing', async () => {
  const t = await dbc('job', 'status', T.slice(0, 8))
  assert.is(t.code, 0, t.stderr)
  assert.ok(t.requests.includes(`GET /v1/training/${T}`), t.requests.join(', '))
  assert.match(t.stdout, /training job f00d3333/)
  const full = await dbc('job', 'status', A, '--json')
  assert.is(full.code, 0, full.stderr)
  assert.equal(full.requests, [`GET /v1/jobs/${A}`])
})

test('an ambiguous prefix is BAD_ARGUMENT (exit 1, no stack trace) and reaches no job route', async () => {
  const r = await dbc('job', 'cancel', 'ab12cd')
  assert.is(r.code, 1)
  assert.match(r.stderr, /job ab12cd is ambiguous: 2 jobs of this node start with it/)
  assert.match(r.stderr, /give more of the id/)
  assert.not.match(r.stderr, /\n\s+at /)
  assert.ok(r.requests.every(q => !q.includes('/cancel')), r.requests.join(', '))
})

test('an unknown or short prefix reaches the daemon as given: its JOB_NOT_FOUND, with the hint', async () => {
  for (const id of ['ffffff00', 'ab12']) {
    const r = await dbc('job', 'status', id)
    assert.is(r.code, 1)
    assert.match(r.stderr, new RegExp(`no job ${id} on this node`))
    assert.match(r.stderr, /dbc job list/)
    assert.ok(r.requests.includes(`GET /v1/jobs/${id}`), r.requests.join(', '))
  }
})

test('the summary of a failed job says which command gives the reasons', async () => {
  const r = await dbc('job', 'status', A)
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, new RegExp(`\\nwhy +dbc job explain ${A} \\(each failed task's reason\\)`))
})

test(`explain prints its placement as lines, the first ${EXPLAIN_FAILURES} failed tasks and counts the rest`, async () => {
  const r = await dbc('job', 'explain', A)
  assert.is(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n').filter(l => /^ {2}task \d+: /.test(l))
  assert.is(lines.length, EXPLAIN_FAILURES)
  assert.match(r.stdout, new RegExp(`\\.\\.\\. and ${50 - EXPLAIN_FAILURES} more failed tasks \\(\`dbc job explain ${A} --json\` lists them all`))
  // the placement as lines, not a JSON object
  assert.match(r.stdout, /\nplacement: 0 of 50 tasks placed on 0 provider\(s\); 0 of 2 offers usable\n {2}predicted cost 0 DBC, providers' makespan 0s \(their work and transfers, not this node's dispatch of each copy\)\n {2}offers rejected: refused 2\n {2}tasks not placed: all-refused 50\n/)
  assert.not.match(r.stdout, /[{}]/)
  const all = await dbc('job', 'explain', A, '--json')
  assert.is(JSON.parse(all.stdout).failures.length, 50)
})

test.run()
