// The inbound guard: per-peer and per-node budgets for every dbc protocol (see constants.ts for
// the defaults and why). A node has one guard; every protocol registers through guardedHandle,
// which finds the host's guard (the daemon installs one with installGuard; a host without one,
// in tests and benches, gets a default guard that resets but charges no one).
import type { Libp2p } from '@libp2p/interface'
import { InboundGuard, type InboundGuardInit, type GuardedHandler, type GuardedHandleOptions } from './guard.js'

export { InboundGuard, markHandled, wasHandled } from './guard.js'
export type { InboundGuardInit, GuardedHandler, GuardedHandleOptions, GuardedStreamContext, GuardedStreamInit, GuardStats } from './guard.js'
export * from './constants.js'
export { RepeatLimiter } from './log-limit.js'
export { PeerStoreCap } from './peer-store-cap.js'
export { addressKey } from './address-key.js'
export { OutboundBudget, OUTBOUND_READ_BYTES, OUTBOUND_PEER_READ_BYTES, OUTBOUND_UNPAUSABLE_BYTES, type OutboundStats } from './outbound.js'

/** Creates a guard; the daemon creates one per node and passes its charge callback. */
export function createInboundGuard (init: InboundGuardInit = {}): InboundGuard {
  return new InboundGuard(init)
}

const guards = new WeakMap<object, InboundGuard>()

/** Makes `guard` the one every protocol registered on `host` goes through. */
export function installGuard (host: object, guard: InboundGuard): void {
  guards.set(host, guard)
}

/** The guard of `host` (a default one, created on first use, when none was installed). */
export function guardOf (host: object): InboundGuard {
  let g = guards.get(host)
  if (g === undefined) {
    g = new InboundGuard({ identityGate: false })
    guards.set(host, g)
  }
  return g
}

/**
 * Registers a protocol handler behind the host's guard: stream caps per peer, buffer budgets,
 * read deadlines, and the protocol context (peer, protocol) for the daemon's last resort. The
 * handler gets `ctx.open()` for its FramedStream.
 */
export async function guardedHandle (host: Pick<Libp2p, 'handle'>, protocol: string, handler: GuardedHandler, opts: GuardedHandleOptions = {}): Promise<void> {
  await guardOf(host).handle(host, protocol, handler, opts)
}
