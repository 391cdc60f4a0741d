// The control API server's behaviour on fastify: the token, errors and their statuses, the body
// limit, the contract check naming the bad field, streams, public routes, and the typed client.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { ApiServer } from '../../../src/api/server.js'
import { ApiClient, API_INFO_FILE, API_TOKEN_FILE } from '../../../src/api/client.js'
import { DbcError } from '../../../src/errors.js'

const TOKEN = 'b'.repeat(64)
const api = new ApiServer(TOKEN)
const seen: unknown[] = []
api.publicRoute('/healthz', () => ({ status: 200, body: { status: 'live' } }))
api.route('GET', '/v1/jobs/:id', (req) => {
  if (req.params.id === 'gone') throw new DbcError('NOT_FOUND', 'no job gone', { hint: 'list jobs' })
  if (req.params.id === 'broken') throw new Error('boom')
  if (req.params.id === 'refused') throw new DbcError('JOB_REFUSED', 'refused', { hint: 'ask again' })
  return { jobId: req.params.id, name: 'j', status: 'running', tasks: 3, done: 1, failed: 0, running: 2, queued: 0, billedCopies: 1, copiesByOutcome: {}, createdAt: 1, updatedAt: 2, live: true }
})
api.route('GET', '/v1/jobs/:id/explain', (req) => ({ jobId: req.params.id, status: 'running', failures: [], task: req.query.get('task') }))
api.route('POST', '/v1/ping', (req) => { seen.push(req.body); return { peer: (req.body as { peer: string }).peer, rtts: [1] } })
api.route('POST', '/v1/jobs', (req) => { seen.push(req.body); return { jobId: 'j1' } })
api.route('POST', '/v1/stop', (req) => { seen.push(req.body); return undefined })
api.streamRoute('GET', '/v1/jobs/:id/events', async (req, send) => {
  send({ type: 'progress', tasks: 1 })
  if (req.params.id === 'bad') throw new DbcError('STREAM_BROKE', 'it broke', { hint: 'retry' })
  send({ type: 'end', status: 'done' })
})
let port = 0
const dataDir = mkdtempSync(join(tmpdir(), 'dbc-api-'))

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: string }
async function raw (method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Raw> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) } }, res => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }) })
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}
const auth = { authorization: `Bearer ${TOKEN}` }
const json = (r: Raw): any => JSON.parse(r.body)

test.before(async () => {
  port = await api.listen(0)
  writeFileSync(join(dataDir, API_INFO_FILE), JSON.stringify({ port, pid: process.pid, peerId: 'x', startedAt: 0 }))
  writeFileSync(join(dataDir, API_TOKEN_FILE), TOKEN)
})
test.after(async () => { await api.close(); rmSync(dataDir, { recursive: true, force: true }) })

test('the token: none, wrong or of another length is 401; unknown routes are 401 before 404', async () => {
  assert.is((await raw('GET', '/v1/jobs/a')).status, 401)
  assert.is((await raw('GET', '/v1/jobs/a', { authorization: `Bearer ${'c'.repeat(64)}` })).status, 401)
  assert.is((await raw('GET', '/v1/jobs/a', { authorization: 'Bearer short' })).status, 401)
  const unauth = await raw('GET', '/v1/nope')
  assert.is(unauth.status, 401)
  assert.is(json(unauth).error.code, 'UNAUTHORIZED')
  const missing = await raw('GET', '/v1/nope', auth)
  assert.is(missing.status, 404)
  assert.is(json(missing).error.code, 'NOT_FOUND')
  assert.is((await raw('DELETE', '/v1/jobs/a', auth)).status, 404)
  const ok = await raw('GET', '/v1/jobs/a/', auth)
  assert.is(ok.status, 200, 'a trailing slash is the same route')
  assert.is(json(ok).jobId, 'a')
})

