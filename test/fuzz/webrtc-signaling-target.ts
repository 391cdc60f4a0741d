// The fuzz target for WebRTC signalling (/webrtc-signaling/0.0.1), which a node behind NAT with
// WebRTC on registers (@libp2p/webrtc registers it itself; src/net/host.ts bounds it). Messages
// are @libp2p/webrtc's `Message { type: SDP_OFFER | SDP_ANSWER | ICE_CANDIDATE, data: string }`,
// each length-prefixed as our frames are (pbStream). The handler makes a native RTCPeerConnection
// per stream before reading anything, hands the offer's SDP and each candidate to libdatachannel,
// and runs ICE towards whatever the SDP names; the node never charges for any of it (the library
// reports to no score book), so every case is 'pending' or 'no'.
import type { CraftContext, HostileCase } from './targets.js'

export const WEBRTC_SIGNALING = '/webrtc-signaling/0.0.1'
/** pbStream's default largest message (@libp2p/utils): what the library's handler reads at most. */
export const SIGNALING_MAX_MESSAGE = 4 * 1024 * 1024

export const SignalType = { SDP_OFFER: 0, SDP_ANSWER: 1, ICE_CANDIDATE: 2 } as const

/** A signalling message body (protobuf: field 1 enum type, field 2 string data). */
export function signalMessage (type: number, data?: string | Uint8Array): Uint8Array {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data
  const out: number[] = [0x08, type & 0x7f]
  if (bytes !== undefined) {
    out.push(0x12)
    for (let n = bytes.length; ; n >>>= 7) { if (n < 0x80) { out.push(n); break } out.push((n & 0x7f) | 0x80) }
  }
  const head = Uint8Array.from(out)
  if (bytes === undefined) return head
  const msg = new Uint8Array(head.length + bytes.length)
  msg.set(head); msg.set(bytes, head.length)
  return msg
}

/** Decodes a signalling message (the node's answer): undefined when it is not one. */
export function decodeSignal (body: Uint8Array): { type: number, data: string } | undefined {
  if (body.length < 2 || body[0] !== 0x08) return undefined
  const type = body[1]
  if (body.length === 2) return { type, data: '' }
  if (body[2] !== 0x12) return undefined
  let len = 0; let shift = 0; let i = 3
  for (; i < body.length; i++) { len += (body[i] & 0x7f) * 2 ** shift; shift += 7; if ((body[i] & 0x80) === 0) { i++; break } }
  if (i + len !== body.length) return undefined
  return { type, data: new TextDecoder().decode(body.subarray(i)) }
}

