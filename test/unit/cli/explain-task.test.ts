// `dbc job explain JOB --task N` prints the task as lines for people (status, why it waits, where
// placement put its copies and why, each copy's outcome and route), not a JSON object; --json keeps
// the object. Peer-supplied text (errors, route facts) is made printable.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { taskLines, placementLines } from '../../../src/cli/job.js'
import { describeRoute } from '../../../src/net/routes/explain.js'

test('a task with two copies, one failed, one agreed over a direct route', () => {
  const out = taskLines({
    index: 7,
    status: 'done',
    acceptedHash: '28f327434caac7df4975a3646a9308f853cba27a7beb45322236b669586bef9d',
    placement: { index: 7, placed: true, why: 'placed: 2 copies on the cheapest fast offers', copies: [{ copy: 0, provider: 'prov-a', why: 'cheapest predicted finish' }] },
    copies: [
      { attempt: 1, provider: 'prov-a', reason: 'initial', outcome: 'failed', error: 'TASK_TRAP: unreachable\u001b[31m', ms: 12.4, route: { kind: 'direct', facts: 'direct connection we opened' } },
      { attempt: 2, provider: 'prov-b', reason: 'retry', outcome: 'agreed', hash: '28f327434caac7df4975a3646a9308f853cba27a7beb45322236b669586bef9d', ms: 30, route: { kind: 'direct', facts: 'direct connection the provider opened to us' } }
    ]
  }, describeRoute)
  assert.not.match(out, /[{}"]/, 'no JSON')
  assert.match(out, /^task 7: done \(accepted output sha256 28f327434caac7df\.\.\.\)\n/)
  assert.match(out, /\n {2}placement: placed: 2 copies on the cheapest fast offers\n {4}copy 0 on prov-a: cheapest predicted finish\n/)
  assert.match(out, /\n {2}copy 1 \(initial\) on prov-a: failed, 12 ms, error: TASK_TRAP: unreachable/)
  assert.not.match(out, /\u001b/, 'control characters stripped')
  assert.match(out, /\n {2}copy 2 \(retry\) on prov-b: agreed, 30 ms, output 28f327434caac7df\.\.\.\n {4}route: .+ \(direct connection the provider opened to us\)\n$/)
})

test('a task still waiting, no copy sent', () => {
  const out = taskLines({ index: 0, status: 'queued', waiting: 'waiting: 1 provider busy; tasks fail if none frees within 590 s', copies: [] }, describeRoute)
  assert.is(out, 'task 0: queued\n  waiting: 1 provider busy; tasks fail if none frees within 590 s\n  no copy sent yet\n')
})

test('a predicted makespan under a second is printed in ms, not "0s" (user walk s14)', () => {
  const p = { tasks: 2, placedTasks: 2, offersUsed: 1, offers: 2, usableOffers: 2, predictedCost: 0.0000086, predictedMakespanMs: 112.4 }
  assert.match(placementLines(p), /predicted cost 0\.0000086 DBC, providers' makespan 112 ms \(their work and transfers, not this node's dispatch of each copy\)\n/)
  assert.match(placementLines({ ...p, predictedMakespanMs: 0 }), /makespan 0s \(/)
  assert.match(placementLines({ ...p, predictedMakespanMs: 61_000 }), /makespan 1m1s \(/)
})

test.run()
