// What a route to a provider costs placement: a relayed route (circuit relay v2) carries every
// byte through the relay, so it pays the extra leg to the relay in RTT and the relay's
// bandwidth cap; a direct or hole-punched connection costs what the network estimate says.
// An overlay route (sealed envelopes through an overlay relay, src/net/overlay/task-envelopes.ts)
// pays two hops (submitter → relay → provider) plus sealing, chunk acks and the relay's
// forwarding, at the bandwidth of the slowest hop.
// Pure: the submitter passes the estimates it has (src/net/routes records the route).

export type RouteKind = 'direct' | 'hole-punched' | 'relayed' | 'overlay'

/** What an overlay message adds at the ends and at its relay: seal/open, the recipient's chunk acks, a forward. */
export const OVERLAY_EXTRA_MS = 5

/** Forwarding cost at a relay on top of the extra leg (two socket hops, its event loop). */
export const RELAY_FORWARD_MS = 2
/** Assumed when the relay's RTT is unknown: a relay is usually a nearby well-connected node, not free. */
export const UNKNOWN_RELAY_RTT_MS = 20
/** Assumed relay throughput per relayed connection when nothing better is known (a shared public node). */
export const RELAY_BANDWIDTH_BYTES_PER_SEC = 2e6

export interface RouteCostInput {
  kind: RouteKind
  /** The estimate to the provider as if it were reachable directly (geo / Vivaldi / measured). */
  rttMs?: number
  bandwidthBytesPerSec?: number
  /** Estimated RTT from the submitter to the relay, for a relayed route. */
  relayRttMs?: number
  /** The relay's throughput for our connection, when known. */
  relayBandwidthBytesPerSec?: number
}

export interface RouteCost {
  rttMs: number | undefined
  bandwidthBytesPerSec: number | undefined
  /** What the route adds to the direct estimate (0 for direct and hole-punched). */
  extraRttMs: number
}

/**
 * The network figures placement should use for a provider on a route. A relayed path is
 * submitter → relay → provider; the relay → provider leg is taken as the direct estimate
 * (the submitter cannot measure it), so the relay hop adds the submitter → relay RTT plus
 * forwarding. Bandwidth is capped by the relay's.
 */
export function routeCost (r: RouteCostInput): RouteCost {
  if (r.kind === 'overlay') {
    const extra = Math.max(0, r.relayRttMs ?? UNKNOWN_RELAY_RTT_MS) + RELAY_FORWARD_MS + OVERLAY_EXTRA_MS
    const relayBw = r.relayBandwidthBytesPerSec ?? RELAY_BANDWIDTH_BYTES_PER_SEC
    return { rttMs: (r.rttMs ?? 1) + extra, bandwidthBytesPerSec: Math.min(r.bandwidthBytesPerSec ?? relayBw, relayBw), extraRttMs: extra }
  }
  if (r.kind !== 'relayed') return { rttMs: r.rttMs, bandwidthBytesPerSec: r.bandwidthBytesPerSec, extraRttMs: 0 }
  const extra = Math.max(0, r.relayRttMs ?? UNKNOWN_RELAY_RTT_MS) + RELAY_FORWARD_MS
  const relayBw = r.relayBandwidthBytesPerSec ?? RELAY_BANDWIDTH_BYTES_PER_SEC
  const bw = r.bandwidthBytesPerSec === undefined ? relayBw : Math.min(r.bandwidthBytesPerSec, relayBw)
  return { rttMs: (r.rttMs ?? 1) + extra, bandwidthBytesPerSec: bw, extraRttMs: extra }
}
