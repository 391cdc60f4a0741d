// Which inbound WebRTC signalling attempts a NATed node takes on. Each attempt makes a native
// RTCPeerConnection (node-datachannel: ICE agent, DTLS, SCTP) before anything is known about it,
// and a peer can open attempts through any relay, so they are bounded per peer and in total:
// attempts in flight, and WebRTC connections already open. Pure: the caller counts the open ones.

export interface WebRTCAdmissionInit {
  /** Signalling attempts in flight from one peer (an honest dialler makes one at a time). */
  perPeerInFlight?: number
  /** Signalling attempts in flight from all peers. */
  totalInFlight?: number
  /** WebRTC connections open with one peer (one is enough; a second can race the first). */
  perPeerOpen?: number
  /** WebRTC connections open in all. */
  totalOpen?: number
}

export const WEBRTC_ADMISSION_DEFAULTS = { perPeerInFlight: 1, totalInFlight: 8, perPeerOpen: 2, totalOpen: 64 }

export type WebRTCRefusal = 'peer-in-flight' | 'total-in-flight' | 'peer-open' | 'total-open'

export class WebRTCAdmission {
  readonly limits: Required<WebRTCAdmissionInit>
  /** Attempts refused so far, by reason (the daemon's metrics: an operator sees a flood). */
  readonly refusals: Record<WebRTCRefusal, number> = { 'peer-in-flight': 0, 'total-in-flight': 0, 'peer-open': 0, 'total-open': 0 }
  private readonly inFlight = new Map<string, number>()
  private total = 0

  constructor (init: WebRTCAdmissionInit = {}) {
    this.limits = { ...WEBRTC_ADMISSION_DEFAULTS, ...init }
  }

  /** Admit an attempt from `peer` (then `done(peer)` once it ends), or say why not. */
  admit (peer: string, open: { peer: number, total: number }): WebRTCRefusal | undefined {
    const mine = this.inFlight.get(peer) ?? 0
    const refused: WebRTCRefusal | undefined = mine >= this.limits.perPeerInFlight
      ? 'peer-in-flight'
      : this.total >= this.limits.totalInFlight
        ? 'total-in-flight'
        : open.peer + mine >= this.limits.perPeerOpen ? 'peer-open' : open.total + this.total >= this.limits.totalOpen ? 'total-open' : undefined
    if (refused !== undefined) { this.refusals[refused]++; return refused }
    this.inFlight.set(peer, mine + 1)
    this.total++
    return undefined
  }

  done (peer: string): void {
    const mine = this.inFlight.get(peer) ?? 0
    if (mine <= 0) return
    if (mine === 1) this.inFlight.delete(peer); else this.inFlight.set(peer, mine - 1)
    this.total--
  }

  get attemptsInFlight (): number { return this.total }
}
