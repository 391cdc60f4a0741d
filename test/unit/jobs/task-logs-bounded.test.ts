// The submitter's copy logs keep each job's stored bytes in memory for its budget: for the jobs
// logged last only (a daemon that runs for months ran more), and a job that fell out still keeps
// its budget (its bytes are summed from the store again).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { TaskLogStore, USED_JOBS_MAX } from '../../../src/jobs/task-logs.js'
import { openStore } from '../../../src/store/db.js'

const bytes = (n: number): Uint8Array => new Uint8Array(n).fill(65)

test('per-job byte counts are kept for the last USED_JOBS_MAX jobs; an evicted job\'s budget still holds', () => {
  const logs = new TaskLogStore(openStore(':memory:'), { perCopy: 16, perJob: 40, afterBudget: 4 })
  const used = (logs as unknown as { used: Map<string, number> }).used
  // job A uses its budget: 16 + 16 + 16 bytes (48 >= 40)
  for (let i = 0; i < 3; i++) logs.record('A', i, 1, 'p', bytes(100), 100, 1)
  for (let j = 0; j < USED_JOBS_MAX + 10; j++) logs.record(`job-${j}`, 0, 1, 'p', bytes(8), 8, 1)
  assert.ok(used.size <= USED_JOBS_MAX, `${used.size} jobs held`)
  assert.not.ok(used.has('A'))
  // A again: past its budget, a copy keeps only the short tail
  logs.record('A', 3, 1, 'p', bytes(100), 100, 1)
  assert.is(logs.get('A', 3, 1)?.stderr.length, 4)
})

test.run()
