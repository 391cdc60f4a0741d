// The runner reports progress at most once per PROGRESS_MS (each report counts the job's tasks:
// once per step it was quadratic in a job), and the job's final state is always reported.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { JobRunner } from '../../../src/jobs/index.js'
import { PROGRESS_MS } from '../../../src/jobs/runner-state.js'
import type { Progress } from '../../../src/core/scheduler/index.js'
import { key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

test('progress is reported at most once per PROGRESS_MS, and the last report is the finished job', async () => {
  const owner = key(1)
  const seen: Array<{ at: number, p: Progress }> = []
  const m = manifest({ inputs: { range: { from: 0, to: 399 } } })
  const r = new JobRunner({ jobId: 'cd'.repeat(32), manifest: m, holder: owner, transport: transport(providers(3), owner), code: new Uint8Array([1]), onProgress: p => { seen.push({ at: performance.now(), p }) } })
  const summary = await r.run()
  assert.is(summary.status, 'finished')
  assert.ok(seen.length > 0)
  assert.is(seen[seen.length - 1].p.done, 400, 'the final state is reported')
  // every report but the final one (sent as the job ends) keeps the spacing
  for (let i = 1; i < seen.length - 1; i++) assert.ok(seen[i].at - seen[i - 1].at >= PROGRESS_MS - 1, `reports ${i - 1} and ${i} ${(seen[i].at - seen[i - 1].at).toFixed(1)} ms apart`)
  // nothing is reported after the end
  const n = seen.length
  await new Promise(resolve => setTimeout(resolve, PROGRESS_MS * 3))
  assert.is(seen.length, n)
})

test.run()
