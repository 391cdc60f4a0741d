// Review s10 L9: the STUN responder's bucket per source IP held 8 answers, then 1 a second. One
// ICE gathering is one UDP socket and sends one binding request when answered (5 over 12 s when
// not: measured with node-datachannel, helper sec session 13), so a NATed submitter whose round
// first-contacts many relayed providers (8 attempts in flight, ~0.5 s each) got a server-reflexive
// candidate for 8 of them, then one a second; an attempt without one finds no path through the NATs
// and is not tried again (src/net/routes/webrtc-upgrade.ts: once per peer). Now 64, then 8 a
// second: what a forged victim address can be sent stays tiny (64 answers of ~44 B, then ~350 B/s),
// and the global 500/s is unchanged.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { StunRateLimit, STUN_RATE_DEFAULTS } from '../../../src/core/routing/stun-rate-limit.js'

test('with the daemon\'s limits, one NATed node\'s 64 first contacts in 2 s each get their answer', () => {
  const l = new StunRateLimit({}, 0)
  let answered = 0
  for (let i = 0; i < 64; i++) if (l.allow('203.0.113.7', Math.floor(i * 2000 / 64))) answered++
  assert.is(answered, 64, `answered ${answered} of 64 (before: 8 + 2)`)
})

test('one source still gets no more than the burst plus the refill: a forged victim address gains little', () => {
  const l = new StunRateLimit({}, 0)
  let answered = 0
  for (let t = 0; t < 10_000; t += 5) if (l.allow('198.51.100.9', t)) answered++
  const most = STUN_RATE_DEFAULTS.burst + Math.ceil(10_000 / STUN_RATE_DEFAULTS.refillMs)
  assert.ok(answered <= most, `${answered} > ${most}`)
  assert.ok(most <= 64 + 80, 'at most 64, then 8 a second')
})

test.run()
