// Crash safety (quick variant): three trials, kill -9 of the submitter mid-job, of a provider
// mid-job, and of the submitter (with its bridge) in the middle of settling; every trial ends
// with all results correct and every receipt settled exactly once (test/crash/crash-scenario.ts).
// The long variant (20+ trials at random points) is test/long/crash-job.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runCrashTrials } from '../crash/crash-scenario.js'

test('kill -9 of submitter, provider and settling bridge: results correct, receipts settled exactly once', async () => {
  const r = await runCrashTrials({ trials: 3, seed: 3, tasks: 16, points: ['submitter-mid-job', 'provider-mid-job', 'submitter-during-settle'], cycle: true, log: s => { console.log(s) } })
  assert.is(r.trials.length, 3)
  assert.is(r.outbox.receipts, r.trials.reduce((n, t) => n + t.receipts, 0))
})

test.run()
