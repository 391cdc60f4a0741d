// ICE servers for a node behind NAT (src/net/stun/node.ts; review s10 L10): a bootstrap list of DNS
// names gave no STUN server at all, so WebRTC had host candidates only and punched nothing, silently.
// Now /dns, /dns4 and /dns6 give `stun:NAME:PORT` (libdatachannel resolves it: checked against a
// responder on localhost, one server-reflexive candidate), and a node left with none is warned.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSocket } from 'node:dgram'
import { iceServersFrom, iceServerWarning, webrtcOf, startStun } from '../../../src/net/stun/node.js'

const ID = '/p2p/12D3KooWRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1ayRe1a'

test('bootstrap addresses by IP or DNS name give stun:HOST:PORT; /dnsaddr gives none; at most 4', () => {
  assert.equal(iceServersFrom([`/dns4/relay1.example.org/tcp/4001${ID}`, `/dns6/relay2.example.org/tcp/4001${ID}`, `/dns/relay3.example.org/tcp/4001${ID}`, `/dnsaddr/bootstrap.example.org${ID}`], 3478),
    ['stun:relay1.example.org:3478', 'stun:relay2.example.org:3478', 'stun:relay3.example.org:3478'])
  assert.equal(iceServersFrom([`/ip4/203.0.113.5/tcp/4001${ID}`, `/ip6/2001:db8::5/tcp/4001${ID}`], 3479), ['stun:203.0.113.5:3479', 'stun:[2001:db8::5]:3479'])
  assert.is(iceServersFrom(Array.from({ length: 9 }, (_, i) => `/dns4/r${i}.example.org/tcp/4001${ID}`)).length, 4)
  assert.equal(iceServersFrom(['not a multiaddr', `/dns4/r.example.org/tcp/4001${ID}`, `/dns4/r.example.org/tcp/4002${ID}`]), ['stun:r.example.org:3478'])
})

test('a NATed node with WebRTC on and no STUN server is warned; with one, or with WebRTC off, not', () => {
  const nat = { behindNat: true, relayServer: false }
  assert.match(iceServerWarning(webrtcOf(nat, [`/dnsaddr/bootstrap.example.org${ID}`])) ?? '', /no STUN server/)
  assert.match(iceServerWarning(webrtcOf(nat, [])) ?? '', /nat\.iceServers/)
  assert.is(iceServerWarning(webrtcOf(nat, [`/dns4/relay.example.org/tcp/4001${ID}`])), undefined)
  assert.is(iceServerWarning(webrtcOf({ ...nat, iceServers: ['stun:stun.example.org:3478'] }, [])), undefined)
  assert.is(iceServerWarning(webrtcOf({ ...nat, webrtc: false }, [])), undefined)
  assert.is(iceServerWarning(webrtcOf({ behindNat: false, relayServer: true }, [])), undefined, 'a public node runs no WebRTC')
})

test('a STUN port another process holds (a second node on one host) is reported with how to run without a responder', async () => {
  // hold a UDP port, as a first node's responder would (a dual-stack bind of the same port fails too)
  const v4 = createSocket('udp4')
  await new Promise<void>((resolve, reject) => { v4.once('error', reject); v4.bind(0, '0.0.0.0', () => resolve()) })
  const port = v4.address().port
  const warnings: string[] = []
  const r = await startStun({ behindNat: false, relayServer: true, stunPort: port }, w => warnings.push(w))
  v4.close()
  assert.is(r, undefined)
  assert.is(warnings.length, 1)
  assert.match(warnings[0], /EADDRINUSE/)
  assert.match(warnings[0], /DBC_STUN_PORT=0/)
})

test.run()
