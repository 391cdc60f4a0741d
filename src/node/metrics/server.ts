// The metrics listener: GET /metrics (Prometheus text format), /healthz and /readyz, no token,
// on its own address (config `metrics.listen`, off by default, 127.0.0.1 when only a port is
// given). Read-only: it answers nothing else.
import { createServer, type Server, type ServerResponse } from 'node:http'
import { listenOn, closeServer } from '../../api/http-listen.js'
import type { HealthChecks } from './health.js'

export { parseListen } from './listen.js'

export interface MetricsEndpoint { text: () => Promise<string>, contentType: string }

export class MetricsServer {
  private server: Server | undefined

  constructor (private readonly metrics: MetricsEndpoint, private readonly health: HealthChecks) {}

  /** Listens; resolves with the bound address as HOST:PORT. */
  async listen (host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (req.method !== 'GET' && req.method !== 'HEAD') { send(res, 405, 'text/plain', 'only GET\n'); return }
      if (path === '/metrics') {
        this.metrics.text().then(body => { send(res, 200, this.metrics.contentType, body) }, (err: Error) => { send(res, 500, 'text/plain', `metrics failed: ${err.message}\n`) })
      } else if (path === '/healthz') {
        const h = this.health.live()
        send(res, h.status, 'application/json', JSON.stringify(h.body))
      } else if (path === '/readyz') {
        this.health.ready().then(r => { send(res, r.status, 'application/json', JSON.stringify(r.body)) }, (err: Error) => { send(res, 500, 'text/plain', `${err.message}\n`) })
      } else {
        send(res, 404, 'text/plain', 'this address serves /metrics, /healthz and /readyz\n')
      }
    })
    this.server = server
    const a = await listenOn(server, port, host)
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
  }

  async close (): Promise<void> {
    const s = this.server
    if (s === undefined) return
    this.server = undefined
    await closeServer(s)
  }
}

function send (res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}
