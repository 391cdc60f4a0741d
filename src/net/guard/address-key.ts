// The key of the per-address identity gate for a remote multiaddr: what one party can not
// multiply cheaply. An IPv4 address; an IPv6 /64 (a single customer is routinely given a whole
// /64, so keying by the full address would hand an attacker 2^64 fresh buckets); a DNS name as
// written. A relayed connection is keyed by its relay (`circuit:<relay peer id>`), apart from
// the relay's own IP: identities banned through a relay must not put the relay's address, and
// the honest peers behind it, in debt.
import type { Multiaddr } from '@multiformats/multiaddr'

interface Component { name: string, value?: string }

/** The gate's key for a connection from `ma` (see the file comment). */
export function addressKey (ma: Multiaddr): string {
  let c: Component[]
  try {
    c = ma.getComponents()
  } catch {
    return ma.toString()
  }
  const circuit = c.findIndex(x => x.name === 'p2p-circuit')
  if (circuit >= 0) {
    const before = c.slice(0, circuit)
    const relay = [...before].reverse().find(x => x.name === 'p2p')?.value
    return `circuit:${relay ?? hostKey(before) ?? ma.toString()}`
  }
  return hostKey(c) ?? ma.toString()
}

/** Whether `ma` names neither a host nor a relay (an inbound WebRTC connection's `/webrtc/p2p/<id>`): its key is only itself. */
export function hostless (ma: Multiaddr): boolean {
  try {
    const c = ma.getComponents()
    return !c.some(x => x.name === 'p2p-circuit') && hostKey(c) === undefined
  } catch {
    return true
  }
}

function hostKey (c: Component[]): string | undefined {
  const host = c.find(x => x.name === 'ip4' || x.name === 'ip6' || x.name === 'dns' || x.name === 'dns4' || x.name === 'dns6' || x.name === 'dnsaddr')
  if (host?.value === undefined) return undefined
  return host.name === 'ip6' ? ipv6Key(host.value) : host.value
}

/** An IPv6 address's /64 prefix (`2001:db8:1:2::/64`); an IPv4-mapped address is its IPv4 address. */
export function ipv6Key (addr: string): string {
  const a = addr.split('%')[0].toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a)
  if (mapped !== null) return mapped[1]
  const groups = expandIpv6(a)
  if (groups === undefined) return a
  return `${groups.slice(0, 4).map(g => g.toString(16)).join(':')}::/64`
}

/** The eight 16-bit groups of an IPv6 address, or undefined when it does not parse. */
function expandIpv6 (a: string): number[] | undefined {
  const parts = a.split('::')
  if (parts.length > 2) return undefined
  const side = (s: string): number[] | undefined => {
    if (s === '') return []
    const out: number[] = []
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const v4 = g.split('.').map(Number)
        if (v4.length !== 4 || v4.some(n => !Number.isInteger(n) || n < 0 || n > 255)) return undefined
        out.push(v4[0] * 256 + v4[1], v4[2] * 256 + v4[3])
      } else {
        if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined
        out.push(parseInt(g, 16))
      }
    }
    return out
  }
  const head = side(parts[0])
  const tail = parts.length === 2 ? side(parts[1]) : []
  if (head === undefined || tail === undefined) return undefined
  const zeros = 8 - head.length - tail.length
  if (parts.length === 2 ? zeros < 1 : zeros !== 0) return undefined
  return [...head, ...new Array<number>(zeros).fill(0), ...tail]
}
