// The daemon's control API: JSON over HTTP on 127.0.0.1 only, every request carrying the
// bearer token from <dataDir>/api-token (mode 0600). Routes are registered by the daemon's
// subsystems; a handler returns a JSON-able value or throws a DbcError.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import { listenOn, closeServer } from './http-listen.js'
import { DbcError } from '../errors.js'

export type Method = 'GET' | 'POST' | 'DELETE'
export interface ApiRequest {
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
  signal: AbortSignal
}
export type Handler = (req: ApiRequest) => Promise<unknown> | unknown
/** Streaming handler: writes newline-delimited JSON events until it resolves. */
export type StreamHandler = (req: ApiRequest, send: (event: unknown) => void) => Promise<void>

interface Route { method: Method, parts: string[], handler?: Handler, stream?: StreamHandler }
/** A route answered without the token (health probes): its handler returns the HTTP status and body. */
export type PublicHandler = () => Promise<{ status: number, body: unknown }> | { status: number, body: unknown }

const MAX_BODY_BYTES = 8 * 1024 * 1024

export class ApiServer {
  private readonly routes: Route[] = []
  private readonly publicRoutes = new Map<string, PublicHandler>()
  private server: Server | undefined
  private readonly token: Buffer

  constructor (token: string) {
    this.token = Buffer.from(token)
  }

  /** Path segments starting with ':' capture parameters, e.g. '/v1/jobs/:id'. */
  route (method: Method, path: string, handler: Handler): void {
    this.routes.push({ method, parts: path.split('/').filter(Boolean), handler })
  }

  /** A GET answered without the token, outside /v1 (e.g. /healthz): it must reveal nothing private. */
  publicRoute (path: string, handler: PublicHandler): void {
    const parts = path.split('/').filter(Boolean)
    if (parts[0] === 'v1') throw new DbcError('BAD_ROUTE', 'routes under /v1 always need the token')
    this.publicRoutes.set('/' + parts.join('/'), handler)
  }

  streamRoute (method: Method, path: string, stream: StreamHandler): void {
    this.routes.push({ method, parts: path.split('/').filter(Boolean), stream })
  }

  async listen (port: number): Promise<number> {
    const server = createServer((req, res) => { void this.serve(req, res) })
    this.server = server
    return (await listenOn(server, port, '127.0.0.1')).port
  }

  async close (): Promise<void> {
    const s = this.server
    if (s === undefined) return
    this.server = undefined
    await closeServer(s)
  }

  private authorized (req: IncomingMessage): boolean {
    const h = req.headers.authorization ?? ''
    if (!h.startsWith('Bearer ')) return false
    const given = Buffer.from(h.slice(7))
    return given.length === this.token.length && timingSafeEqual(given, this.token)
  }

  private async serve (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ac = new AbortController()
    res.on('close', () => { ac.abort(new Error('client went away')) })
    try {
      const open = req.method === 'GET' ? this.publicRoutes.get(new URL(req.url ?? '/', 'http://127.0.0.1').pathname) : undefined
      if (open !== undefined) {
        const r = await open()
        return send(res, r.status, r.body)
      }
      if (!this.authorized(req)) {
        return send(res, 401, { error: { code: 'UNAUTHORIZED', message: 'missing or wrong API token', hint: 'the CLI reads the token from the data dir; use the same --data-dir as the daemon' } })
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const parts = url.pathname.split('/').filter(Boolean)
      const match = this.match(req.method as Method, parts)
      if (match === undefined) return send(res, 404, { error: { code: 'NOT_FOUND', message: `no API route ${req.method ?? ''} ${url.pathname}`, hint: 'the CLI and the daemon may be different versions' } })
      const body = await readBody(req)
      const apiReq: ApiRequest = { params: match.params, query: url.searchParams, body, signal: ac.signal }
      if (match.route.stream !== undefined) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        try {
          await match.route.stream(apiReq, (event) => { res.write(JSON.stringify(event) + '\n') })
        } catch (err) {
          // the status line is gone: report the failure as the stream's last event
          const e = err as DbcError
          res.write(JSON.stringify({ type: 'error', error: { code: e.code ?? 'INTERNAL', message: e.message ?? String(err), hint: e.hint } }) + '\n')
        }
        res.end()
        return
      }
      const out = await match.route.handler?.(apiReq)
      send(res, 200, out ?? {})
    } catch (err) {
      if (res.headersSent) { res.end(); return }
      if (err instanceof DbcError) {
        send(res, err.code === 'NOT_FOUND' ? 404 : 400, { error: { code: err.code, name: err.name, message: err.message, hint: err.hint } })
      } else {
        send(res, 500, { error: { code: 'INTERNAL', message: (err as Error).message ?? String(err) } })
      }
    }
  }

  private match (method: Method, parts: string[]): { route: Route, params: Record<string, string> } | undefined {
    outer: for (const r of this.routes) {
      if (r.method !== method || r.parts.length !== parts.length) continue
      const params: Record<string, string> = {}
      for (let i = 0; i < parts.length; i++) {
        if (r.parts[i].startsWith(':')) params[r.parts[i].slice(1)] = decodeURIComponent(parts[i])
        else if (r.parts[i] !== parts[i]) continue outer
      }
      return { route: r, params }
    }
    return undefined
  }
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) })
  res.end(data)
}

async function readBody (req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  let n = 0
  for await (const c of req) {
    n += (c as Buffer).length
    if (n > MAX_BODY_BYTES) throw new DbcError('BODY_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`)
    chunks.push(c as Buffer)
  }
  if (n === 0) return undefined
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new DbcError('BAD_REQUEST', 'request body is not JSON')
  }
}
