// Long variant of the real-NAT tests (npm run test:long; the quick one is
// test/integration/netns-nat-relay.test.ts): two providers behind two NATs, two relays, a
// public and a NATed submitter (test/netns/nat-scenarios.ts).
//  1. training over the two NATed providers, 48 rounds: each member's slices are ~102 KB a round
//     (the rounds' bytesSent, 203,600 B for both), ~119 KB a round on its relayed route with framing
//     (2.85 MB in 24 rounds, measured in session 15: the 24 rounds this test ran before never used
//     up one relayed connection's 4 MiB, and it failed on the unchanged code too), ~5.7 MB in 48:
//     fresh relayed connections take over mid-job; every round has both members and drops none;
//  2. grid jobs from the public submitter (the providers may dial it through their NATs) and
//     from the NATed submitter (relays only): every task correct, billed once, routes printed;
//  3. relay1 killed (SIGKILL) mid-job under the NATed submitter's 60 tasks: every task completes
//     once, correct, billed once, through relay2.
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startNatNet, runNatGrid, trainAcrossNat, type NatNet } from '../netns/nat-scenarios.js'

let net: NatNet

test.before(async () => {
  const t0 = Date.now()
  net = await startNatNet().catch((err: Error) => { console.error(err); throw err })
  console.log(`NAT topology and 6 daemons up in ${Date.now() - t0} ms`)
})

test.after(async () => {
  await net?.t.destroy()
  assert.equal(net?.t.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
})

test('48 training rounds across two NATs: fresh relayed connections take over, no round drops a member', async () => {
  const { routes } = await trainAcrossNat(net, net.submitter!, 48)
  const between = routes.filter(r => r.member.startsWith('provider') && r.to.startsWith('provider'))
  // what the fresh-connection check rests on: more than one relayed connection's budget crossed
  assert.ok(between.some(r => (r.bytes.relayed ?? 0) > 4 * 1024 * 1024), `the members' slices passed one relayed connection's 4 MiB: ${JSON.stringify(between.map(r => r.bytes))}`)
  assert.ok(between.some(r => r.freshRelayed >= 1), `a used-up relayed connection was replaced: ${JSON.stringify(between)}`)
})

test('grid jobs on the NATed providers from the public and the NATed submitter: every task correct, billed once', async () => {
  await runNatGrid(net, net.submitter!, 'public-submitter', 40)
  const r = await runNatGrid(net, net.natSubmitter, 'nat-submitter', 40)
  for (const c of r.copies) assert.ok(c.route?.kind === 'relayed' || c.route?.kind === 'overlay', `two NATs apart: ${c.route?.kind ?? '?'}`)
})

test('relay1 killed mid-job: 60 tasks from the NATed submitter complete once, correct, billed once', async () => {
  const r = await runNatGrid(net, net.natSubmitter, 'relay-killed', 60, { killRelayAt: 10 })
  assert.ok(r.killedAt !== undefined && r.killedAt < 60, `the relay died mid-job (after ${String(r.killedAt)} tasks)`)
  for (const c of r.copies) assert.ok(c.route?.kind === 'relayed' || c.route?.kind === 'overlay', `two NATs apart: ${c.route?.kind ?? '?'}`)
})

test.run()