const hex = (c: CraftContext, n: number): string => Array.from(c.rng.bytes(new Uint8Array(n)), b => b.toString(16).padStart(2, '0').toUpperCase()).join(':')
const token = (c: CraftContext, n: number): string => Array.from(c.rng.bytes(new Uint8Array(n)), b => 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/'[b & 63]).join('')

/** An SDP offer as node-datachannel writes one (a data channel, no candidates yet: they trickle). */
export function offerSdp (c: CraftContext): string {
  return ['v=0', `o=rtc ${1 + c.rng.int(2 ** 31)} 0 IN IP4 127.0.0.1`, 's=-', 't=0 0', 'a=group:BUNDLE 0', 'a=msid-semantic:WMS *', 'a=ice-options:ice2,trickle',
    `a=fingerprint:sha-256 ${hex(c, 32)}`, 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', 'c=IN IP4 0.0.0.0', 'a=mid:0', 'a=sendrecv', 'a=sctp-port:5000',
    'a=max-message-size:262144', 'a=setup:actpass', `a=ice-ufrag:${token(c, 4)}`, `a=ice-pwd:${token(c, 22)}`, ''].join('\r\n')
}

const candidate = (line: string, mid: unknown = '0'): string => JSON.stringify({ candidate: line, sdpMid: mid, sdpMLineIndex: 0 })

/** Line-level mutations of a valid offer: what a parser meets from a hostile peer. */
function mutateSdp (c: CraftContext, sdp: string): string {
  const lines = sdp.split('\r\n')
  for (let k = 1 + c.rng.int(4); k > 0; k--) {
    const i = c.rng.int(lines.length)
    switch (c.rng.int(7)) {
      case 0: lines.splice(i, 1); break
      case 1: lines.splice(i, 0, lines[c.rng.int(lines.length)]); break
      case 2: lines[i] = lines[i].slice(0, c.rng.int(lines[i].length + 1)); break
      case 3: lines[i] = `${lines[i]}${'9'.repeat(1 + c.rng.int(4096))}`; break
      case 4: lines[i] = lines[i].replace(/\d+/, String(2 ** 53 + c.rng.int(1000))); break
      case 5: lines.splice(i, 0, `a=candidate:1 1 UDP ${c.rng.int(2 ** 31)} ${['127.0.0.1', '10.0.0.1', '::1', '255.255.255.255', 'not.an.ip'][c.rng.int(5)]} ${c.rng.int(65536)} typ host`); break
      default: lines[i] = `${lines[i]}\u0000\u00ff${token(c, 8)}`
    }
  }
  return lines.join(c.rng.int(4) === 0 ? '\n' : '\r\n')
}

/** A well-formed offer whose SDP carries `bytes` of padding attributes (no honest offer is near this). */
function paddedOffer (c: CraftContext, bytes: number): Uint8Array {
  const base = offerSdp(c)
  const line = `a=x-fuzz:${'z'.repeat(1000)}\r\n`
  return signalMessage(SignalType.SDP_OFFER, base + line.repeat(Math.max(0, Math.floor((bytes - base.length) / line.length))))
}

export const SIGNALING_HOSTILE: HostileCase[] = [
  { name: 'candidate-before-offer', craft: c => [signalMessage(SignalType.ICE_CANDIDATE, candidate(`candidate:1 1 UDP 1 127.0.0.1 ${c.rng.int(65536)} typ host`))], expect: 'stream aborted (SDP_OFFER expected); its PeerConnection closed, its admission slot given back', charge: 'pending' },
  { name: 'answer-instead-of-offer', craft: c => [signalMessage(SignalType.SDP_ANSWER, offerSdp(c))], expect: 'stream aborted; slot given back', charge: 'pending' },
  { name: 'offer-type-out-of-range', craft: c => [signalMessage(3 + c.rng.int(100), offerSdp(c))], expect: 'stream aborted (an unknown enum value is not SDP_OFFER)', charge: 'pending' },
  { name: 'offer-garbage-sdp', craft: c => [signalMessage(SignalType.SDP_OFFER, token(c, 1 + c.rng.int(2000)))], expect: 'setRemoteDescription refuses it; stream aborted', charge: 'pending' },
  { name: 'offer-invalid-utf8', craft: c => [signalMessage(SignalType.SDP_OFFER, Uint8Array.from([0xff, 0xfe, ...c.rng.bytes(new Uint8Array(64)), 0xc0]))], expect: 'decoded with replacement characters, refused by the SDP parser', charge: 'pending' },
  { name: 'offer-mutated-sdp', craft: c => [signalMessage(SignalType.SDP_OFFER, mutateSdp(c, offerSdp(c)))], expect: 'refused by the SDP parser or answered; no native crash; slot given back', charge: 'no' },
  {
    name: 'offer-then-hostile-candidates',
    craft: c => [signalMessage(SignalType.SDP_OFFER, offerSdp(c)), ...[
      '{', '42', '""', 'null', JSON.stringify({ candidate: 7 }), candidate('candidate:x'), candidate(`candidate:1 1 UDP 2130706431 127.0.0.1 ${c.rng.int(65536)} typ host`),
      candidate(`candidate:1 1 UDP 2130706431 ${'1'.repeat(10_000)} 9 typ host`), candidate('candidate:1 1 UDP 1 10.0.0.1 9 typ relay raddr 0.0.0.0 rport 0', 'no-such-mid')
    ].map(d => signalMessage(SignalType.ICE_CANDIDATE, d))],
    expect: 'bad candidates dropped (logged), the attempt ends at the inbound upgrade timeout at the latest; slot given back',
    charge: 'no'
  },
  { name: 'offer-then-second-offer', craft: c => [signalMessage(SignalType.SDP_OFFER, offerSdp(c)), signalMessage(SignalType.SDP_OFFER, offerSdp(c))], expect: 'ICE_CANDIDATE expected: the attempt ends; slot given back', charge: 'pending' },
  { name: 'offer-largest-message', craft: c => [paddedOffer(c, SIGNALING_MAX_MESSAGE - 64)], expect: 'read (under pbStream\'s 4 MiB), parsed or refused natively; no growth beyond one message', charge: 'no' }
]
