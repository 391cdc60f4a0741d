// test-timeout-s: 300
// Two NATed peers connect directly over WebRTC (issue 14): test/netns/webrtc-scenario.ts with
// routers that drop unsolicited packets to themselves (`firewall: true`, what home routers do).
// The submitter's first contact is relayed; its route book then dials the provider's
// `/p2p-circuit/webrtc` address: SDP offer and answer go over the relayed connection, ICE
// learns each side's NAT mapping from the relay's STUN responder and punches a UDP path through
// both NATs. Every task runs on that connection (`hole-punched`), correct and billed once.
// The routers that defeat it (--random-fully; no firewall rule) are test/long/netns-webrtc.test.ts.
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startTwoNats, gridOn, type TwoNats } from '../netns/webrtc-scenario.js'

let s: TwoNats | undefined

test.after(async () => {
  await s?.t.destroy()
  assert.equal(s?.t.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
})

test('two firewalled NATs: the tasks run on a WebRTC connection ICE punched through both', async () => {
  s = await startTwoNats({ firewall: true })
  await gridOn(s, 'webrtc-two-nats', 12, 'hole-punched')
})

test.run()
