// Circuit-relay addresses: whether a connection is relayed, through which relay, and the dial
// of a fresh relayed connection to a peer (src/net/routes/index.ts, RouteBook.freshRelayed).
import type { Connection, PeerId } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { isWebRTC } from '../nat-addr.js'

/** How long one circuit address may take to give a fresh relayed connection when the caller set no deadline. */
export const FRESH_RELAYED_DIAL_MS = 10_000

/** A connection through a relay: a /p2p-circuit address, unless WebRTC only signalled through it (`/p2p-circuit/webrtc`: a direct UDP path). */
export function isRelayed (addr: Multiaddr | string): boolean {
  const s = addr.toString()
  return s.includes('/p2p-circuit') && !isWebRTC(s)
}

/** The relay's peer id in a /p2p-circuit address (the /p2p/ before /p2p-circuit). */
export function relayOf (addr: Multiaddr | string): string | undefined {
  const s = addr.toString()
  const i = s.indexOf('/p2p-circuit')
  if (i < 0) return undefined
  const m = /\/p2p\/([^/]+)$/.exec(s.slice(0, i))
  return m?.[1]
}

/** `/p2p-circuit` addresses of `peer`: through the relay of `used` first, then those in the peer store (not WebRTC's); at most 4. */
export async function circuitAddrsOf (host: { peerStore: { get: (p: PeerId) => Promise<{ addresses: Array<{ multiaddr: Multiaddr }> }> } }, peer: PeerId, used: Connection | undefined): Promise<string[]> {
  const id = peer.toString()
  const out: string[] = []
  const viaUsed = used === undefined ? '' : used.remoteAddr.toString()
  const cut = viaUsed.indexOf('/p2p-circuit')
  if (cut > 0 && relayOf(viaUsed) !== undefined) out.push(`${viaUsed.slice(0, cut)}/p2p-circuit/p2p/${id}`)
  try {
    for (const a of (await host.peerStore.get(peer)).addresses) {
      const s = a.multiaddr.toString()
      if (!isRelayed(s) || relayOf(s) === undefined) continue
      const full = s.endsWith(`/p2p/${id}`) ? s : `${s}/p2p/${id}`
      if (!out.includes(full)) out.push(full)
    }
  } catch {}
  return out.slice(0, 4)
}

/** The first of `addrs` that `dial` connects, in order; undefined when none does (an aborted `signal` throws). */
export async function dialCircuits (dial: (ma: Multiaddr, signal: AbortSignal) => Promise<Connection>, addrs: string[], signal?: AbortSignal): Promise<Connection | undefined> {
  for (const ma of addrs) {
    try {
      return await dial(multiaddr(ma), signal ?? AbortSignal.timeout(FRESH_RELAYED_DIAL_MS))
    } catch (err) {
      if (signal?.aborted === true) throw err
    }
  }
  return undefined
}

/**
 * New relayed connections (the relay counts bytes and time per relayed connection: a new one has
 * its whole budget), through the used connection's relay first, then the peer's other relays.
 * Dialled on the relay transport (`dial`: host.ts relayedDialerOf): libp2p's dial queue would join
 * the dial onto a pending one to the peer that tries its unreachable private address first
 * (seconds). One at a time per peer: a frame that no longer fits joins the one opened ahead of
 * need. No `dial`, or no circuit address that connects: a forced dial by peer id, as before.
 */
export class FreshRelayedDials {
  private readonly pending = new Map<string, Promise<Connection>>()

  constructor (
    private readonly host: { peerStore: { get: (p: PeerId) => Promise<{ addresses: Array<{ multiaddr: Multiaddr }> }> }, dial: (peer: PeerId, opts: { signal?: AbortSignal, force?: boolean }) => Promise<Connection> },
    private readonly dial: ((ma: Multiaddr, signal: AbortSignal) => Promise<Connection>) | undefined
  ) {}

  async open (peer: PeerId, used: Connection | undefined, signal?: AbortSignal): Promise<Connection> {
    const id = peer.toString()
    const pending = this.pending.get(id)
    if (pending !== undefined) return await pending
    const dialling = this.dialOnce(peer, used, signal)
    this.pending.set(id, dialling)
    try {
      return await dialling
    } finally {
      this.pending.delete(id)
    }
  }

  private async dialOnce (peer: PeerId, used: Connection | undefined, signal?: AbortSignal): Promise<Connection> {
    const fresh = this.dial === undefined ? undefined : await dialCircuits(this.dial, await circuitAddrsOf(this.host, peer, used), signal)
    return fresh ?? await this.host.dial(peer, { signal, force: true })
  }
}
