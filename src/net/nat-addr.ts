// What a connection's remote address says about how it crosses NATs (no libp2p import: the route
// book, the host and tests share it).

/** A WebRTC connection: `/p2p-circuit/webrtc` when we dialled it (signalled through that relay), `/webrtc/p2p/ID` when the other side did. */
export function isWebRTC (addr: { toString: () => string } | string): boolean {
  return /\/webrtc(\/|$)/.test(addr.toString())
}

/** One of our own interface addresses with its netmask (`os.networkInterfaces()` entries). */
export interface OwnNetwork { address: string, netmask: string, family: 'IPv4' | 'IPv6' | string }

/** The IP of an `/ip4/…` or `/ip6/…` multiaddr (its first component), else undefined. */
function ipOf (addr: string): { ip: number[], v6: boolean } | undefined {
  const m = /^\/(ip4|ip6)\/([^/]+)/.exec(addr)
  if (m === null) return undefined
  const ip = m[1] === 'ip4' ? ipv4Bytes(m[2]) : ipv6Bytes(m[2])
  return ip === undefined ? undefined : { ip, v6: m[1] === 'ip6' }
}

function ipv4Bytes (s: string): number[] | undefined {
  const parts = s.split('.').map(Number)
  return parts.length === 4 && parts.every(p => Number.isInteger(p) && p >= 0 && p <= 255) ? parts : undefined
}

function ipv6Bytes (s: string): number[] | undefined {
  const [head, tail, extra] = s.split('%')[0].split('::')
  if (extra !== undefined) return undefined
  const words = (t: string | undefined): number[] | undefined => {
    if (t === undefined || t === '') return []
    const out: number[] = []
    for (const w of t.split(':')) {
      if (w.includes('.')) { const v4 = ipv4Bytes(w); if (v4 === undefined) return undefined; out.push(v4[0] << 8 | v4[1], v4[2] << 8 | v4[3]); continue }
      const n = parseInt(w, 16)
      if (!/^[0-9a-f]{1,4}$/i.test(w)) return undefined
      out.push(n)
    }
    return out
  }
  const h = words(head); const t = words(tail)
  if (h === undefined || t === undefined) return undefined
  const fill = tail === undefined ? 0 : 8 - h.length - t.length
  if (fill < 0 || (tail === undefined && h.length !== 8)) return undefined
  return [...h, ...new Array<number>(fill).fill(0), ...t].flatMap(w => [w >> 8, w & 0xff])
}

/** A private-use or link-local address (RFC 1918, CGNAT, fc00::/7, fe80::/10); loopback is not. */
function isPrivateIp ({ ip, v6 }: { ip: number[], v6: boolean }): boolean {
  if (!v6) {
    const [a, b] = ip
    return a === 10 || (a === 172 && b >= 16 && b < 32) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b < 128) || (a === 169 && b === 254)
  }
  return (ip[0] & 0xfe) === 0xfc || (ip[0] === 0xfe && (ip[1] & 0xc0) === 0x80)
}

function inNetwork (addr: { ip: number[], v6: boolean }, net: OwnNetwork): boolean {
  const own = net.family === 'IPv6' || net.family === '6' ? ipv6Bytes(net.address) : ipv4Bytes(net.address)
  const mask = net.family === 'IPv6' || net.family === '6' ? ipv6Bytes(net.netmask) : ipv4Bytes(net.netmask)
  if (own === undefined || mask === undefined || own.length !== addr.ip.length || mask.length !== addr.ip.length) return false
  return addr.ip.every((b, i) => (b & mask[i]) === (own[i] & mask[i]))
}

/** A direct address in a private network none of `own` is in (loopback, public, DNS and relayed ones are not). */
export function privateElsewhere (addr: string, own: readonly OwnNetwork[]): boolean {
  if (addr.includes('/p2p-circuit')) return false
  const ip = ipOf(addr)
  return ip !== undefined && isPrivateIp(ip) && !own.some(n => inNetwork(ip, n))
}
