// The node's web dashboard: its data routes under /v1/dashboard, the node-wide event stream
// GET /v1/events, and the front end (src/dashboard/web, plain ES modules) with its vendored
// libraries served from node_modules (no CDN: the page works offline). The API server signs the
// browser in (one-time link, session cookie) and lets the cookie read GET routes only.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ApiServer } from '../api/server.js'
import type { DaemonContext } from '../node/daemon.js'
import type { ComputePeer } from '../compute/index.js'
import type { PaymentGate } from '../jobs/payment-gate.js'
import type { JobService } from '../jobs/service.js'
import type { Overlay } from '../net/overlay/index.js'
import { JobStore } from '../jobs/store.js'
import { DbcError } from '../errors.js'
import { networkView } from './network-view.js'
import { jobDetail } from './jobs-view.js'
import { judgeReachability } from './reachability.js'
import { streamNodeEvents } from './events.js'
import { SlotTracker } from './slots.js'

export const WEB_DIR = fileURLToPath(new URL('./web', import.meta.url))

export interface DashboardDeps {
  context: DaemonContext
  /** A running subsystem by name (compute, overlay, jobs, training, chain), read at request time. */
  subsystem: (name: string) => unknown
  version: string
}

/** Vendored browser files: URL path -> file in node_modules. */
export function vendorFiles (): Record<string, string> {
  const require = createRequire(import.meta.url)
  const pkgDir = (name: string, from = require): string => {
    // package.json where exports allow it (world-atlas has no main), else walk up from the main
    // file (chart.js and d3 export neither package.json nor their dist/ paths)
    try { return dirname(from.resolve(`${name}/package.json`)) } catch {}
    let d = dirname(from.resolve(name))
    while (!d.endsWith(`node_modules/${name}`) && dirname(d) !== d) d = dirname(d)
    return d
  }
  const out: Record<string, string> = {}
  // a missing package costs its page part (the page says so), not the node
  const add = (url: string, file: () => string): void => { try { out[url] = file() } catch {} }
  add('/dashboard/vendor/chart.umd.min.js', () => join(pkgDir('chart.js'), 'dist/chart.umd.min.js'))
  add('/dashboard/vendor/d3-array.min.js', () => join(pkgDir('d3-array', createRequire(join(pkgDir('d3-geo'), 'package.json'))), 'dist/d3-array.min.js'))
  add('/dashboard/vendor/d3-geo.min.js', () => join(pkgDir('d3-geo'), 'dist/d3-geo.min.js'))
  add('/dashboard/vendor/topojson-client.min.js', () => join(pkgDir('topojson-client'), 'dist/topojson-client.min.js'))
  add('/dashboard/vendor/countries-110m.json', () => join(pkgDir('world-atlas'), 'countries-110m.json'))
  return out
}

export function registerDashboard (api: ApiServer, deps: DashboardDeps): void {
  const ctx = deps.context
  const compute = (): { peer?: ComputePeer, payment?: PaymentGate } | undefined => deps.subsystem('compute') as any
  const overlay = (): Overlay | undefined => (deps.subsystem('overlay') as { overlay?: Overlay } | undefined)?.overlay
  const jobService = (): JobService | undefined => (deps.subsystem('jobs') as { service?: JobService } | undefined)?.service
  const training = (): { list?: () => Array<Record<string, unknown>> } | undefined => deps.subsystem('training') as any
  const jobStore = new JobStore(ctx.store)
  const slots = new SlotTracker()
  const peer = compute()?.peer
  if (peer !== undefined) slots.attach(peer.events)

  try {
    api.staticDir('/dashboard', WEB_DIR, vendorFiles())
  } catch (err) {
    ctx.log.warn({ err: (err as Error).message, dir: WEB_DIR }, 'dashboard files not found: the web dashboard is off (its /v1 routes still answer)')
  }

  api.route('GET', '/v1/dashboard/network', () => networkView(ctx.host, overlay(), ctx.location))

  api.route('GET', '/v1/dashboard/jobs/:id', (req) => {
    const svc = jobService()
    if (svc === undefined) throw new DbcError('NOT_READY', 'the job service is not running')
    const limit = Math.max(1, Math.min(5000, Number(req.query.get('limit') ?? 400) || 400))
    return jobDetail(ctx.store, jobStore, svc, req.params.id, limit)
  })

  // the work this node does for others: slots now, and per job what its payer owes and signed
  api.route('GET', '/v1/dashboard/served', () => ({ slots: slots.view(), jobs: compute()?.payment?.status() ?? [] }))

  api.route('GET', '/v1/dashboard/node', () => {
    const { host, config } = ctx
    const c = compute()?.peer
    let caps: ReturnType<ComputePeer['capabilities']> | undefined
    try { caps = c?.capabilities() } catch {}
    return {
      peerId: ctx.identity.peerId.toString(),
      version: deps.version,
      network: config.network,
      addrs: host.getMultiaddrs().map(String),
      location: ctx.location ?? null,
      reachability: judgeReachability({
        addrs: host.getMultiaddrs().map(String),
        behindNat: config.nat.behindNat,
        inboundFrom: host.getConnections().filter(x => x.direction === 'inbound').map(x => x.remoteAddr.toString())
      }),
      slots: { ...slots.view(), cpuSlots: caps?.cpu.slots ?? null },
      executors: caps?.executors ?? [],
      unavailable: caps?.unavailable ?? {},
      gpus: caps?.gpus ?? []
    }
  })

  api.streamRoute('GET', '/v1/events', async (req, send) => {
    await streamNodeEvents(req, send, {
      subscribe: (wake) => {
        const onPeer = (): void => { wake() }
        ctx.host.addEventListener('peer:connect', onPeer)
        ctx.host.addEventListener('peer:disconnect', onPeer)
        const offSlots = slots.onChange(wake)
        return () => {
          ctx.host.removeEventListener('peer:connect', onPeer)
          ctx.host.removeEventListener('peer:disconnect', onPeer)
          offSlots()
        }
      },
      peers: () => ({ connections: ctx.host.getConnections().length, peers: ctx.host.getPeers().length }),
      jobs: () => jobService()?.list().map(({ summary: _s, ...j }) => j) ?? [],
      training: () => (training()?.list?.() ?? []).map(t => ({ jobId: t.jobId, status: t.status, round: t.round, rounds: t.rounds, loss: t.loss, accuracy: t.accuracy })),
      slots: () => slots.view()
    })
  })
}
