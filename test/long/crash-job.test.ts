// Crash safety (long variant): 25 trials, each killing (-9) the submitter or a provider at a
// random point of a job's life or of its payment (mid-job, while settling, while a provider
// redeems); every trial ends with all results correct and every amount paid exactly once (per
// job: every payable receipt signed into the provider's final cumulative voucher; on the shared
// chain redeemed(job, provider) and the Redeemed events equal that voucher, and the provider's
// own node agrees; after the run: the submitter's stored receipts add up to its vouchers).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runCrashTrials, KILL_POINTS } from '../crash/crash-scenario.js'

test('25 kill -9 trials at random points of a job\'s life and payment', async () => {
  const trials = Number(process.env.CRASH_TRIALS ?? 25)
  const r = await runCrashTrials({ trials, seed: 11, tasks: 24, log: s => { console.log(s) } })
  assert.is(r.trials.length, trials)
  for (const p of KILL_POINTS) assert.ok(r.trials.some(t => t.point === p), `no trial killed at ${p}`)
  assert.is(r.store.receipts, r.trials.reduce((n, t) => n + t.receipts, 0))
  console.log(JSON.stringify({ trials: r.trials.length, receipts: r.store.receipts, vouchers: r.store.vouchers, byPoint: Object.fromEntries(KILL_POINTS.map(p => [p, r.trials.filter(t => t.point === p).length])) }))
})

test.run()