test('errors: NOT_FOUND is 404, another DbcError 400, anything else 500, all as { error }', async () => {
  const gone = await raw('GET', '/v1/jobs/gone', auth)
  assert.is(gone.status, 404)
  assert.equal(json(gone).error, { code: 'NOT_FOUND', name: 'DbcError', message: 'no job gone', hint: 'list jobs' })
  const refused = await raw('GET', '/v1/jobs/refused', auth)
  assert.is(refused.status, 400)
  assert.is(json(refused).error.code, 'JOB_REFUSED')
  const broken = await raw('GET', '/v1/jobs/broken', auth)
  assert.is(broken.status, 500)
  assert.equal(json(broken).error, { code: 'INTERNAL', message: 'boom' })
})

test('bodies: JSON whatever the content type, empty is none, not JSON is 400, over 8 MiB is 400', async () => {
  assert.is((await raw('POST', '/v1/ping', auth, JSON.stringify({ peer: 'p1' }))).status, 200)
  assert.equal(seen.pop(), { peer: 'p1' })
  assert.is((await raw('POST', '/v1/ping', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ peer: 'p2' }))).status, 200)
  assert.equal(seen.pop(), { peer: 'p2' })
  assert.equal(json(await raw('POST', '/v1/stop', auth)), {}, 'undefined answers {}')
  assert.is(seen.pop(), undefined)
  const bad = await raw('POST', '/v1/ping', { ...auth, 'content-type': 'application/json' }, '{nope')
  assert.is(bad.status, 400)
  assert.is(json(bad).error.code, 'BAD_REQUEST')
  const big = await raw('POST', '/v1/jobs', { ...auth, 'content-type': 'application/json' }, JSON.stringify({ manifest: 'x'.repeat(8 * 1024 * 1024) }))
  assert.is(big.status, 400)
  assert.is(json(big).error.code, 'BODY_TOO_LARGE')
  const noAuth = await raw('POST', '/v1/jobs', {}, JSON.stringify({ manifest: {} }))
  assert.is(noAuth.status, 401)
})

test('the contract check answers 400 naming the field; fields the handler checks pass through', async () => {
  const r = await raw('POST', '/v1/ping', auth, JSON.stringify({ peer: 5 }))
  assert.is(r.status, 400)
  assert.is(json(r).error.code, 'BAD_REQUEST')
  assert.is(json(r).error.field, 'body.peer')
  assert.match(json(r).error.message, /^body\.peer: /)
  const none = await raw('POST', '/v1/ping', auth)
  assert.is(json(none).error.field, 'body.peer')
  const q = await raw('GET', '/v1/jobs/a/explain?task=abc', auth)
  assert.is(q.status, 400)
  assert.is(json(q).error.field, 'query.task')
  assert.is(json(await raw('GET', '/v1/jobs/a/explain?task=7', auth)).task, '7')
  assert.is((await raw('GET', `/v1/jobs/${'x'.repeat(201)}`, auth)).status, 400, 'a 201-character id breaks the contract')
  // the manifest is the handler's to judge (its errors name manifest fields with MANIFEST_INVALID)
  assert.is((await raw('POST', '/v1/jobs', auth, JSON.stringify({ manifest: { nonsense: true }, extra: 1 }))).status, 200)
  assert.equal(seen.pop(), { manifest: { nonsense: true }, extra: 1 }, 'the handler sees the body as sent')
  assert.is(json(await raw('POST', '/v1/jobs', auth, JSON.stringify({ manifest: {}, allowTopUp: 'yes' }))).error.field, 'body.allowTopUp')
})

test('streams: NDJSON by default, a failure after the start is the last event', async () => {
  const r = await raw('GET', '/v1/jobs/a/events', auth)
  assert.is(r.headers['content-type'], 'application/x-ndjson')
  assert.is(r.body, '{"type":"progress","tasks":1}\n{"type":"end","status":"done"}\n')
  const bad = await raw('GET', '/v1/jobs/bad/events', auth)
  assert.equal(bad.body.trim().split('\n').map(l => JSON.parse(l)).pop(), { type: 'error', error: { code: 'STREAM_BROKE', message: 'it broke', hint: 'retry' } })
})

