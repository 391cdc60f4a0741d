// Which protocol and peer the code now running serves: protocol handlers run inside
// withProtocolContext(), so the daemon's last line of defence (src/node/last-resort.ts) can name
// the peer and protocol behind an error that escaped a handler.
import { AsyncLocalStorage } from 'node:async_hooks'

export interface ProtocolContext { protocol: string, peer: string }

const storage = new AsyncLocalStorage<ProtocolContext>()

/** Runs `fn` (and everything it schedules) as serving `ctx`. */
export function withProtocolContext<T> (ctx: ProtocolContext, fn: () => T): T {
  return storage.run(ctx, fn)
}

/** The protocol and peer the current async call chain serves, if any. */
export function currentProtocolContext (): ProtocolContext | undefined {
  return storage.getStore()
}

/**
 * withProtocolContext for a one-argument function, with no closure per call: a protocol's
 * per-frame handler re-enters the context its stream handler ran in (src/net/overlay/relay-inbound.ts).
 */
export function inProtocolContext<A, T> (ctx: ProtocolContext, fn: (a: A) => T, a: A): T {
  return storage.run(ctx, fn, a)
}
