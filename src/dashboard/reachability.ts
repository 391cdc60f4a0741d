// Whether strangers can dial this node, judged from its own addresses and NAT settings, with
// what to do about it. Pure: the daemon hands in what it knows (no I/O, no clock).

export type Reachability = 'public' | 'relayed' | 'behind-nat' | 'local-only'

export interface ReachabilityInput {
  /** The node's own multiaddrs (listen + announce + observed). */
  addrs: string[]
  /** config nat.behindNat: the operator said the node is behind a NAT. */
  behindNat: boolean
  /** Connections other peers opened to us, by their remote address. */
  inboundFrom: string[]
}

export interface ReachabilityView {
  status: Reachability
  /** Addresses a stranger on the internet could dial. */
  publicAddrs: string[]
  relayAddrs: string[]
  inbound: number
  advice: string[]
}

export function judgeReachability (input: ReachabilityInput): ReachabilityView {
  const relayAddrs = input.addrs.filter(a => a.includes('/p2p-circuit'))
  const publicAddrs = input.addrs.filter(a => !a.includes('/p2p-circuit') && isPublicAddr(a))
  const inbound = input.inboundFrom.length
  const advice: string[] = []
  let status: Reachability
  if (publicAddrs.length > 0 && !input.behindNat) {
    status = 'public'
  } else if (relayAddrs.length > 0) {
    status = 'relayed'
    advice.push('peers reach this node through a relay: it works, but tasks and training rounds pay the relay\'s latency and bandwidth')
    advice.push('forward the listen port (TCP) on the router, or announce a public address with --announce /ip4/PUBLIC_IP/tcp/PORT, to be dialled directly')
  } else if (input.behindNat || input.addrs.some(a => isPrivateAddr(a))) {
    status = 'behind-nat'
    advice.push('no public address and no relay reservation: strangers cannot dial this node, so it cannot serve work it is not already connected for')
    advice.push('forward the listen port on the router and start with --announce /ip4/PUBLIC_IP/tcp/PORT, or start with --behind-nat to reserve a slot on a relay peer')
  } else {
    status = 'local-only'
    advice.push('this node listens only on loopback: only processes on this machine can reach it')
    advice.push('listen on a real interface, e.g. --listen /ip4/0.0.0.0/tcp/4001, to join a network beyond this machine')
  }
  return { status, publicAddrs, relayAddrs, inbound, advice }
}

function ipOf (addr: string): { v: 4 | 6, ip: string } | undefined {
  const m = /^\/(ip4|ip6)\/([^/]+)/.exec(addr)
  if (m == null) return undefined
  return { v: m[1] === 'ip4' ? 4 : 6, ip: m[2] }
}

export function isPrivateAddr (addr: string): boolean {
  const a = ipOf(addr)
  if (a === undefined) return false
  if (a.v === 6) return /^(fc|fd|fe80)/i.test(a.ip)
  const [x, y] = a.ip.split('.').map(Number)
  return x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168) || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254)
}

export function isLoopbackAddr (addr: string): boolean {
  const a = ipOf(addr)
  if (a === undefined) return false
  return a.v === 6 ? a.ip === '::1' : a.ip.startsWith('127.')
}

export function isPublicAddr (addr: string): boolean {
  const a = ipOf(addr)
  if (a === undefined) return /^\/dns(4|6|addr)?\//.test(addr)
  if (a.v === 4 && a.ip === '0.0.0.0') return false
  if (a.v === 6 && a.ip === '::') return false
  return !isLoopbackAddr(addr) && !isPrivateAddr(addr)
}
