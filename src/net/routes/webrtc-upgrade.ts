// The route book's WebRTC attempt (src/net/routes/index.ts): when this node runs WebRTC (it
// listens on `/webrtc`: behind NAT, src/net/host.ts) and a peer it first reached through a relay
// announces a `/p2p-circuit/webrtc` address, dial that address once. The SDP offer and answer go
// over the relayed connection and ICE opens a direct UDP path through both NATs; a failed attempt
// (a symmetric NAT, a router that keeps no hole) leaves the route relayed, and explain says which.
// An attempt the host's bound turned away ('busy') is not a try: the book tries again at the next
// contact at least WEBRTC_RETRY_MS later (review s11 M5).
import type { PeerId, Connection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { webrtcDialerOf, webrtcAdmissionOf, type Host } from '../host.js'
import { isWebRTC } from '../nat-addr.js'
import type { WebRTCAdmission } from '../../core/routing/webrtc-admission.js'

/** How long one WebRTC attempt may take (signalling through the relay, ICE, DTLS, SCTP: ~0.5 s between two NATs). */
export const WEBRTC_DIAL_MS = 10_000
/** How long after an attempt was turned away by the bound (busy) the next contact may try again. */
export const WEBRTC_RETRY_MS = 5_000
/** Peers (and connections) remembered for explain's facts, at most. */
const REMEMBERED = 4096

/** 'none': nothing to try (a public node, no such address); 'busy': the bound was full, try again later. */
export type WebRTCAttempt = 'none' | 'busy' | 'failed' | 'open'

export class WebRTCUpgrade {
  /** When our last attempt to each peer started (explain: how long the connection took to open). */
  private readonly started = new Map<string, number>()
  /** Peers whose attempt failed (no ICE path through the NATs). */
  private readonly failed = new Set<string>()
  private readonly trying = new Set<string>()
  /** Peers whose attempt the bound turned away: when the next contact may try again. */
  private readonly retryAt = new Map<string, number>()
  /** Why a deferred attempt was turned away: the peer's own attempt to us (both NATed sides dial at first contact) or the bound. */
  private readonly deferredBy = new Map<string, string>()

  /**
   * `admission`: the host's bound on WebRTC attempts (src/core/routing/webrtc-admission.ts), which
   * our own attempts take too: each is a native PeerConnection for up to WEBRTC_DIAL_MS, and a
   * round touching many relayed providers would otherwise open one per provider at once (review s10 L3).
   */
  constructor (private readonly host: Host, private readonly now: () => number, private readonly admission: WebRTCAdmission | undefined = webrtcAdmissionOf(host)) {}

  /** Attempts skipped because the bound was full (explain says so; metrics count the admission's refusals). */
  skipped = 0

  /** Whether an attempt to `peer` was turned away by the bound and may be tried again now. */
  retryDue (peer: string): boolean {
    const at = this.retryAt.get(peer)
    return at !== undefined && this.now() >= at
  }

  /** Whether an attempt to `peer` was turned away by the bound and may be tried again now (it then counts as taken: one retry per turn). */
  takeRetry (peer: string): boolean {
    const at = this.retryAt.get(peer)
    if (at === undefined || this.now() < at) return false
    this.retryAt.delete(peer)
    this.deferredBy.delete(peer)
    return true
  }

  /** Dials `peer`'s WebRTC address: 'none' when there is nothing to try (a public node, no such address), 'busy' when the bound is full. */
  async tryOnce (peer: PeerId): Promise<WebRTCAttempt> {
    if (!this.host.getMultiaddrs().some(a => isWebRTC(a))) return 'none'
    let addrs: Multiaddr[] = []
    try { addrs = (await this.host.peerStore.get(peer)).addresses.map(a => a.multiaddr).filter(a => isWebRTC(a) && a.toString().includes('/p2p-circuit')) } catch { return 'none' }
    if (addrs.length === 0) return 'none'
    const id = peer.toString()
    const open = this.host.getConnections().filter(c => isWebRTC(c.remoteAddr))
    // the host's bound (our own share of attempts in flight; an attempt with this peer in flight
    // already, either way, is one too many): turned away, it is tried again later, not never
    const refused = this.admission?.admit(id, { peer: open.filter(c => c.remotePeer.toString() === id).length, total: open.length }, 'outbound')
    if (refused !== undefined) {
      this.skipped++
      remember(this.retryAt, id, this.now() + WEBRTC_RETRY_MS)
      if (this.deferredBy.size >= REMEMBERED) this.deferredBy.delete(this.deferredBy.keys().next().value as string)
      this.deferredBy.set(id, refused)
      return 'busy'
    }
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
      this.admission?.done(id, 'outbound')
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
    if (this.retryAt.has(peer)) {
      // at first contact both NATed sides dial: ours waits while the peer's own attempt to us runs
      const why = this.deferredBy.get(peer) === 'peer-in-flight' ? 'the peer\'s own WebRTC attempt to us was in flight' : 'too many WebRTC attempts in flight'
      return `; WebRTC attempt deferred: ${why} (tried again at a later request)`
    }
    return undefined
  }
}

function remember (m: Map<string, number>, k: string, v: number): void {
  if (m.size >= REMEMBERED) m.delete(m.keys().next().value as string)
  m.set(k, v)
}
