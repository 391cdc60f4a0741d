// The CLI's side of the control API: finds the daemon through <dataDir>/api.json and the
// token in <dataDir>/api-token, and turns every failure into an error a person can act on.
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'node:http'
import { DaemonUnavailableError, DbcError } from '../errors.js'
// types only: the CLI's start stays free of zod and the route table
import type { InputOf, ResponseOf } from './contract.js'
import type { RouteKey, Routes } from './routes.js'

export const API_INFO_FILE = 'api.json'
export const API_TOKEN_FILE = 'api-token'

export interface ApiInfo { port: number, pid: number, peerId: string, startedAt: number }

export function readApiInfo (dataDir: string): ApiInfo | undefined {
  const file = join(dataDir, API_INFO_FILE)
  if (!existsSync(file)) return undefined
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ApiInfo
  } catch {
    return undefined
  }
}

export function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export class ApiClient {
  readonly dataDir: string
  private readonly info: ApiInfo
  private readonly token: string

  private constructor (dataDir: string, info: ApiInfo, token: string) {
    this.dataDir = dataDir
    this.info = info
    this.token = token
  }

  static connect (dataDir: string): ApiClient {
    const notRunning = (): DaemonUnavailableError => new DaemonUnavailableError('DAEMON_NOT_RUNNING', `no dbc node is running with data dir ${dataDir}`, {
      hint: 'start one with `dbc node start` (add --detach to run it in the background), or pass the --data-dir the node uses'
    })
    const info = readApiInfo(dataDir)
    if (info === undefined || !processAlive(info.pid)) throw notRunning()
    let token: string
    try {
      token = readFileSync(join(dataDir, API_TOKEN_FILE), 'utf8').trim()
    } catch {
      throw notRunning()
    }
    return new ApiClient(dataDir, info, token)
  }

  get pid (): number { return this.info.pid }

  async call<T = unknown> (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
    const res = await this.raw(method, path, body, opts.timeoutMs ?? 60_000)
    const text = await collect(res.stream)
    let json: any
    try { json = text === '' ? {} : JSON.parse(text) } catch { throw new DbcError('API_BAD_RESPONSE', `the daemon answered ${path} with something that is not JSON`) }
    if (res.status >= 400) {
      const e = json?.error ?? {}
      throw new DbcError(e.code ?? 'API_ERROR', e.message ?? `the daemon answered ${res.status}`, { hint: e.hint })
    }
    return json as T
  }

  /**
   * Calls a route by its contract key, typed from routes.ts:
   * `await client.request('GET /v1/jobs/:id', { params: { id } })` is a job status.
   */
  async request<K extends RouteKey> (key: K, ...[input, opts]: RequestArgs<K>): Promise<ResponseOf<Routes[K]>> {
    const { method, path } = this.pathOf(key, input)
    return await this.call<ResponseOf<Routes[K]>>(method as 'GET' | 'POST' | 'DELETE', path, input?.body, opts)
  }

  /** The events of a stream route by its contract key (e.g. 'GET /v1/jobs/:id/events'). */
  async * events<K extends StreamKey> (key: K, ...[input]: RequestArgs<K>): AsyncGenerator<ResponseOf<Routes[K]>> {
    const { method, path } = this.pathOf(key, input)
    yield * this.stream<ResponseOf<Routes[K]>>(method as 'GET' | 'POST', path, input?.body)
  }

  private pathOf (key: RouteKey, input: { params?: unknown, query?: unknown } | undefined): { method: string, path: string } {
    const [method, template] = key.split(' ')
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries((input?.query ?? {}) as Record<string, unknown>)) if (v !== undefined) q.set(k, String(v))
    const qs = q.toString()
    return { method, path: fillPath(template, input?.params as Record<string, string> | undefined) + (qs === '' ? '' : `?${qs}`) }
  }

  /** Calls a streaming route and yields each newline-delimited JSON event. */
  async * stream<T = unknown> (method: 'GET' | 'POST', path: string, body?: unknown): AsyncGenerator<T> {
    const res = await this.raw(method, path, body, 0)
    if (res.status >= 400) {
      const text = await collect(res.stream)
      const e = (() => { try { return JSON.parse(text).error ?? {} } catch { return {} } })()
      throw new DbcError(e.code ?? 'API_ERROR', e.message ?? `the daemon answered ${res.status}`, { hint: e.hint })
    }
    let buf = ''
    const chunks = res.stream[Symbol.asyncIterator]()
    while (true) {
      let next: IteratorResult<string | Buffer>
      try {
        next = await chunks.next()
      } catch (err) {
        // the node went away mid-stream (stopped, killed): Node says only "aborted" or ECONNRESET
        const e = err as NodeJS.ErrnoException
        throw new DaemonUnavailableError('DAEMON_LOST', `the node closed ${path} before its end (${e.code ?? e.message})`, {
          hint: 'it may have stopped: run `dbc node status`, or start it with `dbc node start`; jobs it runs are kept in its store and resume when it starts again'
        })
      }
      if (next.done === true) break
      const chunk = next.value
      buf += chunk.toString()
      let i: number
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (line.trim() === '') continue
        const ev = JSON.parse(line) as { type?: string, error?: { code?: string, message?: string, hint?: string } }
        if (ev.type === 'error' && ev.error !== undefined) throw new DbcError(ev.error.code ?? 'API_ERROR', ev.error.message ?? 'the daemon reported an error', { hint: ev.error.hint })
        yield ev as T
      }
    }
  }

  private async raw (method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number, stream: NodeJS.ReadableStream }> {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    return await new Promise((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: this.info.port,
        method,
        path,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': data.length } : {})
        }
      }, res => { resolve({ status: res.statusCode ?? 500, stream: res }) })
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => {
          req.destroy(new DaemonUnavailableError('DAEMON_TIMEOUT', `the node did not answer ${path} within ${timeoutMs / 1000} s`, { hint: 'it may be overloaded or stuck; check its log in <data-dir>/logs/node.log' }))
        })
      }
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err instanceof DbcError) { reject(err); return }
        reject(new DaemonUnavailableError('DAEMON_UNREACHABLE', `cannot reach the node's control API on 127.0.0.1:${this.info.port} (${err.code ?? err.message})`, {
          hint: 'the node may have just stopped; run `dbc node status`, or start it with `dbc node start`'
        }))
      })
      if (data !== undefined) req.write(data)
      req.end()
    })
  }
}

/** Fills ':name' segments of a contract path. */
export function fillPath (path: string, params: Record<string, string | number> | undefined): string {
  return path.split('/').map(seg => {
    if (!seg.startsWith(':')) return seg
    const v = params?.[seg.slice(1)]
    if (v === undefined) throw new DbcError('BAD_REQUEST', `the route ${path} needs the parameter ${seg.slice(1)}`)
    return encodeURIComponent(String(v))
  }).join('/')
}

type RequestOpts = { timeoutMs?: number }
/** The input may be left out when the route needs no parameters. */
type RequestArgs<K extends RouteKey> = 'params' extends keyof Routes[K]
  ? [input: InputOf<Routes[K]>, opts?: RequestOpts]
  : [input?: InputOf<Routes[K]>, opts?: RequestOpts]
type StreamKey = { [K in RouteKey]: Routes[K] extends { stream: true } ? K : never }[RouteKey]

async function collect (s: NodeJS.ReadableStream): Promise<string> {
  let out = ''
  for await (const c of s) out += c.toString()
  return out
}
