// A repeated log line is written once per window, and the next one written carries the count of
// the lines held back (811 identical ban lines become one, then one per window with a count).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RepeatLimiter } from '../../../src/net/guard/index.js'
import { offenceOf } from '../../../src/node/daemon.js'

test('one line per key per window; the next one written reports how many were suppressed', () => {
  const r = new RepeatLimiter(1000)
  assert.equal(r.check(0, 'ban'), { write: true, suppressed: 0 })
  let written = 0
  for (let i = 0; i < 810; i++) if (r.check(500, 'ban').write) written++
  assert.is(written, 0)
  assert.equal(r.check(0, 'other'), { write: true, suppressed: 0 }, 'keys are independent')
  assert.equal(r.check(1000, 'ban'), { write: true, suppressed: 810 })
  assert.equal(r.check(2500, 'ban'), { write: true, suppressed: 0 })
})

test('the guard\'s error codes map to their own offences in the score book', () => {
  assert.is(offenceOf('STREAM_LIMIT'), 'over-budget')
  assert.is(offenceOf('BUFFER_LIMIT'), 'over-budget')
  assert.is(offenceOf('READ_DEADLINE'), 'slow-frame')
  assert.is(offenceOf('IDLE_DEADLINE'), 'slow-frame')
  assert.is(offenceOf('FRAME_TOO_LARGE'), 'oversized')
  assert.is(offenceOf('TRAINING_MESSAGE_INVALID'), 'malformed')
})

test.run()
