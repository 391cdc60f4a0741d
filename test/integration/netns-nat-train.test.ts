// test-timeout-s: 600
// A training coordinator behind one real NAT and its two members behind two others, with no
// circuit relay anywhere (test/netns/training-nat.ts): no direct nor relayed connection can open
// between them, so every training message (invitation, round control, all-reduce slices, reports,
// the final model) and every payment voucher crosses the overlay as chunked sealed envelopes
// through the public node. Every round has both members and drops none; the routes are printed.
// Needs root, ip netns and iptables (test/netns/nat.ts).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { startOverlayOnlyNet, assertSitesIsolated, trainOverOverlay, type OverlayOnlyNet } from '../netns/training-nat.js'

const ROUNDS = 4
let net: OverlayOnlyNet

test.before(async () => {
  const t0 = Date.now()
  // uvu reports a failed hook without its error: print it
  net = await startOverlayOnlyNet().catch((err: Error) => { console.error(err); throw err })
  console.log(`three NATs and 4 daemons up in ${Date.now() - t0} ms`)
})

test.after(async () => {
  await net?.t.destroy()
  assert.equal(net?.t.remaining() ?? [], [], 'every namespace of the NAT topology is gone')
})

test('a coordinator behind NAT trains two members behind other NATs over the overlay only: every round has both', async () => {
  assertSitesIsolated(net)
  const { history, routes, accuracy, ms, paid } = await trainOverOverlay(net, ROUNDS)
  console.log(`${ROUNDS} rounds in ${ms} ms over the overlay, accuracy ${String(accuracy)}, paid ${JSON.stringify(paid)}; round ms ${history.map(h => Math.round(h.roundMs)).join(',')}; deadlines ${history.map(h => Math.round(h.deadlineMs)).join(',')}; loss ${history.map(h => Number(h.loss).toFixed(3)).join(',')}`)
  for (const r of routes) console.log(`  ${r.from} -> ${r.to}: ${r.kind}${r.relays.length > 0 ? ` via ${r.relays.join(', ')}` : ''}, bytes ${JSON.stringify(r.bytes)} (${r.facts.slice(0, 160)})`)
  const [a, b] = net.members
  for (const [from, to] of [['coordinator', a.name], ['coordinator', b.name], [a.name, 'coordinator'], [b.name, 'coordinator'], [a.name, b.name], [b.name, a.name]]) {
    const r = routes.find(x => x.from === from && x.to === to)
    assert.ok(r !== undefined, `${from} sent to ${to}`)
    assert.is(r.kind, 'overlay', `${from} -> ${to} took the overlay: ${r.facts}`)
    assert.equal(r.relays, ['relay1'], `${from} -> ${to} went through relay1`)
    assert.ok((r.bytes.overlay ?? 0) > 0 && Object.keys(r.bytes).every(k => k === 'overlay'), `${from}'s frames to ${to} crossed the overlay only: ${JSON.stringify(r.bytes)}`)
  }
  assert.ok(Number(accuracy) > 0.5, `the model learned: accuracy ${String(accuracy)}`)
  assert.ok(history[history.length - 1].loss < history[0].loss, 'the loss went down')
})

test.run()
