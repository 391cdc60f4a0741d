// The Jobs page's per-provider "done" (src/dashboard/jobs-view.ts): a redundancy-2 job whose two
// providers each returned every task's agreed copy showed done 1,379 and 0 (only the copy recorded
// as accepted counted; review s13 L9, user walk s14). It counts each provider's agreed copies.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../src/store/db.js'
import { JobStore } from '../../src/jobs/store.js'
import type { JobService } from '../../src/jobs/service.js'
import { jobDetail } from '../../src/dashboard/jobs-view.js'

test('redundancy 2: both providers count every task they agreed on; a failed copy counts as failed only', () => {
  const store = openStore(':memory:')
  const jobs = new JobStore(store)
  const jobId = 'ab'.repeat(32)
  const tasks = 3
  jobs.createJob({ jobId, owner: new Uint8Array(32), manifest: '{}', manifestHash: new Uint8Array(32), createdAt: 0, nonce: new Uint8Array(8), signature: new Uint8Array(64), status: 'finished', taskCount: tasks, updatedAt: 0 })
  for (let i = 0; i < tasks; i++) {
    for (const [attempt, provider] of [[1, 'P'], [2, 'Q']] as const) {
      jobs.copyStarted(jobId, { index: i, attempt, provider, leaseId: `L${provider}`, reason: attempt === 1 ? 'initial' : 'redundant', startedAt: 0 })
      jobs.copyResult(jobId, i, attempt, { outcome: 'agreed', hash: 'h', endedAt: 5 })
    }
    jobs.acceptTask(jobId, i, 'h', 1, new Uint8Array([i]))
  }
  // one extra copy on R that failed
  jobs.copyStarted(jobId, { index: 0, attempt: 3, provider: 'R', leaseId: 'LR', reason: 'retry', startedAt: 0 })
  jobs.copyResult(jobId, 0, 3, { outcome: 'failed', error: 'TASK_TRAP: x', endedAt: 5 })
  const service = {
    status: () => ({ jobId, name: 'j', status: 'finished', tasks, done: tasks, failed: 0, running: 0, queued: 0, billedCopies: 6, copiesByOutcome: {}, createdAt: 0, updatedAt: 0, live: false }),
    explain: () => ({ jobId, status: 'finished', failures: [] })
  } as unknown as JobService
  const d = jobDetail(store, jobs, service, jobId)
  const by = Object.fromEntries(d.providers.map(p => [p.provider, p]))
  assert.is(by.P.done, 3)
  assert.is(by.Q.done, 3, 'the second provider of each task counts it too (was 0)')
  assert.is(by.R.done, 0)
  assert.is(by.R.failed, 1)
  assert.is(d.counts.done, 3)
})

test.run()
