// Regression (found by the live fuzzer): asking a job for its status while the runner was still
// reading its input file (before the job machine existed) threw "Cannot read properties of
// undefined (reading 'progress')", which ended `GET /v1/jobs/:id/events` with an error. Under
// load that window is wide. Now progress() reports the job as all queued until the machine runs.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { JobRunner } from '../../src/jobs/index.js'
import { key, manifest, providers, transport } from '../integration/jobs-helpers.js'

test('progress() right after run() starts (input file still being read) does not throw', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dbc-progress-'))
  try {
    writeFileSync(join(dir, 'in.bin'), Buffer.alloc(8 * 10))
    const m = manifest({ inputs: { files: { path: 'in.bin', chunkBytes: 8 } } })
    const owner = key(1)
    const r = new JobRunner({ jobId: 'ab'.repeat(32), manifest: m, baseDir: dir, holder: owner, transport: transport(providers(2), owner), code: new Uint8Array([1]) })
    const done = r.run()
    const early = r.progress() // the runner is awaiting stat() of the input file here
    assert.is(early.done, 0)
    assert.is(early.running, 0)
    const summary = await done
    assert.is(summary.status, 'finished')
    assert.is(r.progress().done, 10)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test.run()
