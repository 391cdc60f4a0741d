// test-timeout-s: 600
// Behind real NATs (iptables MASQUERADE in router namespaces; test/netns/nat-scenarios.ts), quick
// variant (the long one is test/long/netns-nat.test.ts):
//  1. a training group of two providers behind two different NATs, coordinated by the public
//     submitter: their slices cross only through a relay; every round has both members and drops
//     none; the route of each (and the coordinator's to each) is printed;
//  2. a relay killed mid-job: the NATed submitter reaches the NATed providers only through
//     relays (a circuit, or sealed envelopes on the overlay when no circuit opens); relay1 is
//     SIGKILLed once the first tasks are done; the providers hold a reservation on relay2 as well,
//     so every task still completes once, correct, and is billed once; the requests by route and
//     the copies' round trips by route are printed. (Both leases die with relay1; the providers
//     whose leases were lost count as "not now" for the lease search, which waits for them to come
//     back through relay2 instead of failing tasks "not placed" when only over-priced relays answer:
//     test/unit/core/scheduler/lost-lease-wait.test.ts.)
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startNatNet, runNatGrid, trainAcrossNat, type NatNet } from '../netns/nat-scenarios.js'

const ROUNDS = 4
// enough tasks that the job is still under way when the first one is seen done: on a quiet host 16
// tasks all ended between two status polls (300 ms apart) and relay1 died after the job
const TASKS = 40
// at the first status poll that sees a copy running or done (40 tiny tasks can all end between two polls)
const KILL_AT = 'first-copy'
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

test('relay1 killed mid-job: every task from the NATed submitter completes once, correct, billed once', async () => {
  const r = await runNatGrid(net, net.natSubmitter, 'relay-killed', TASKS, { killRelayAt: KILL_AT })
  assert.ok(r.killedAt !== undefined && r.killedAt < TASKS, `the relay died mid-job (after ${String(r.killedAt)} tasks)`)
  // two NATs apart: only a relay joins them, a circuit (relayed) or sealed envelopes (overlay)
  for (const c of r.copies) assert.ok(c.route?.kind === 'relayed' || c.route?.kind === 'overlay', `a NATed submitter reaches a NATed provider only through relays: ${c.route?.kind ?? '?'}: ${c.route?.facts ?? ''}`)
  for (const [p, u] of Object.entries(r.uses)) assert.is((u.direct ?? 0) + (u['hole-punched'] ?? 0), 0, `${p}: no direct request between two NATs`)
})

test.run()
