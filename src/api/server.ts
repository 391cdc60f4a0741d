// The daemon's control API on fastify: JSON over HTTP on 127.0.0.1 only, every /v1 request
// carrying the bearer token from <dataDir>/api-token (mode 0600), or, for GET only, a dashboard
// session cookie. Routes are registered by the daemon's subsystems before listen(); each is
// checked against its contract in routes.ts (a request that breaks it gets 400 naming the field).
// A handler returns a JSON-able value or throws a DbcError.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { z } from 'zod'
import { DashboardAuth, readCookie, SESSION_COOKIE, type DashboardAuthInit } from './dashboard-auth.js'
import { registerDashboardFiles } from './dashboard-routes.js'
import { mount, type StaticMount } from './static-files.js'
import { checkPart, RequestInvalidError, type Method, type RouteContract } from './contract.js'
import { routes as contracts } from './routes.js'
import { buildOpenApi } from './openapi.js'
import { DbcError } from '../errors.js'

export type { Method } from './contract.js'
export interface ApiRequest {
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
  signal: AbortSignal
}
export type Handler = (req: ApiRequest) => Promise<unknown> | unknown
/** Streaming handler: writes events (NDJSON, or SSE when asked) until it resolves. */
export type StreamHandler = (req: ApiRequest, send: (event: unknown) => void) => Promise<void>
/** A route answered without the token (health probes): its handler returns the HTTP status and body. */
export type PublicHandler = () => Promise<{ status: number, body: unknown }> | { status: number, body: unknown }

interface Registered { method: Method, path: string, handler?: Handler, stream?: StreamHandler }

const MAX_BODY_BYTES = 8 * 1024 * 1024
/** An SSE comment this often keeps proxies and the browser from calling the stream dead. */
export const SSE_PING_MS = 15_000
const UNAUTHORIZED = { code: 'UNAUTHORIZED', message: 'missing or wrong API token', hint: 'the CLI reads the token from the data dir; use the same --data-dir as the daemon' }

export interface ApiServerInit extends DashboardAuthInit {
  ssePingMs?: number
  /**
   * Check every JSON answer and stream event against its contract and fail loudly (500
   * RESPONSE_BREAKS_CONTRACT, or an error event) when it does not match: for test runs
   * (DBC_API_CHECK_RESPONSES=1), so the document's response schemas are held to what the node sends.
   */
  checkResponses?: boolean
}

export class ApiServer {
  private readonly registered: Registered[] = []
  private readonly publicRoutes = new Map<string, PublicHandler>()
  private readonly mounts: StaticMount[] = []
  private app: FastifyInstance | undefined
  private port: number | undefined
  private readonly token: Buffer
  private readonly auth: DashboardAuth
  private readonly ssePingMs: number
  private readonly checkResponses: boolean
  private openapi: string | undefined

  constructor (token: string, init: ApiServerInit = {}) {
    this.token = Buffer.from(token)
    this.auth = new DashboardAuth(init)
    this.ssePingMs = init.ssePingMs ?? SSE_PING_MS
    this.checkResponses = init.checkResponses ?? process.env.DBC_API_CHECK_RESPONSES === '1'
    this.route('POST', '/v1/dashboard/link', () => ({ url: this.createLoginLink() }))
    this.route('GET', '/v1/openapi.json', () => JSON.parse(this.openapi ??= JSON.stringify(buildOpenApi())))
  }

  /** Path segments starting with ':' capture parameters, e.g. '/v1/jobs/:id'. */
  route (method: Method, path: string, handler: Handler): void {
    this.add({ method, path, handler })
  }

  streamRoute (method: Method, path: string, stream: StreamHandler): void {
    this.add({ method, path, stream })
  }

  /** A GET answered without the token, outside /v1 (e.g. /healthz): it must reveal nothing private. */
  publicRoute (path: string, handler: PublicHandler): void {
    const parts = path.split('/').filter(Boolean)
    if (parts[0] === 'v1') throw new DbcError('BAD_ROUTE', 'routes under /v1 always need the token')
    this.notStarted()
    this.publicRoutes.set('/' + parts.join('/'), handler)
  }

