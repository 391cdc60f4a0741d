// The dashboard's door on the API server: the login link route and the static files, both
// outside /v1 and answered with the same "run `dbc dashboard`" page to anyone without a session.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { readFile } from 'node:fs/promises'
import { readCookie, SESSION_COOKIE, type DashboardAuth } from './dashboard-auth.js'
import { resolveStatic, underMount, contentTypeOf, PAGE_HEADERS, LOGIN_AGAIN_HTML, type StaticMount } from './static-files.js'

export function registerDashboardFiles (app: FastifyInstance, auth: DashboardAuth, mounts: StaticMount[]): void {
  app.get('/dashboard/login', async (req, reply) => {
    const t = new URL(req.url, 'http://127.0.0.1').searchParams.get('t') ?? ''
    const session = auth.redeemLink(t)
    if (session === undefined) return await loginAgain(reply)
    return await reply.code(302).headers({ ...PAGE_HEADERS, location: '/dashboard/', 'set-cookie': `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/` }).send()
  })
  const serveFile = async (m: StaticMount, req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    if (!auth.checkSession(readCookie(req.headers.cookie, SESSION_COOKIE))) return await loginAgain(reply)
    // the raw path, not the router's decoded one: resolveStatic judges every segment itself
    const pathname = req.url.split('?')[0]
    if (pathname === m.prefix) return await reply.code(302).headers({ ...PAGE_HEADERS, location: m.prefix + '/' }).send()
    const file = resolveStatic(m, pathname)
    if (file === undefined) return await reply.code(404).headers(PAGE_HEADERS).type('text/plain; charset=utf-8').send('not found\n')
    const data = await readFile(file)
    return await reply.code(200).headers(PAGE_HEADERS).type(contentTypeOf(file)).send(data)
  }
  for (const m of mounts) {
    app.get(m.prefix, async (req, reply) => await serveFile(m, req, reply))
    app.get(m.prefix + '/*', async (req, reply) => await serveFile(m, req, reply))
    for (const path of m.extra.keys()) {
      if (!underMount(m, path)) app.get(path, async (req, reply) => await serveFile(m, req, reply))
    }
  }
}

async function loginAgain (reply: FastifyReply): Promise<unknown> {
  return await reply.code(401).headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(LOGIN_AGAIN_HTML)
}
