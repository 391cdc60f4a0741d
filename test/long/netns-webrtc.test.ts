// test-timeout-s: 600
// Long variant of test/integration/netns-webrtc.test.ts: routers that defeat a UDP hole punch,
// where WebRTC is tried, fails, and every task runs relayed (correct, billed once):
//  1. a symmetric NAT (MASQUERADE --random-fully, with the home-router firewall rule): each
//     destination gets another port, so the mapping STUN reported is useless to the other side;
//  2. today's routers (no firewall rule): each accepts the other side's first packet to its own
//     WAN address and keeps a stale conntrack entry, then remaps its own port (session 9 spike).
// And for comparison, the firewalled routers again with more tasks: the WebRTC route's per-task
// round trip next to the relayed one (printed, never asserted).
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startTwoNats, gridOn, type TwoNats } from '../netns/webrtc-scenario.js'

const TASKS = 24
let s: TwoNats | undefined

test.after.each(async () => {
  await s?.t.destroy()
  assert.equal(s?.t.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
  s = undefined
})

test('a symmetric NAT (--random-fully): no WebRTC path, every task runs relayed', async () => {
  s = await startTwoNats({ firewall: true, randomFully: true })
  await gridOn(s, 'webrtc-random-fully', TASKS, 'relayed')
})

test('routers that accept unsolicited UDP (today\'s): no WebRTC path, every task runs relayed', async () => {
  s = await startTwoNats({ firewall: false })
  await gridOn(s, 'webrtc-no-firewall', TASKS, 'relayed')
})

test('firewalled routers: every task on WebRTC', async () => {
  s = await startTwoNats({ firewall: true })
  await gridOn(s, 'webrtc-firewall', TASKS, 'hole-punched')
})

test.run()
