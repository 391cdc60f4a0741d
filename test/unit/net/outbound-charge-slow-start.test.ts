// Review s12 L1: shed() charged READ_DEADLINE a stream "under the minimum rate after 1 s", a
// stricter test than the frame deadline it stands beside (10 s + length at the minimum rate): an
// honest WebRTC result that would finish well inside its deadline was charged when the cap was
// passed by someone else. Now charged only when it could not finish inside its deadline at its rate.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { setup } from './outbound-fake.js'

test('an honest stream that would finish inside its frame deadline is not charged when shed', () => {
  // deadline 1000 ms + len at 100 B/s; cap 300 B
  const { clock, charges, track } = setup({ nodeBytes: 10_000, peerBytes: 10_000, unpausableBytes: 300 } as never)
  const honest = track(0, false)
  honest.arrive(1, 400) // 400 B frame: allowed 1 s + 4 s = 5 s
  clock.t = 1500
  honest.arrive(119, 400) // 80 B/s: done at ~5 s, inside its deadline
  const other = track(1, false)
  other.arrive(200, 1000) // an honest result starting fast: 320 B held > 300
  assert.ok(honest.failed !== undefined || other.failed !== undefined, 'someone is shed')
  assert.is(charges.length, 0, `charged: ${charges.join(' | ')}`)
})

test.run()
