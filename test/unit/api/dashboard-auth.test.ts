// The dashboard's door: one-time login links, session cookies, static files (no traversal),
// the cookie reading GET routes only, and streams as server-sent events.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'node:http'
import { ApiServer } from '../../../src/api/server.js'
import { DashboardAuth, readCookie } from '../../../src/api/dashboard-auth.js'

const TOKEN = 'a'.repeat(64)
const root = mkdtempSync(join(tmpdir(), 'dbc-dash-'))
const site = join(root, 'site')
mkdirSync(join(site, 'js'), { recursive: true })
writeFileSync(join(site, 'index.html'), '<!doctype html><title>dash</title>')
writeFileSync(join(site, 'js', 'app.mjs'), 'export const x = 1')
writeFileSync(join(site, 'app.js'), 'console.log(1)')
writeFileSync(join(site, 'style.css'), 'body{}')
writeFileSync(join(site, 'world.json'), '{}')
writeFileSync(join(site, 'logo.svg'), '<svg/>')
writeFileSync(join(site, 'pic.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]))
writeFileSync(join(root, 'secret.txt'), 'SECRET')
writeFileSync(join(root, 'vendor.js'), 'VENDOR')
symlinkSync(join(root, 'secret.txt'), join(site, 'leak.txt'))

let clock = 1_000_000
const api = new ApiServer(TOKEN, { now: () => clock, ssePingMs: 20 })
api.staticDir('/dashboard', site, { '/dashboard/vendor/chart.js': join(root, 'vendor.js') })
api.route('GET', '/v1/thing', () => ({ ok: true }))
api.route('POST', '/v1/thing', () => ({ posted: true }))
let releaseStream: () => void = () => {}
let lastSignal: AbortSignal | undefined
api.streamRoute('GET', '/v1/things/events', async (req, send) => {
  lastSignal = req.signal
  send({ type: 'a', n: 1 })
  await new Promise<void>(resolve => { releaseStream = resolve; req.signal.addEventListener('abort', () => { resolve() }) })
  send({ type: 'b', n: 2 })
})
let port = 0

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: string }
/** A raw request, so the path reaches the server exactly as written ('..' and all). */
async function raw (method: string, path: string, headers: Record<string, string> = {}): Promise<Raw> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

async function login (): Promise<string> {
  const url = new URL(api.createLoginLink())
  const r = await raw('GET', url.pathname + url.search)
  assert.is(r.status, 302)
  const cookie = String(r.headers['set-cookie'])
  return `dbc_session=${readCookie(cookie, 'dbc_session') ?? ''}`
}

test.before(async () => { port = await api.listen(0) })
test.after(async () => { await api.close(); rmSync(root, { recursive: true, force: true }) })

test('the login link has the documented shape; POST /v1/dashboard/link needs the token', async () => {
  const link = api.createLoginLink()
  assert.match(link, new RegExp(`^http://127\\.0\\.0\\.1:${port}/dashboard/login\\?t=[0-9a-f]{64}$`))
  assert.is((await raw('POST', '/v1/dashboard/link')).status, 401)
  const r = await raw('POST', '/v1/dashboard/link', { authorization: `Bearer ${TOKEN}` })
  assert.is(r.status, 200)
  assert.match(JSON.parse(r.body).url, /\/dashboard\/login\?t=[0-9a-f]{64}$/)
})

test('a login link works once, sets an HttpOnly SameSite=Strict cookie and redirects to the dashboard', async () => {
  const url = new URL(api.createLoginLink())
  const r = await raw('GET', url.pathname + url.search)
  assert.is(r.status, 302)
  assert.is(r.headers.location, '/dashboard/')
  const cookie = String(r.headers['set-cookie'])
  assert.match(cookie, /^dbc_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\/$/)
  const again = await raw('GET', url.pathname + url.search)
  assert.is(again.status, 401)
  assert.match(again.body, /dbc dashboard/)
  assert.match(String(again.headers['content-type']), /text\/html/)
  assert.is((await raw('GET', '/dashboard/login?t=' + 'f'.repeat(64))).status, 401)
  assert.is((await raw('GET', '/dashboard/login')).status, 401)
})

test('a login link expires after 5 minutes', async () => {
  const url = new URL(api.createLoginLink())
  clock += 5 * 60_000 + 1
  assert.is((await raw('GET', url.pathname + url.search)).status, 401)
})

test('files are served to a session only, with types, no-store and a CSP', async () => {
  assert.is((await raw('GET', '/dashboard/')).status, 401)
  assert.is((await raw('GET', '/dashboard/app.js', { authorization: `Bearer ${TOKEN}` })).status, 401, 'the token is not a session')
  assert.is((await raw('GET', '/dashboard/app.js', { cookie: 'dbc_session=' + '0'.repeat(64) })).status, 401)
  const cookie = await login()
  const index = await raw('GET', '/dashboard/', { cookie })
  assert.is(index.status, 200)
  assert.is(index.body, '<!doctype html><title>dash</title>')
  assert.is(index.headers['cache-control'], 'no-store')
  assert.match(String(index.headers['content-security-policy']), /default-src 'self'/)
  assert.match(String(index.headers['content-security-policy']), /img-src 'self' data:/)
  assert.not.match(String(index.headers['content-security-policy']), /unsafe-inline/)
  assert.is((await raw('GET', '/dashboard', { cookie })).headers.location, '/dashboard/')
  const types: Record<string, RegExp> = {
    '/dashboard/index.html': /^text\/html/,
    '/dashboard/app.js': /^text\/javascript/,
    '/dashboard/js/app.mjs': /^text\/javascript/,
    '/dashboard/style.css': /^text\/css/,
    '/dashboard/world.json': /^application\/json/,
    '/dashboard/logo.svg': /^image\/svg\+xml/,
    '/dashboard/pic.png': /^image\/png/
  }
  for (const [path, type] of Object.entries(types)) {
    const r = await raw('GET', path, { cookie })
    assert.is(r.status, 200, path)
    assert.match(String(r.headers['content-type']), type, path)
  }
  const vendor = await raw('GET', '/dashboard/vendor/chart.js', { cookie })
  assert.is(vendor.body, 'VENDOR')
  assert.match(String(vendor.headers['content-type']), /^text\/javascript/)
  assert.is((await raw('GET', '/dashboard/missing.js', { cookie })).status, 404)
})

test('no path leaves the folder', async () => {
  const cookie = await login()
  for (const path of ['/dashboard/../secret.txt', '/dashboard/%2e%2e/secret.txt', '/dashboard/js/..%2f..%2fsecret.txt',
    '/dashboard/%2E%2E%2Fsecret.txt', '/dashboard/..%5csecret.txt', '/dashboard/leak.txt', '/dashboard/%00', '/dashboard/%zz',
    '/dashboard/js/../../secret.txt', '/dashboard//../secret.txt']) {
    const r = await raw('GET', path, { cookie })
    assert.not.match(r.body, /SECRET/, path)
    assert.ok(r.status >= 400 && r.status < 500, `${path}: ${r.status}`)
  }
})

test('the session cookie reads GET routes and streams under /v1, but never writes', async () => {
  const cookie = await login()
  assert.equal(JSON.parse((await raw('GET', '/v1/thing', { cookie })).body), { ok: true })
  assert.is((await raw('GET', '/v1/thing')).status, 401)
  assert.is((await raw('POST', '/v1/thing', { cookie })).status, 401)
  assert.is((await raw('POST', '/v1/dashboard/link', { cookie })).status, 401)
  assert.is((await raw('POST', '/v1/thing', { authorization: `Bearer ${TOKEN}` })).status, 200)
  // an idle session ends after 12 hours
  clock += 12 * 60 * 60_000 + 1
  assert.is((await raw('GET', '/v1/thing', { cookie })).status, 401)
})

test('a stream asked as text/event-stream is written as SSE with pings; otherwise NDJSON', async () => {
  const cookie = await login()
  const seen = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/things/events', headers: { cookie, accept: 'text/event-stream' } }, res => {
      assert.is(res.headers['content-type'], 'text/event-stream')
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
        if (body.includes(': ping\n\n')) releaseStream()
      })
      res.on('end', () => { resolve(body) })
    })
    req.on('error', reject)
    req.end()
  })
  assert.ok(seen.startsWith('data: {"type":"a","n":1}\n\n'), seen)
  assert.ok(seen.endsWith('data: {"type":"b","n":2}\n\n'), seen)
  const nd = await new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/things/events', headers: { authorization: `Bearer ${TOKEN}` } }, res => {
      assert.is(res.headers['content-type'], 'application/x-ndjson')
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString(); if (body.includes('\n')) releaseStream() })
      res.on('end', () => { resolve(body) })
    })
    req.on('error', reject)
    req.end()
  })
  assert.is(nd, '{"type":"a","n":1}\n{"type":"b","n":2}\n')
})

