// Peers this node reaches only through the overlay (`routing: overlay`: no connection between
// submitter and provider, not even one opened by gossip, the DHT or the provider dialling back).
// The set feeds the node's connection gater: dials to them and connections from them (direct or
// through a circuit relay) are refused; connections already open are closed when a peer joins.
import type { ConnectionGater, PeerId } from '@libp2p/interface'

/** Bounded: a job's candidates join; the oldest leave first past the bound. */
const MAX_PRIVATE_PEERS = 4096

export class OverlayOnlyPeers {
  private readonly peers = new Set<string>()
  /** Connections refused because of this set (dials and inbound). */
  refused = 0

  /** Closes the connections to a peer that just joined (the daemon sets it once its host exists). */
  hangUp: ((peer: string) => Promise<void> | void) | undefined

  has (peer: string): boolean { return this.peers.has(peer) }
  get size (): number { return this.peers.size }
  list (): string[] { return [...this.peers] }

  /** From now on `peer` is reached through the overlay only; an open connection to it is closed. */
  add (peer: string): void {
    if (this.peers.has(peer)) return
    if (this.peers.size >= MAX_PRIVATE_PEERS) this.peers.delete(this.peers.values().next().value as string)
    this.peers.add(peer)
    void Promise.resolve(this.hangUp?.(peer)).catch(() => {})
  }

  private deny (peer: PeerId): boolean {
    if (!this.peers.has(peer.toString())) return false
    this.refused++
    return true
  }

  /** `base` with this set's refusals added (the node's guard gater keeps its own checks). */
  wrap<G extends ConnectionGater> (base: G): G & Required<Pick<ConnectionGater, 'denyDialPeer' | 'denyInboundEncryptedConnection' | 'denyOutboundEncryptedConnection' | 'denyInboundRelayedConnection'>> {
    return {
      ...base,
      denyDialPeer: async (peer: PeerId) => this.deny(peer) || (await base.denyDialPeer?.(peer)) === true,
      denyInboundEncryptedConnection: async (peer: PeerId, maConn: Parameters<NonNullable<ConnectionGater['denyInboundEncryptedConnection']>>[1]) => this.deny(peer) || (await base.denyInboundEncryptedConnection?.(peer, maConn)) === true,
      denyOutboundEncryptedConnection: async (peer: PeerId, maConn: Parameters<NonNullable<ConnectionGater['denyOutboundEncryptedConnection']>>[1]) => this.deny(peer) || (await base.denyOutboundEncryptedConnection?.(peer, maConn)) === true,
      denyInboundRelayedConnection: async (relay: PeerId, remote: PeerId) => this.deny(remote) || (await base.denyInboundRelayedConnection?.(relay, remote)) === true
    }
  }
}

/**
 * A strict NAT simulated on one host (`nat.behindNat` with `nat.strict`: demos and tests on
 * loopback, where every address is reachable): connections come in only through a circuit relay,
 * and go out directly only to `allowed` peers (the node's bootstrap relays), as behind a NAT whose
 * firewall lets through only the relay. Everything else reaches the node relayed or over the overlay.
 */
export function strictNatGater<G extends ConnectionGater> (base: G, allowed: (peer: string) => boolean): G & Required<Pick<ConnectionGater, 'denyInboundEncryptedConnection' | 'denyOutboundEncryptedConnection'>> {
  const direct = (maConn: { remoteAddr: { toString: () => string } }): boolean => !maConn.remoteAddr.toString().includes('/p2p-circuit')
  return {
    ...base,
    denyInboundEncryptedConnection: async (peer: PeerId, maConn: Parameters<NonNullable<ConnectionGater['denyInboundEncryptedConnection']>>[1]) => (direct(maConn) && !allowed(peer.toString())) || (await base.denyInboundEncryptedConnection?.(peer, maConn)) === true,
    denyOutboundEncryptedConnection: async (peer: PeerId, maConn: Parameters<NonNullable<ConnectionGater['denyOutboundEncryptedConnection']>>[1]) => (direct(maConn) && !allowed(peer.toString())) || (await base.denyOutboundEncryptedConnection?.(peer, maConn)) === true
  }
}
