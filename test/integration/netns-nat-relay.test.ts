// test-timeout-s: 600
// Behind real NATs (iptables MASQUERADE in router namespaces; test/netns/nat-scenarios.ts), quick
// variant (the long one is test/long/netns-nat.test.ts):
//  1. a training group of two providers behind two different NATs, coordinated by the public
//     submitter: their slices cross only through a relay; every round has both members and drops
//     none; the route of each (and the coordinator's to each) is printed;
//  (the relay-kill scenario runs in test/long/netns-nat.test.ts only: in its quick form it failed
//     2 of 3 late runs: once both leases were lost with relay1, the only offers that answered within
//     the lease search's 10 s give-up were over-priced relays (OVER_PRICE, "never") while the NATed
//     providers re-reserved on relay2, so 4 of 16 tasks failed "not placed"; not fixed yet)
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startNatNet, trainAcrossNat, type NatNet } from '../netns/nat-scenarios.js'

const ROUNDS = 4
let net: NatNet

test.before(async () => {
  const t0 = Date.now()
  // uvu reports a failed hook without its error: print it
  net = await startNatNet().catch((err: Error) => { console.error(err); throw err })
  console.log(`NAT topology and 6 daemons up in ${Date.now() - t0} ms`)
})

test.after(async () => {
  await net?.t.destroy()
  assert.equal(net?.t.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
})

test('two providers behind two NATs train together over a relay: every round has both, none dropped', async () => {
  const { routes } = await trainAcrossNat(net, net.submitter!, ROUNDS)
  // the members reach the public coordinator on some route (they can dial out through their NATs)
  assert.is(routes.filter(r => r.member === 'submitter' && r.to.startsWith('provider')).length, 2, 'the coordinator sent to both members')
})

test.run()
