// A STUN binding responder (RFC 5389) for public nodes: a NATed node's WebRTC transport (ICE)
// asks it for its address as seen from outside (its NAT's mapping), the "server reflexive"
// candidate that two NATed peers exchange to punch a hole (src/net/host.ts). Messages are
// decoded and encoded by @msimerson/stun; this file decides what to answer.
//
// Every packet is hostile: anything but a well-formed binding request of at most 548 bytes is
// dropped before decoding (bounded work per packet, no state kept for it), a decode error is
// dropped, and the response carries XOR-MAPPED-ADDRESS only (32 bytes for IPv4, 44 for IPv6;
// the smallest request is 20). Responses are rate-limited per source address and in total
// (src/core/routing/stun-rate-limit.ts), so forged sources cannot turn it into a reflector.
import dgram from 'node:dgram'
import stun from '@msimerson/stun'
import { StunRateLimit, type StunRateInit } from '../../core/routing/stun-rate-limit.js'

export const DEFAULT_STUN_PORT = 3478
const BINDING_REQUEST = 0x0001
const BINDING_RESPONSE = 0x0101
const MAGIC_COOKIE = 0x2112a442
/** Largest request answered: a binding request from ICE is ~100 bytes (USERNAME, PRIORITY, ...); 548 is RFC 5389's floor for a path's MTU. */
export const MAX_REQUEST_BYTES = 548

export interface StunStats { answered: number, dropped: number, limited: number }

/** Whether `msg`'s fixed header is a binding request's: 20..548 bytes, type, magic cookie, the declared length (cheap: no decode). */
export function bindingHeaderOk (msg: Buffer): boolean {
  if (msg.length < 20 || msg.length > MAX_REQUEST_BYTES) return false
  if (msg.readUInt16BE(0) !== BINDING_REQUEST || msg.readUInt32BE(4) !== MAGIC_COOKIE) return false
  return msg.readUInt16BE(2) === msg.length - 20 && (msg.length & 3) === 0
}

/** The response to `msg` from `address:port`, or undefined when it is not a binding request (pure). */
export function bindingResponse (msg: Buffer, address: string, port: number): Buffer | undefined {
  if (!bindingHeaderOk(msg)) return undefined
  let req
  try {
    req = stun.decode(msg)
  } catch {
    return undefined
  }
  if (req.type !== BINDING_REQUEST) return undefined
  // an address the library cannot encode (a zone id: fe80::1%eth0) gets no answer
  try {
    const res = stun.createMessage(BINDING_RESPONSE, req.transactionId)
    res.addXorAddress(address, port)
    return res.toBuffer()
  } catch {
    return undefined
  }
}

export interface StunResponderInit extends StunRateInit {
  port?: number
  /** Address to bind (default all IPv4 and IPv6 addresses: '::' with dual stack). */
  host?: string
  now?: () => number
}

/** A running responder: one UDP socket. */
export class StunResponder {
  readonly stats: StunStats = { answered: 0, dropped: 0, limited: 0 }
  private readonly socket: dgram.Socket
  private readonly limit: StunRateLimit
  private readonly now: () => number

  private constructor (socket: dgram.Socket, init: StunResponderInit) {
    this.socket = socket
    this.now = init.now ?? Date.now
    this.limit = new StunRateLimit(init, this.now())
    socket.on('message', (msg, rinfo) => { this.onMessage(msg, rinfo) })
    // a send to an unreachable source reports an error on the socket: never fatal
    socket.on('error', () => { this.stats.dropped++ })
  }

  static async start (init: StunResponderInit = {}): Promise<StunResponder> {
    const host = init.host ?? '::'
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: false })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(init.port ?? DEFAULT_STUN_PORT, host, () => { socket.off('error', reject); resolve() })
    })
    return new StunResponder(socket, init)
  }

  get port (): number { return this.socket.address().port }

  /** One datagram (public for tests): nothing a packet does may escape this handler (review s10 H1). */
  onMessage (msg: Buffer, rinfo: Pick<dgram.RemoteInfo, 'address' | 'port'>): void {
    try {
      // source port 0 cannot be answered (send throws); a link-local source carries a zone id
      if (!Number.isInteger(rinfo.port) || rinfo.port <= 0 || rinfo.port > 65535 || rinfo.address.includes('%')) { this.stats.dropped++; return }
      // a v4 peer on a dual-stack socket shows as ::ffff:a.b.c.d; answer with the v4 address it has
      const address = rinfo.address.startsWith('::ffff:') && rinfo.address.includes('.') ? rinfo.address.slice(7) : rinfo.address
      // the cheap checks first (review s11 M3): the fixed header, then the source's token (the
      // global bucket must have one too, but none is taken yet). A flood over the limit, from one
      // source or from many once the global bucket is empty, then costs what it did before c2ec22f
      // (~6 us a packet received, real sockets), not a decode and a response built (~20 us). Only a
      // request that passes the full check takes a global token: garbage drains no bucket but its
      // own source's (review s10 L1)
      const now = this.now()
      if (!bindingHeaderOk(msg)) { this.stats.dropped++; return }
      if (!this.limit.admitSource(address, now)) { this.stats.limited++; return }
      // garbage from a forged new source each packet has a fresh source bucket: a global decode bucket bounds its decodes (review s11 L10)
      if (!this.limit.takeDecode(now)) { this.stats.limited++; return }
      const res = bindingResponse(msg, address, rinfo.port)
      if (res === undefined) { this.stats.dropped++; return }
      if (!this.limit.takeGlobal(now)) { this.stats.limited++; return }
      // a send error goes to the callback, never thrown
      this.socket.send(res, rinfo.port, rinfo.address, () => {})
      this.stats.answered++
    } catch {
      this.stats.dropped++
    }
  }

  async stop (): Promise<void> {
    await new Promise<void>(resolve => { this.socket.close(() => { resolve() }) })
  }
}
