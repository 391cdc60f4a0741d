// Group commit (src/jobs/runner.ts, STEP_COMMIT_MS) and the job's end: steps held for the window
// carry copies the machine decided; when the job is cancelled (or finishes) before the window ends,
// the last commit writes them but sends none (review17: 16 copies went out after the cancel).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { JobRunner } from '../../../src/jobs/index.js'
import { JobStore } from '../../../src/jobs/store.js'
import { openStore } from '../../../src/store/db.js'
import { key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

const owner = key(1)
const dir = mkdtempSync(join(tmpdir(), 'dbc-runner-held-'))

test('a job cancelled while steps are held sends none of their copies after the cancel', async () => {
  const store = new JobStore(openStore(join(dir, 'held.db')))
  const tr = transport(providers(2, () => ({ slots: 2, delayMs: 5 })), owner)
  let cancelled = false
  let answered = 0
  const late: string[] = []
  const ac = new AbortController()
  const run = tr.runTask.bind(tr)
  tr.runTask = async (provider, task, opts) => {
    if (cancelled) late.push(`${task.index ?? 0}:${task.attempt ?? 0}`)
    const r = await run(provider, task, opts)
    // the first answers are in: the steps after them (and the copies they start) are held for the window; cancel then
    if (++answered === 2) setTimeout(() => { cancelled = true; ac.abort() }, 30)
    return r
  }
  const m = manifest({ inputs: { range: { from: 0, to: 199 } }, verification: { mode: 'off' } })
  const runner = new JobRunner({ jobId: 'd4'.repeat(32), manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), store, stepCommitMs: 500 })
  const done = runner.run({ signal: ac.signal })
  const s = await done
  tr.close(); store.store.close()
  assert.is(s.status, 'cancelled')
  assert.equal(late, [], 'copies sent after the job was cancelled')
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })
test.run()
