// How a daemon uses STUN and WebRTC (config `nat`): a public relay node answers STUN binding
// requests; a node behind NAT runs WebRTC and asks its bootstrap peers' STUN responders for
// its NAT mapping (they are the public nodes it knows; its relays are among them).
import { multiaddr } from '@multiformats/multiaddr'
import { StunResponder, DEFAULT_STUN_PORT } from './index.js'

export interface NatConfig {
  behindNat: boolean
  relayServer: boolean
  strict?: boolean
  stunPort?: number
  webrtc?: boolean
  iceServers?: string[]
}

/**
 * `stun:HOST:port` for each bootstrap address with an IP or a DNS name (`/dns`, `/dns4`, `/dns6`:
 * ICE resolves the name itself), at most 4: ICE asks every one. `/dnsaddr` names a TXT record of
 * multiaddrs, not a host: it gives none (review s10 L10: a list of names gave no ICE server at all).
 */
export function iceServersFrom (bootstrap: string[], port = DEFAULT_STUN_PORT): string[] {
  const out = new Set<string>()
  for (const a of bootstrap) {
    try {
      const host = multiaddr(a).getComponents().find(c => c.name === 'ip4' || c.name === 'ip6' || c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6')
      if (host?.value !== undefined) out.add(host.name === 'ip6' ? `stun:[${host.value}]:${port}` : `stun:${host.value}:${port}`)
    } catch {}
    if (out.size >= 4) break
  }
  return [...out]
}

/**
 * What to tell the operator of a node behind NAT whose WebRTC has no STUN server: ICE then has host
 * candidates only and can punch no NAT, so peers behind other NATs stay relayed. Undefined when
 * all is well.
 */
export function iceServerWarning (webrtc: { enabled: boolean, iceServers: () => string[] }): string | undefined {
  if (!webrtc.enabled || webrtc.iceServers().length > 0) return undefined
  return 'WebRTC has no STUN server: no bootstrap address names an IP or a DNS host (/dnsaddr does not count) and nat.iceServers is unset; peers behind other NATs stay relayed. Set nat.iceServers (stun:HOST:3478) or list a relay by /ip4, /ip6 or /dns'
}

/**
 * The host's `webrtc` option: on for a node behind NAT unless `nat.webrtc: false`, or
 * `nat.strict` (one-host demos: a WebRTC path over loopback would bypass the simulated NAT).
 */
export function webrtcOf (nat: NatConfig, bootstrap: string[]): { enabled: boolean, iceServers: () => string[] } {
  const servers = nat.iceServers ?? iceServersFrom(bootstrap, nat.stunPort === 0 || nat.stunPort === undefined ? DEFAULT_STUN_PORT : nat.stunPort)
  return { enabled: nat.behindNat && nat.strict !== true && nat.webrtc !== false, iceServers: () => servers }
}

/**
 * The STUN responder of a public relay node (`nat.stunPort`, default 3478; 0: none). A port
 * it cannot bind is reported, not fatal: NATed peers then learn their mapping elsewhere or
 * stay relayed.
 */
export async function startStun (nat: NatConfig, warn: (msg: string) => void): Promise<StunResponder | undefined> {
  if (nat.behindNat || !nat.relayServer || nat.stunPort === 0) return undefined
  const port = nat.stunPort ?? DEFAULT_STUN_PORT
  try {
    return await StunResponder.start({ port, host: '::' })
  } catch {
    try {
      return await StunResponder.start({ port, host: '0.0.0.0' }) // no IPv6 on this host
    } catch (err) {
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
      // a second node on one host finds the first one's responder there: say how to run without one
      warn(`STUN responder not started on UDP port ${port}: ${(err as Error).message}${inUse ? ' (another process, e.g. another dbc node on this host, has it: NATed peers can use that one; set nat.stunPort: 0 or DBC_STUN_PORT=0 to run this node without a responder)' : ''}`)
      return undefined
    }
  }
}
