// The route book's WebRTC attempt (src/net/routes/index.ts): when this node runs WebRTC (it
// listens on `/webrtc`: behind NAT, src/net/host.ts) and a peer it first reached through a relay
// announces a `/p2p-circuit/webrtc` address, dial that address once. The SDP offer and answer go
// over the relayed connection and ICE opens a direct UDP path through both NATs; a failed attempt
// (a symmetric NAT, a router that keeps no hole) leaves the route relayed, and explain says which.
import type { PeerId, Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { webrtcDialerOf, webrtcAdmissionOf, type Host } from '../host.js'
import { isWebRTC } from '../nat-addr.js'
import type { WebRTCAdmission } from '../../core/routing/webrtc-admission.js'

/** How long one WebRTC attempt may take (signalling through the relay, ICE, DTLS, SCTP: ~0.5 s between two NATs). */
export const WEBRTC_DIAL_MS = 10_000
/** Peers (and connections) remembered for explain's facts, at most. */
const REMEMBERED = 4096

export type WebRTCAttempt = 'none' | 'failed' | 'open'

export class WebRTCUpgrade {
  /** When our last attempt to each peer started (explain: how long the connection took to open). */
  private readonly started = new Map<string, number>()
  /** Peers whose attempt failed (no ICE path through the NATs). */
  private readonly failed = new Set<string>()
  private readonly trying = new Set<string>()

  /**
   * `admission`: the host's bound on WebRTC attempts (src/core/routing/webrtc-admission.ts), which
   * our own attempts take too: each is a native PeerConnection for up to WEBRTC_DIAL_MS, and a
   * round touching many relayed providers would otherwise open one per provider at once (review s10 L3).
   */
  constructor (private readonly host: Host, private readonly now: () => number, private readonly admission: WebRTCAdmission | undefined = webrtcAdmissionOf(host)) {}

  /** Attempts skipped because the bound was full (explain says so; metrics count the admission's refusals). */
  skipped = 0

  /** Dials `peer`'s WebRTC address: 'none' when there is nothing to try (a public node, no such address, the bound is full). */
  async tryOnce (peer: PeerId): Promise<WebRTCAttempt> {
    if (!this.host.getMultiaddrs().some(a => isWebRTC(a))) return 'none'
    let addrs: Multiaddr[] = []
    try { addrs = (await this.host.peerStore.get(peer)).addresses.map(a => a.multiaddr).filter(a => isWebRTC(a) && a.toString().includes('/p2p-circuit')) } catch { return 'none' }
    if (addrs.length === 0) return 'none'
    const id = peer.toString()
    const open = this.host.getConnections().filter(c => isWebRTC(c.remoteAddr))
    // the same bound as inbound attempts: an attempt from this peer in flight already is one too many
    if (this.admission?.admit(id, { peer: open.filter(c => c.remotePeer.toString() === id).length, total: open.length }) !== undefined) { this.skipped++; return 'none' }
    this.trying.add(id)
    remember(this.started, id, this.now())
    try {
      for (const a of addrs.slice(0, 2)) {
        try {
          const ma = a.toString().endsWith(`/p2p/${id}`) ? a : a.encapsulate(`/p2p/${id}`)
          const signal = AbortSignal.timeout(WEBRTC_DIAL_MS)
          const direct = webrtcDialerOf(this.host)
          await (direct !== undefined ? direct(ma, signal) : this.host.dial(ma, { signal }))
        } catch { continue }
        this.failed.delete(id)
        return 'open'
      }
      if (this.failed.size >= REMEMBERED) this.failed.delete(this.failed.values().next().value as string)
      this.failed.add(id)
      return 'failed'
    } finally {
      this.trying.delete(id)
      this.admission?.done(id)
    }
  }

  /**
   * How long after our attempt to `conn`'s peer began the WebRTC connection opened (either side's
   * dial: both NATed nodes try at first contact, and the first ICE to finish wins).
   */
  dialMs (conn: Connection): number | undefined {
    const t0 = this.started.get(conn.remotePeer.toString())
    const ms = t0 === undefined ? undefined : conn.timeline.open - t0
    return ms === undefined || ms < 0 || ms > WEBRTC_DIAL_MS ? undefined : ms
  }

  /** What explain adds to a relayed route to `peer` about WebRTC, or undefined when none was tried. */
  relayedFacts (peer: string, waitedMs: number): string | undefined {
    if (this.failed.has(peer)) return '; WebRTC found no path through the NATs'
    if (this.trying.has(peer)) return `; WebRTC attempt still running after ${waitedMs} ms`
    return undefined
  }
}

function remember (m: Map<string, number>, k: string, v: number): void {
  if (m.size >= REMEMBERED) m.delete(m.keys().next().value as string)
  m.set(k, v)
}