  /**
   * GET prefix/* serves files under dir (prefix/ serves index.html) and the named extra files
   * (full URL path -> absolute file), to a browser holding a dashboard session only.
   */
  staticDir (prefix: string, dir: string, extra: Record<string, string> = {}): void {
    this.notStarted()
    this.mounts.push(mount(prefix, dir, extra))
  }

  /** A one-time URL that signs a browser into the dashboard (valid 5 minutes, works once). */
  createLoginLink (): string {
    if (this.port === undefined) throw new DbcError('API_NOT_LISTENING', 'the control API is not listening yet')
    return `http://127.0.0.1:${this.port}/dashboard/login?t=${this.auth.issueLink()}`
  }

  /** Routes registered here that routes.ts does not describe (the contract test wants none). */
  undescribed (): string[] {
    const keys = new Set(Object.keys(contracts))
    return [...this.registered.map(r => `${r.method} ${r.path}`), ...[...this.publicRoutes.keys()].map(p => `GET ${p}`)].filter(k => !keys.has(k))
  }

  async listen (port: number): Promise<number> {
    this.notStarted()
    const app = Fastify({
      logger: false,
      bodyLimit: MAX_BODY_BYTES,
      forceCloseConnections: true,
      exposeHeadRoutes: false,
      routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 256 }
    })
    this.app = app
    // every body is JSON whatever its content type (curl -d sends form encoding); empty is none
    app.removeAllContentTypeParsers()
    app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
      const buf = body as Buffer
      if (buf.length === 0) { done(null, undefined); return }
      try { done(null, JSON.parse(buf.toString('utf8'))) } catch { done(new DbcError('BAD_REQUEST', 'request body is not JSON'), undefined) }
    })
    app.setErrorHandler((err, _req, reply) => { void sendError(reply, err) })
    app.setNotFoundHandler((req, reply) => {
      if (!this.authorized(req.raw)) return reply.code(401).send({ error: UNAUTHORIZED })
      return reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no API route ${req.method} ${req.url.split('?')[0]}`, hint: 'the CLI and the daemon may be different versions' } })
    })
    const requireAuth = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      if (!this.authorized(req.raw)) await reply.code(401).send({ error: UNAUTHORIZED })
    }
    for (const [path, handler] of this.publicRoutes) {
      app.get(path, async (_req, reply) => {
        const r = await handler()
        return await reply.code(r.status).type('application/json').send(JSON.stringify(r.body))
      })
    }
    registerDashboardFiles(app, this.auth, this.mounts)
    for (const r of this.registered) {
      const contract = (contracts as Record<string, RouteContract>)[`${r.method} ${r.path}`]
      app.route({ method: r.method, url: r.path, onRequest: requireAuth, handler: async (req, reply) => await this.serve(r, contract, req, reply) })
    }
    try {
      await app.listen({ port, host: '127.0.0.1' })
    } catch (err) {
      this.app = undefined
      await app.close().catch(() => {})
      throw err
    }
    const addr = app.server.address()
    this.port = typeof addr === 'object' && addr !== null ? addr.port : port
    return this.port
  }

  async close (): Promise<void> {
    const app = this.app
    if (app === undefined) return
    this.app = undefined
    await app.close()
  }

  private add (r: Registered): void {
    this.notStarted()
    this.registered.push(r)
  }

  private notStarted (): void {
    if (this.app !== undefined) throw new DbcError('BAD_ROUTE', 'routes are registered before the control API listens')
  }

  private authorized (req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? ''
    if (h.startsWith('Bearer ')) {
      const given = Buffer.from(h.slice(7))
      return given.length === this.token.length && timingSafeEqual(given, this.token)
    }
    // the dashboard's session reads only: a GET changes nothing, so a forged cross-site request gains nothing
    const path = (req.url ?? '').split('?')[0]
    // and only as this address (no DNS-rebound name) from the dashboard's own pages
    if (!/^(127\.0\.0\.1|localhost)(:\d+)?$/.test(req.headers.host ?? '') || req.headers['sec-fetch-site'] === 'cross-site') return false
    return req.method === 'GET' && path.startsWith('/v1/') && this.auth.checkSession(readCookie(req.headers.cookie, SESSION_COOKIE))
  }

  private async serve (r: Registered, contract: RouteContract | undefined, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
    const url = new URL(req.url, 'http://127.0.0.1')
    const params = req.params as Record<string, string>
    checkPart('params', contract?.params, params)
    checkPart('query', contract?.query, Object.fromEntries(url.searchParams))
    // a missing body reads as {} where the contract wants an object (the handlers always did)
    checkPart('body', contract?.body, req.body ?? (contract?.body instanceof z.ZodObject ? {} : undefined))
    const ac = new AbortController()
    reply.raw.on('close', () => { ac.abort(new Error('client went away')) })
    const apiReq: ApiRequest = { params, query: url.searchParams, body: req.body, signal: ac.signal }
    if (r.stream !== undefined) {
      await reply.hijack()
      await this.writeStream(r.stream, apiReq, req.headers.accept ?? '', reply, contract)
      return
    }
    const text = JSON.stringify(await r.handler?.(apiReq) ?? {})
    this.checkAnswer(contract, text)
    return await reply.type('application/json').send(text)
  }

  private checkAnswer (contract: RouteContract | undefined, text: string): void {
    if (!this.checkResponses || contract === undefined) return
    const r = contract.response.safeParse(JSON.parse(text))
    if (!r.success) {
      const i = r.error.issues[0]
      throw new DbcError('RESPONSE_BREAKS_CONTRACT', `${contract.method} ${contract.path} answered against its contract: ${i.path.join('.')}: ${i.message}`, { hint: 'fix the response schema in src/api/routes.ts (then `npm run generate`) or the handler' })
    }
  }

  private async writeStream (stream: StreamHandler, apiReq: ApiRequest, accept: string, reply: FastifyReply, contract: RouteContract | undefined): Promise<void> {
    const res = reply.raw
    const sse = accept.includes('text/event-stream')
    const raw = sse ? (text: string) => { res.write(`data: ${text}\n\n`) } : (text: string) => { res.write(text + '\n') }
    let broken: DbcError | undefined
    const write = (event: unknown): void => {
      const text = JSON.stringify(event)
      try { this.checkAnswer(contract, text) } catch (err) { broken ??= err as DbcError }
      raw(text)
    }
    res.writeHead(200, sse ? { 'content-type': 'text/event-stream', 'cache-control': 'no-store' } : { 'content-type': 'application/x-ndjson' })
    const ping = sse ? setInterval(() => { res.write(': ping\n\n') }, this.ssePingMs) : undefined
    try {
      await stream(apiReq, write)
      if (broken !== undefined) throw broken
    } catch (err) {
      // the status line is gone: report the failure as the stream's last event
      const e = err as DbcError
      raw(JSON.stringify({ type: 'error', error: { code: e.code ?? 'INTERNAL', message: e.message ?? String(err), hint: e.hint } }))
    } finally {
      clearInterval(ping)
    }
    res.end()
  }
}

/** DbcError -> 400 (404 for NOT_FOUND) with { error: { code, name, message, hint } }; anything else 500. */
async function sendError (reply: FastifyReply, err: unknown): Promise<void> {
  if (reply.sent || reply.raw.headersSent) { reply.raw.end(); return }
  const fe = err as { code?: string, statusCode?: number, message?: string }
  let status: number
  let body: Record<string, unknown>
  if (err instanceof DbcError) {
    status = err.code === 'NOT_FOUND' ? 404 : err.code === 'RESPONSE_BREAKS_CONTRACT' ? 500 : 400
    body = { code: err.code, name: err.name, message: err.message, hint: err.hint, ...(err instanceof RequestInvalidError ? { field: err.data?.field } : {}) }
  } else if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    status = 400
    body = { code: 'BODY_TOO_LARGE', message: `request body over ${MAX_BODY_BYTES} bytes` }
  } else if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // the framework refused the request itself (a bad URL, an unsupported media type, ...)
    status = fe.statusCode
    body = { code: 'BAD_REQUEST', message: fe.message ?? 'bad request' }
  } else {
    status = 500
    body = { code: 'INTERNAL', message: fe.message ?? String(err) }
  }
  await reply.code(status).type('application/json').send(JSON.stringify({ error: body }))
}
