// Crash safety (quick variant): four trials, kill -9 of the submitter mid-job, of a provider
// mid-job, of the submitter while it settles (vouchers flushed, job closed on chain) and of a
// provider while it redeems; every trial ends with all results correct and, on the shared
// chain, each provider paid exactly its final signed voucher, once (test/crash/crash-scenario.ts).
// The long variant (25 trials at random points) is test/long/crash-job.test.ts.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runCrashTrials } from '../crash/crash-scenario.js'

test('kill -9 of submitter and provider mid-job, while settling and while redeeming: results correct, every amount paid once', async () => {
  const r = await runCrashTrials({ trials: 4, seed: 3, tasks: 16, points: ['submitter-mid-job', 'provider-mid-job', 'submitter-during-settle', 'provider-during-redeem'], cycle: true, log: s => { console.log(s) } })
  assert.is(r.trials.length, 4)
  assert.is(r.store.receipts, r.trials.reduce((n, t) => n + t.receipts, 0))
})

test.run()
