// Crash safety (long variant): 25 trials, each killing (-9) the submitter, a provider, or the
// submitter with its bridge while settling, at a random point of a job's life; every trial
// ends with all results correct and every receipt settled exactly once (per job: confirmed
// batches adding up, idempotent re-settle, one on-chain credit per batch and provider; after the
// run: every receipt id in exactly one confirmed batch in the submitter's store).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runCrashTrials, KILL_POINTS } from '../crash/crash-scenario.js'

test('25 kill -9 trials at random points of a job\'s life', async () => {
  const trials = Number(process.env.CRASH_TRIALS ?? 25)
  const r = await runCrashTrials({ trials, seed: 11, tasks: 24, log: s => { console.log(s) } })
  assert.is(r.trials.length, trials)
  for (const p of KILL_POINTS) assert.ok(r.trials.some(t => t.point === p), `no trial killed at ${p}`)
  assert.is(r.outbox.receipts, r.trials.reduce((n, t) => n + t.receipts, 0))
  console.log(JSON.stringify({ trials: r.trials.length, receipts: r.outbox.receipts, batches: r.outbox.batches, byPoint: Object.fromEntries(KILL_POINTS.map(p => [p, r.trials.filter(t => t.point === p).length])) }))
})

test.run()
