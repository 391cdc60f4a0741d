// Which WebRTC signalling attempts a NATed node takes on. Each attempt makes a native
// RTCPeerConnection (node-datachannel: ICE agent, DTLS, SCTP) before anything is known about it,
// and a peer can open attempts through any relay, so they are bounded per peer and in total:
// attempts in flight, and WebRTC connections already open. Our own (outbound) attempts take the
// same per-peer and open bounds but have their own in-flight share (review s11 M5): inbound
// attempts from throw-away identities cannot hold every slot our upgrades need, and ours cannot
// hold the inbound ones. Pure: the caller counts the open ones.

export interface WebRTCAdmissionInit {
  /** Signalling attempts in flight from one peer (an honest dialler makes one at a time). */
  perPeerInFlight?: number
  /** Inbound signalling attempts in flight from all peers. */
  totalInFlight?: number
  /** Our own attempts in flight, to all peers (a round first-contacting many relayed providers). */
  outboundInFlight?: number
  /** WebRTC connections open with one peer (one is enough; a second can race the first). */
  perPeerOpen?: number
  /** WebRTC connections open in all. */
  totalOpen?: number
}

export const WEBRTC_ADMISSION_DEFAULTS = { perPeerInFlight: 1, totalInFlight: 8, outboundInFlight: 8, perPeerOpen: 2, totalOpen: 64 }

export type WebRTCRefusal = 'peer-in-flight' | 'total-in-flight' | 'outbound-in-flight' | 'peer-open' | 'total-open'
export type WebRTCDirection = 'inbound' | 'outbound'

export class WebRTCAdmission {
  readonly limits: Required<WebRTCAdmissionInit>
  /** Attempts refused so far, by reason (the daemon's metrics: an operator sees a flood). */
  readonly refusals: Record<WebRTCRefusal, number> = { 'peer-in-flight': 0, 'total-in-flight': 0, 'outbound-in-flight': 0, 'peer-open': 0, 'total-open': 0 }
  /** Attempts in flight per peer, both directions together. */
  private readonly inFlight = new Map<string, number>()
  private readonly total: Record<WebRTCDirection, number> = { inbound: 0, outbound: 0 }

  constructor (init: WebRTCAdmissionInit = {}) {
    this.limits = { ...WEBRTC_ADMISSION_DEFAULTS, ...init }
  }

  /** Admit an attempt with `peer` (then `done(peer, direction)` once it ends), or say why not. */
  admit (peer: string, open: { peer: number, total: number }, direction: WebRTCDirection = 'inbound'): WebRTCRefusal | undefined {
    const mine = this.inFlight.get(peer) ?? 0
    const all = this.total.inbound + this.total.outbound
    const refused: WebRTCRefusal | undefined = mine >= this.limits.perPeerInFlight
      ? 'peer-in-flight'
      : direction === 'inbound' && this.total.inbound >= this.limits.totalInFlight
        ? 'total-in-flight'
        : direction === 'outbound' && this.total.outbound >= this.limits.outboundInFlight
          ? 'outbound-in-flight'
          : open.peer + mine >= this.limits.perPeerOpen ? 'peer-open' : open.total + all >= this.limits.totalOpen ? 'total-open' : undefined
    if (refused !== undefined) { this.refusals[refused]++; return refused }
    this.inFlight.set(peer, mine + 1)
    this.total[direction]++
    return undefined
  }

  done (peer: string, direction: WebRTCDirection = 'inbound'): void {
    const mine = this.inFlight.get(peer) ?? 0
    if (mine <= 0 || this.total[direction] <= 0) return
    if (mine === 1) this.inFlight.delete(peer); else this.inFlight.set(peer, mine - 1)
    this.total[direction]--
  }

  /** Inbound attempts in flight (the daemon's metrics). */
  get attemptsInFlight (): number { return this.total.inbound }
  /** Our own attempts in flight. */
  get outboundAttemptsInFlight (): number { return this.total.outbound }
}