test('a stream learns when its client goes away', async () => {
  lastSignal = undefined
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v1/things/events', headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' } }, res => {
      res.once('data', () => { req.destroy(); resolve() })
    })
    req.on('error', () => {})
    req.on('close', () => {})
    req.end()
    setTimeout(() => { reject(new Error('no first event')) }, 30_000).unref()
  })
  const signal = (): AbortSignal | undefined => lastSignal
  while (signal()?.aborted !== true) await new Promise(resolve => setTimeout(resolve, 10))
  assert.ok(signal()?.aborted)
})

test('sessions: at most 32 live, the least recently used evicted; links are bounded too', () => {
  let now = 0
  const auth = new DashboardAuth({ now: () => now })
  const ids: string[] = []
  for (let i = 0; i < 33; i++) { now++; ids.push(auth.redeemLink(auth.issueLink()) as string) }
  assert.is(auth.sessionCount, 32)
  assert.not.ok(auth.checkSession(ids[0]))
  assert.ok(auth.checkSession(ids[1]))
  const links = Array.from({ length: 17 }, () => auth.issueLink())
  assert.is(auth.redeemLink(links[0]), undefined, 'the oldest unused link was dropped')
  assert.type(auth.redeemLink(links[16]), 'string')
  assert.is(readCookie('a=1; dbc_session=xyz; b=2', 'dbc_session'), 'xyz')
  assert.is(readCookie(undefined, 'dbc_session'), undefined)
})

test.run()
