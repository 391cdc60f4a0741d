// The route in `dbc job explain`: each copy of a task says how the submitter reached the
// provider that ran it (direct / hole-punched / relayed via which relay, and why).
import type { RouteBook, RouteInfo } from './index.js'

export interface CopyRoute { kind: RouteInfo['kind'], relay?: string, facts: string }

export function copyRoute (r: RouteInfo): CopyRoute {
  return { kind: r.kind, ...(r.relay !== undefined ? { relay: r.relay } : {}), facts: r.facts }
}

/**
 * Adds the routes to an explanation: `route` on each copy of `task` (the route last used to
 * that provider: routes live in memory, so a job explained after a restart has none until
 * its providers are contacted again) and `routes`, every provider this node has a route to.
 */
export function withRoutes<T extends { task?: { copies: Array<{ provider: string }> } }> (e: T, book: RouteBook | undefined): T & { routes?: Record<string, RouteInfo> } {
  if (book === undefined) return e
  const task = e.task === undefined
    ? undefined
    : { ...e.task, copies: e.task.copies.map(c => { const r = book.get(c.provider); return r === undefined ? c : { ...c, route: copyRoute(r) } }) }
  return { ...e, ...(task !== undefined ? { task } : {}), routes: book.all() }
}
