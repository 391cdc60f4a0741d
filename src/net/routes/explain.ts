// The route in `dbc job explain`: each copy of a task says how the submitter reached the
// provider that ran it (direct / hole-punched / relayed via which relay / overlay via which
// overlay relays, and why).
import type { RouteBook, RouteInfo } from './index.js'

export interface CopyRoute { kind: RouteInfo['kind'], relay?: string, relays?: string[], facts: string }

export function copyRoute (r: RouteInfo): CopyRoute {
  return { kind: r.kind, ...(r.relay !== undefined ? { relay: r.relay } : {}), ...(r.relays !== undefined ? { relays: r.relays } : {}), facts: r.facts }
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

/** One line per route, as `dbc job explain` prints it: `relayed via R`, `overlay via R1, R2`, `direct`. */
export function describeRoute (r: { kind: string, relay?: string, relays?: string[] }): string {
  if (r.kind === 'relayed') return `relayed via ${r.relay ?? '?'}`
  if (r.kind === 'overlay') return `overlay via ${(r.relays ?? []).length > 0 ? (r.relays ?? []).join(', ') : '?'}`
  return r.kind
}
