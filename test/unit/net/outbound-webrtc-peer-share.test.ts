// Review s12 L2: streams that cannot be paused (WebRTC) were held to no peer share and their cap
// equals the node budget, so one peer alone could fill the node budget (every pausable result of
// other peers then waited). Now past its share, that peer's slowest such stream is reset (charged
// only when it would miss its frame deadline, as for the cap). Ratios as shipped (64 / 32 / 64 MiB).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup, peers } from './outbound-fake.js'

const p0 = peers[0].toString()

test('one WebRTC peer past its share: its slowest stream is reset, not charged; others untouched', () => {
  const { b, track, clock, charges } = setup({ nodeBytes: 1000, peerBytes: 500, unpausableBytes: 1000, frameDeadlineMs: 1e9 })
  const w = [track(0, false), track(0, false)]
  w[0].arrive(300, 1000)
  clock.t = 3000
  w[1].arrive(100, 1000)
  clock.t = 4000
  w[1].arrive(195, 1000) // fast; w[0] has been silent since 0
  w[0].arrive(1, 1000) // peer 0 holds 596, over its 500
  assert.ok(w[0].failed !== undefined, 'the slowest of peer 0 is reset')
  assert.match(w[0].failed!.message, /over its share 500/)
  assert.is(w[1].failed, undefined)
  assert.ok(b.bufferedBytes(p0) <= 500, `peer 0 within its share (${b.bufferedBytes(p0)})`)
  assert.equal(charges, [], 'not charged: it could still finish inside its frame deadline')
  const tcp = [track(1), track(2), track(1)]
  for (const x of tcp) x.arrive(10, 1000)
  assert.is(tcp.filter(x => x.paused).length, 0, 'pausable results of other peers read')
})

test('WebRTC streams of two peers, each within its share, are not reset below the cap', () => {
  const { b, track } = setup({ nodeBytes: 1000, peerBytes: 500, unpausableBytes: 1000, frameDeadlineMs: 1e9 })
  const a = [track(0, false), track(0, false)]
  const c = [track(1, false), track(1, false)]
  for (const x of [...a, ...c]) x.arrive(240, 1000)
  assert.ok([...a, ...c].every(x => x.failed === undefined))
  assert.is(b.bufferedBytes(), 960)
})

test.run()
