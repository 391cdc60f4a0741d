// The control API of a real daemon (one node on a local chain): every GET route without
// parameters answers what its contract in src/api/routes.ts says, the typed client works
// against it, a request breaking its contract is refused naming the field, and the dashboard's
// door (login link, cookie, SSE) works on the daemon's own server.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'node:http'
import { LocalNetwork, type LocalNode } from '../../../demo/network.js'
import { readApiInfo } from '../../../src/api/client.js'
import { routes } from '../../../src/api/routes.js'
import type { RouteContract } from '../../../src/api/contract.js'
import { DbcError } from '../../../src/errors.js'

const net = new LocalNetwork()
let node: LocalNode

async function get (path: string, headers: Record<string, string>, opts: { firstChunk?: boolean } = {}): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  const port = readApiInfo(node.dataDir)?.port as number
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, res => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
        // a stream never ends by itself: the first whole event is enough
        if (opts.firstChunk === true && body.includes('\n\n')) { req.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) }
      })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', (err) => { if (opts.firstChunk !== true) reject(err) })
    req.end()
  })
}

test.before(async () => {
  node = await net.start({ name: 'solo', location: '48.85,2.35' }, [], { timeoutMs: 120_000 })
})
test.after(async () => { await net.stop() })

test('every GET route without parameters answers as its contract says', async () => {
  const checked: string[] = []
  for (const [key, r] of Object.entries(routes) as Array<[string, RouteContract]>) {
    if (r.method !== 'GET' || r.params !== undefined || r.stream === true || r.public === true) continue
    const out = await node.api.call('GET', r.path + (key === 'GET /v1/chain/stake-quote' ? '?gpus=2' : ''), undefined, { timeoutMs: 60_000 })
    const parsed = r.response.safeParse(out)
    assert.ok(parsed.success, `${key}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 3))}`)
    checked.push(key)
  }
  assert.ok(checked.length >= 12, `only ${checked.length} routes checked`)
})

test('the typed client, and a request that breaks its contract', async () => {
  const id = await node.api.request('GET /v1/id')
  assert.is(id.peerId, node.peerId)
  const doc = await node.api.request('GET /v1/openapi.json') as { paths: Record<string, unknown> }
  assert.ok('/v1/jobs/{id}/events' in doc.paths)
  try {
    await node.api.call('POST', '/v1/ping', { peer: 5 })
    assert.unreachable()
  } catch (err) {
    assert.instance(err, DbcError)
    assert.is((err as DbcError).code, 'BAD_REQUEST')
    assert.match((err as DbcError).message, /^body\.peer: /)
  }
  try {
    await node.api.request('GET /v1/jobs/:id', { params: { id: 'f'.repeat(64) } })
    assert.unreachable()
  } catch (err) {
    assert.match((err as DbcError).code, /NOT_FOUND$/)
  }
})

test('the dashboard door on the daemon: link, cookie, read-only /v1, SSE', async () => {
  const { url } = await node.api.request('POST /v1/dashboard/link')
  const u = new URL(url)
  assert.is(u.hostname, '127.0.0.1')
  const login = await get(u.pathname + u.search, {})
  assert.is(login.status, 302)
  const cookie = String(login.headers['set-cookie']).split(';')[0]
  assert.match(cookie, /^dbc_session=[0-9a-f]{64}$/)
  const page = await get('/dashboard/', { cookie })
  assert.is(page.status, 200)
  assert.match(String(page.headers['content-type']), /^text\/html/)
  assert.is((await get('/v1/status', { cookie })).status, 200)
  assert.is((await get('/v1/status', {})).status, 401)
  const sse = await get('/v1/events', { cookie, accept: 'text/event-stream' }, { firstChunk: true })
  assert.is(sse.headers['content-type'], 'text/event-stream')
  const first = sse.body.split('\n\n').find(b => b.startsWith('data: '))
  assert.ok(first !== undefined, sse.body)
  assert.type(JSON.parse(first.slice(6)).type, 'string')
})

test.run()
