// Addresses a training coordinator names for other members (RoundStart.addrs, Invite.donor_addrs)
// are dialled by this member: a remote coordinator must not make it open connections into its own
// host or LAN (review s13 L2). A loopback address is kept only when the coordinator's own
// connection is on loopback (tests, one-host demos; also 0.0.0.0, ::, IPv4-mapped
// loopback and *.localhost), a private or link-local one only when that
// connection is on loopback or a private network (a LAN, the netns tests); public ones always.
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { isLinkLocal, isLoopback, isPrivate } from '@libp2p/utils'

export type AddrScope = 'loopback' | 'private' | 'public'

const LOCAL_ONLY = new Set(['memory', 'unix'])

/** Where an address leads: this host, a private network, or anywhere (by its first component; a relayed address by its relay's). */
export function scopeOf (ma: Multiaddr): AddrScope {
  const first = ma.getComponents()[0]
  if (first === undefined) return 'public'
  if (LOCAL_ONLY.has(first.name)) return 'loopback'
  const name = first.value?.toLowerCase().replace(/\.$/, '') ?? ''
  // *.localhost resolves to this host (RFC 6761)
  if (first.name.startsWith('dns') && (name === 'localhost' || name.endsWith('.localhost'))) return 'loopback'
  // the unspecified address, dialled, connects to this host (review s14 L1: it read as private)
  if ((first.name === 'ip4' && name.startsWith('0.')) || (first.name === 'ip6' && name === '::')) return 'loopback'
  // an IPv4-mapped IPv6 address goes where its IPv4 address goes
  const mapped = first.name === 'ip6' ? /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(name) : null
  if (mapped !== null) {
    const hi = parseInt(mapped[1], 16); const lo = parseInt(mapped[2], 16)
    return scopeOf(multiaddr(`/ip4/${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}/tcp/1`))
  }
  if (isLoopback(ma)) return 'loopback'
  if (isPrivate(ma) || isLinkLocal(ma)) return 'private'
  return 'public'
}

/**
 * The addresses of `addrs` this member may dial, given the scopes of its connections to the
 * coordinator that named them (none: a coordinator reached over the overlay only, public).
 * Unparsable ones are dropped.
 */
export function addrsFromCoordinator (addrs: string[], coordinatorScopes: AddrScope[]): { kept: Multiaddr[], dropped: number } {
  const loopback = coordinatorScopes.includes('loopback')
  const privateToo = loopback || coordinatorScopes.includes('private')
  const kept: Multiaddr[] = []
  let dropped = 0
  for (const a of addrs) {
    let ma: Multiaddr
    try { ma = multiaddr(a) } catch { dropped++; continue }
    const s = scopeOf(ma)
    if (s === 'public' || (s === 'private' && privateToo) || (s === 'loopback' && loopback)) kept.push(ma)
    else dropped++
  }
  return { kept, dropped }
}