test('public routes need no token and may not sit under /v1; routes come before listen', async () => {
  const r = await raw('GET', '/healthz')
  assert.is(r.status, 200)
  assert.equal(json(r), { status: 'live' })
  assert.throws(() => { api.publicRoute('/v1/x', () => ({ status: 200, body: {} })) }, (e: DbcError) => e.code === 'BAD_ROUTE')
  assert.throws(() => { api.route('GET', '/v1/late', () => ({})) }, (e: DbcError) => e.code === 'BAD_ROUTE')
})

test('the OpenAPI document is served behind the token', async () => {
  assert.is((await raw('GET', '/v1/openapi.json')).status, 401)
  const r = await raw('GET', '/v1/openapi.json', auth)
  assert.is(r.status, 200)
  assert.is(json(r).openapi, '3.1.0')
  assert.ok(json(r).paths['/v1/jobs/{id}'].get !== undefined)
  assert.equal(api.undescribed(), [], 'every route registered here is in the contract')
})

test('the typed client: request and events by contract key, errors as DbcError', async () => {
  const client = ApiClient.connect(dataDir)
  const s = await client.request('GET /v1/jobs/:id', { params: { id: 'a b/c' } })
  assert.is(s.jobId, 'a b/c', 'parameters are encoded')
  const tasks: number = s.tasks
  assert.is(tasks, 3)
  const e = await client.request('GET /v1/jobs/:id/explain', { params: { id: 'a' }, query: { task: 4 } })
  assert.is((e as Record<string, unknown>).task, '4')
  const p = await client.request('POST /v1/ping', { body: { peer: 'p9', count: 2 } })
  assert.equal(p.rtts, [1])
  seen.pop()
  const events = []
  for await (const ev of client.events('GET /v1/jobs/:id/events', { params: { id: 'a' } })) events.push(ev.type)
  assert.equal(events, ['progress', 'end'])
  try {
    await client.request('GET /v1/jobs/:id', { params: { id: 'gone' } })
    assert.unreachable()
  } catch (err) {
    assert.instance(err, DbcError)
    assert.is((err as DbcError).code, 'NOT_FOUND')
    assert.is((err as DbcError).hint, 'list jobs')
  }
})

test('with checkResponses, an answer or event that breaks its contract fails loudly', async () => {
  const strict = new ApiServer(TOKEN, { checkResponses: true })
  strict.route('GET', '/v1/id', () => ({ peerId: 5 }))
  strict.route('GET', '/v1/peers', () => ({ peers: [] }))
  strict.streamRoute('GET', '/v1/jobs/:id/events', async (_req, send) => { send({ type: 'nonsense' }) })
  const p = await strict.listen(0)
  const saved = port
  port = p
  try {
    const bad = await raw('GET', '/v1/id', auth)
    assert.is(bad.status, 500)
    assert.is(json(bad).error.code, 'RESPONSE_BREAKS_CONTRACT')
    assert.match(json(bad).error.message, /peerId/)
    assert.equal(json(await raw('GET', '/v1/peers', auth)), { peers: [] })
    const ev = (await raw('GET', '/v1/jobs/a/events', auth)).body.trim().split('\n').map(l => JSON.parse(l))
    assert.is(ev[ev.length - 1].error.code, 'RESPONSE_BREAKS_CONTRACT')
  } finally {
    port = saved
    await strict.close()
  }
})

test('it listens on 127.0.0.1 only', async () => {
  const other = new ApiServer(TOKEN)
  const p = await other.listen(0)
  try {
    const addr = (other as unknown as { app: { server: { address: () => { address: string } } } }).app.server.address()
    assert.is(addr.address, '127.0.0.1')
    assert.ok(p > 0)
    // a port in use is an error the daemon can report, and the server can try another
    const third = new ApiServer(TOKEN)
    try {
      await third.listen(p)
      assert.unreachable('listened on a port in use')
    } catch (err) {
      assert.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE')
    }
    assert.ok(await third.listen(0) > 0)
    await third.close()
  } finally {
    await other.close()
  }
})

test.run()
