// After an inbound WebRTC attempt that ended without a connection, its peer waits before it may
// start another: 10 s, doubling per failure in a row up to 5 min, and a connection clears it.
// Review s10 L2: an inbound attempt holds one of the node's few in-flight slots (8) until libp2p's
// 10 s upgrade timeout, and one valid offer then silence is enough (s11 L7), so 8 identities
// refreshing every 10 s kept every honest inbound attempt out. With the backoff, keeping the slots
// full takes about 8 x (1 + backoff / 10 s) identities (~250 at the 5 min ceiling), each new one
// paid for at the identity gate (per relay: a burst, then one per 10 s). Not a score charge: a peer
// behind a symmetric NAT fails ICE every time (no TURN), and charging it would ban an honest peer;
// it only waits longer between attempts that would fail anyway. Pure: time comes in as `now`;
// bounded: the least recently failed peer is forgotten when the table is full.

export interface WebRTCBackoffInit {
  /** The wait after a first failure. */
  firstMs?: number
  /** The longest wait. */
  maxMs?: number
  /** Peers remembered at most. */
  maxPeers?: number
}

export const WEBRTC_BACKOFF_DEFAULTS = { firstMs: 10_000, maxMs: 300_000, maxPeers: 4096 }

interface Entry { until: number, failures: number }

export class WebRTCBackoff {
  private readonly o: Required<WebRTCBackoffInit>
  private readonly peers = new Map<string, Entry>()
  /** Attempts turned away while their peer waited (metrics, tests). */
  refused = 0

  constructor (init: WebRTCBackoffInit = {}) {
    this.o = { ...WEBRTC_BACKOFF_DEFAULTS, ...init }
  }

  /** Whether `peer` must wait before a new inbound attempt (counted as refused when so). */
  waiting (peer: string, now: number): boolean {
    const e = this.peers.get(peer)
    if (e === undefined || now >= e.until) return false
    this.refused++
    return true
  }

  /** `peer`'s inbound attempt ended: connected (its backoff cleared) or not (it waits, longer each time in a row). */
  ended (peer: string, now: number, connected: boolean): void {
    const e = this.peers.get(peer)
    if (connected) { this.peers.delete(peer); return }
    const failures = (e?.failures ?? 0) + 1
    const wait = Math.min(this.o.maxMs, this.o.firstMs * 2 ** Math.min(failures - 1, 30))
    this.peers.delete(peer)
    if (this.peers.size >= this.o.maxPeers) this.peers.delete(this.peers.keys().next().value as string)
    this.peers.set(peer, { until: now + wait, failures })
  }

  /** Peers remembered now. */
  get size (): number { return this.peers.size }
}
