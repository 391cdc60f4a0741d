// Peers this node reaches only through the overlay (`routing: overlay`: no connection between
// submitter and provider, not even one opened by gossip, the DHT or the provider dialling back).
// The set feeds the node's connection gater: dials to them and connections from them (direct or
// through a circuit relay) are refused; connections already open are closed when a peer joins.
import type { ConnectionGater, PeerId } from '@libp2p/interface'

/** Bounded: a job's candidates join; the oldest leave first past the bound. */
const MAX_PRIVATE_PEERS = 4096
/**
 * How long a provider that a job allowing connections used stays out of the set: an overlay-only
 * job's messages to it then take the overlay without turning it private again (which would close
 * the other job's connection). Refreshed by each such use.
 */
export const DIRECT_WANTED_MS = 30 * 60_000
/** Training jobs tracked as holding one peer private. */
const MAX_HOLDERS_PER_PEER = 64

export class OverlayOnlyPeers {
  private readonly peers = new Set<string>()
  /** Peers holding a live overlay lease (counted): never evicted past the bound while it runs. */
  private readonly pins = new Map<string, number>()
  /** Peers the capability index named (candidates of a job): a forced job makes them private at its lease request. */
  private readonly matches = new Set<string>()
  /** Connections refused because of this set (dials and inbound). */
  refused = 0
  /** Peers a job allowing connections used lately (not made private by an overlay-only job): since when. */
  private readonly wanted = new Map<string, number>()
  /** Peers made private for the node's own reasons (add: a grid job, the config): training never gives them back. */
  private readonly forNode = new Set<string>()
  /** Peers training jobs this node coordinates hold private (hold): by which jobs. */
  private readonly holders = new Map<string, Set<string>>()

  constructor (private readonly now: () => number = Date.now) {}

  /** Closes the connections to a peer that just joined (the daemon sets it once its host exists). */
  hangUp: ((peer: string) => Promise<void> | void) | undefined

  has (peer: string): boolean { return this.peers.has(peer) }
  get size (): number { return this.peers.size }
  list (): string[] { return [...this.peers] }

  /** From now on `peer` is reached through the overlay only; an open connection to it is closed (the node's own reason: a grid job, the config). */
  add (peer: string): void {
    this.forNode.add(peer)
    if (this.peers.has(peer)) return
    if (this.peers.size >= MAX_PRIVATE_PEERS) {
      // the oldest peer without a live overlay lease leaves (all pinned: the oldest)
      let out: string | undefined
      for (const p of this.peers) if (!this.pins.has(p)) { out = p; break }
      this.forget(out ?? this.peers.values().next().value as string)
    }
    this.peers.add(peer)
    void Promise.resolve(this.hangUp?.(peer)).catch(() => {})
  }

  private forget (peer: string): void {
    this.peers.delete(peer)
    this.forNode.delete(peer)
    this.holders.delete(peer)
  }

  /**
   * A `routing: overlay` training job this node coordinates (`holder`) keeps `peer` private until
   * it lets go (unhold). Never evicts another entry (false when full, or when a job allowing
   * connections uses the peer): the node's own grid jobs keep theirs.
   */
  hold (peer: string, holder: string): boolean {
    if (this.wantedDirect(peer)) return false
    const h = this.holders.get(peer)
    if (h !== undefined) {
      if (!h.has(holder) && h.size >= MAX_HOLDERS_PER_PEER) return false
      h.add(holder)
      return true
    }
    if (!this.peers.has(peer) && this.peers.size >= MAX_PRIVATE_PEERS) return false
    this.holders.set(peer, new Set([holder]))
    if (this.peers.has(peer)) return true
    this.peers.add(peer)
    void Promise.resolve(this.hangUp?.(peer)).catch(() => {})
    return true
  }

  /** `holder` ended: `peer` leaves the set unless another holder, the node's own reason (add) or a live overlay lease keeps it. */
  unhold (peer: string, holder: string): void {
    const h = this.holders.get(peer)
    if (h === undefined || !h.delete(holder)) return
    if (h.size > 0) return
    this.holders.delete(peer)
    if (!this.forNode.has(peer) && !this.pins.has(peer)) this.peers.delete(peer)
  }

  /** Peers training jobs of this node hold private now. */
  get held (): number { return this.holders.size }

  /** The training holders of `peer` (none: private for the node's own reasons, or not at all). */
  heldBy (peer: string): string[] { return [...this.holders.get(peer) ?? []] }

  /** A lease over the overlay opened with private `peer`: it stays until every such lease ends (false: not private, not pinned). */
  pin (peer: string): boolean {
    if (!this.peers.has(peer)) return false
    this.pins.set(peer, (this.pins.get(peer) ?? 0) + 1)
    return true
  }

  unpin (peer: string): void {
    const n = (this.pins.get(peer) ?? 0) - 1
    if (n <= 0) this.pins.delete(peer); else this.pins.set(peer, n)
  }

  /**
   * A grid job that allows connections needs `peer` (the route book; never for the config's
   * overlay): it leaves the set (connections to it are allowed again) and overlay-only jobs do not
   * put it back for DIRECT_WANTED_MS (joinIfUnwanted, hold).
   */
  release (peer: string): void {
    this.forget(peer)
    this.wanted.delete(peer)
    this.wanted.set(peer, this.now())
    if (this.wanted.size > MAX_PRIVATE_PEERS) this.wanted.delete(this.wanted.keys().next().value as string)
  }

  /**
   * A training job this node coordinates that allows connections needs `peer`: released as above
   * only if training jobs alone hold it private (never the node's own reasons: a grid job, the
   * config; never a live overlay lease). Returns whether it left.
   */
  releaseHeld (peer: string): boolean {
    if (this.forNode.has(peer) || this.pins.has(peer) || !this.holders.has(peer)) return false
    this.release(peer)
    return true
  }

  /** Whether a job allowing connections used `peer` within DIRECT_WANTED_MS. */
  wantedDirect (peer: string): boolean {
    const at = this.wanted.get(peer)
    if (at === undefined) return false
    if (this.now() - at < DIRECT_WANTED_MS) return true
    this.wanted.delete(peer)
    return false
  }

  /** An overlay-only job's `peer` turns private, unless a job allowing connections uses it (then only that job's messages take the overlay). */
  joinIfUnwanted (peer: string): boolean {
    if (this.wantedDirect(peer)) return false
    this.add(peer)
    return true
  }

  /** The capability index named `peer` for a job (bounded like the set). */
  noteMatch (peer: string): void {
    this.matches.delete(peer)
    if (this.matches.size >= MAX_PRIVATE_PEERS) this.matches.delete(this.matches.values().next().value as string)
    this.matches.add(peer)
  }

  isMatch (peer: string): boolean { return this.matches.has(peer) }

  /**
   * Whether a sealed envelope to `peer` may take the direct path: only over a connection already
   * open, never to a private peer (the direct path would dial it, and a provider answering a
   * request that came through relays would dial the requester and learn its address).
   */
  direct (peer: string, connected: (peer: string) => boolean): boolean {
    return !this.peers.has(peer) && connected(peer)
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
