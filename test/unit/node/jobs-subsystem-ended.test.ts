// The submitter's jobs subsystem keeps a job's `done` and latest progress while it runs, for its
// event streams; once it ended they go, as does the job's waiter set once its last stream ended
// (a daemon that runs for months must not keep per-job state for ever).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobsSubsystem } from '../../../src/node/jobs-subsystem.js'
import type { JobSummary } from '../../../src/jobs/index.js'
import type { Progress } from '../../../src/core/scheduler/index.js'

interface Inner {
  progress: Map<string, unknown>
  done: Map<string, unknown>
  waiters: Map<string, Set<() => void>>
  track: (jobId: string, done: Promise<JobSummary>) => void
  onProgress: (jobId: string, p: Progress) => void
  unwait: (jobId: string, set: Set<() => void>, waiter: () => void) => void
}

test('an ended job leaves no progress, done or waiters behind; a failed one neither', async () => {
  const jobs = new JobsSubsystem()
  const inner = jobs as unknown as Inner
  const ends: Array<{ ok: (s: JobSummary) => void, fail: (e: Error) => void }> = []
  for (const id of ['j1', 'j2']) {
    inner.track(id, new Promise<JobSummary>((resolve, reject) => { ends.push({ ok: resolve, fail: reject }) }))
    inner.onProgress(id, { total: 2, done: 1, failed: 0 } as unknown as Progress)
  }
  // a stream of j1's events waits meanwhile
  let woken = 0
  const set = new Set<() => void>()
  const waiter = (): void => { woken++ }
  set.add(waiter)
  inner.waiters.set('j1', set)
  assert.is(inner.progress.size, 2)
  assert.is(inner.done.size, 2)
  ends[0].ok({} as unknown as JobSummary)
  ends[1].fail(new Error('no payment terms'))
  await new Promise(resolve => setTimeout(resolve, 10))
  assert.ok(woken >= 1, 'the stream is woken at the end')
  assert.is(inner.progress.size, 0)
  assert.is(inner.done.size, 0)
  inner.unwait('j1', set, waiter)
  assert.is(inner.waiters.size, 0)
})

test.run()
