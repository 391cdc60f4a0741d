// A provider's log lines for the training it serves (helper user16's walk): joined, left with its
// rounds, and refusals limited to one line per coordinator and code per window (strangers invite).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { memberLog, MEMBER_REFUSAL_LOG_WINDOW_MS } from '../../../src/training/member-log.js'

test('joined and left name the job, the coordinator and the rounds; a flood of refusals is one line per window', () => {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  let now = 0
  const log = memberLog({ info: (obj, msg) => { lines.push({ obj, msg }) } }, () => now)
  log({ kind: 'joined', jobId: 'j1', coordinator: 'C', trainer: 'torch-mnist', fromRound: 0 })
  log({ kind: 'left', jobId: 'j1', coordinator: 'C', rounds: 30, refusedRounds: 2 })
  assert.is(lines[0].msg, 'training: joined job j1 of C (torch-mnist trainer)')
  assert.equal(lines[1].obj, { job: 'j1', coordinator: 'C', rounds: 30, refusedRounds: 2 })
  assert.match(lines[1].msg, /^training: left job j1 of C after 30 round\(s\), 2 sat out \(payment\)/)
  for (let i = 0; i < 100; i++) log({ kind: 'refused', jobId: `x${i}`, coordinator: 'S', code: 'PRICE_ABOVE_CAP', reason: 'PRICE_ABOVE_CAP: asks 30' })
  assert.is(lines.length, 3)
  assert.is(lines[2].msg, 'training: refused job x0 of S: PRICE_ABOVE_CAP: asks 30')
  log({ kind: 'refused', jobId: 'y', coordinator: 'S', code: '', reason: 'busy' }) // another code: its own line
  assert.is(lines.length, 4)
  now += MEMBER_REFUSAL_LOG_WINDOW_MS
  log({ kind: 'refused', jobId: 'x100', coordinator: 'S', code: 'PRICE_ABOVE_CAP', reason: 'PRICE_ABOVE_CAP: asks 30' })
  assert.is(lines.length, 5)
  assert.is(lines[4].obj.suppressed, 99)
  assert.match(lines[4].msg, /and 99 more refusals of this peer with PRICE_ABOVE_CAP/)
})

test.run()
