// Group commit (src/jobs/runner.ts, STEP_COMMIT_MS): the runner's steps are written at most once
// per window, the steps that come sooner held and written together, and nothing a step decided
// goes out (a copy, a cancel, a release) before that step is committed: a second connection to
// the store file sees the copy's row before the provider sees the task.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { JobRunner } from '../../../src/jobs/index.js'
import { JobStore } from '../../../src/jobs/store.js'
import { openStore } from '../../../src/store/db.js'
import { key, manifest, providers, transport } from '../../integration/jobs-helpers.js'

const owner = key(1)
const dir = mkdtempSync(join(tmpdir(), 'dbc-runner-commit-'))

async function runJob (name: string, stepCommitMs: number, tasks: number): Promise<{ commits: number[], sent: number, unseen: string[], openAtSend: number, done: number, status: string }> {
  const path = join(dir, `${name}.db`)
  const node = openStore(path)
  const store = new JobStore(node)
  const commits: number[] = []
  const tx = store.transaction.bind(store)
  store.transaction = <T>(fn: () => T): T => { const out = tx(fn); commits.push(performance.now()); return out }
  const reader = new DatabaseSync(path, { readOnly: true })
  const row = reader.prepare('SELECT 1 AS one FROM job_copies WHERE job_id = ? AND idx = ? AND attempt = ?')
  const jobId = (name === 'window' ? 'a1' : 'b2').repeat(32)
  // providers answer at different times (1-4 ms), so answers come back in many loop turns
  const tr = transport(providers(4, i => ({ slots: 4, delayMs: 1 + i })), owner)
  const out = { commits, sent: 0, unseen: [] as string[], openAtSend: 0, done: 0, status: '' }
  const run = tr.runTask.bind(tr)
  tr.runTask = async (provider, task, opts) => {
    out.sent++
    if (node.inTransaction()) out.openAtSend++
    // committed: another connection sees it (an open transaction's rows are invisible to it)
    if (row.get(jobId, task.index ?? 0, task.attempt ?? 0) === undefined) out.unseen.push(`${task.index ?? 0}:${task.attempt ?? 0}`)
    return await run(provider, task, opts)
  }
  const m = manifest({ inputs: { range: { from: 0, to: tasks - 1 } }, verification: { mode: 'off' } })
  const summary = await new JobRunner({ jobId, manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), store, stepCommitMs }).run()
  tr.close()
  out.status = summary.status
  out.done = summary.done
  reader.close()
  node.close()
  return out
}

test('steps are committed at most once per window, and no copy goes out before its step is committed', async () => {
  const W = 40
  const r = await runJob('window', W, 160)
  assert.is(r.status, 'finished')
  assert.is(r.done, 160)
  assert.equal(r.unseen, [], 'every copy sent was in a committed step')
  assert.is(r.openAtSend, 0, 'no copy sent inside a transaction')
  // every commit but the job's last step (written at once) and the reputation saved after it comes a
  // window after the one before (a timer may fire up to a millisecond early by performance.now())
  for (let i = 1; i < r.commits.length - 2; i++) assert.ok(r.commits[i] - r.commits[i - 1] >= W - 1.5, `commits ${i - 1} and ${i} ${(r.commits[i] - r.commits[i - 1]).toFixed(1)} ms apart`)
  assert.ok(r.sent >= 160)
  // several copies share a commit: far fewer commits than copies
  assert.ok(r.commits.length * 4 < r.sent, `${r.commits.length} commits for ${r.sent} copies`)
})

test('with no window (stepCommitMs 0) each step commits, still before its copies go out', async () => {
  const r = await runJob('nowindow', 0, 80)
  assert.is(r.status, 'finished')
  assert.is(r.done, 80)
  assert.equal(r.unseen, [])
  assert.is(r.openAtSend, 0)
})

test('the budget counts the copies of held steps: a budget.total job starts no more copies than it allows', async () => {
  const store = new JobStore(openStore(join(dir, 'budget.db')))
  // every other copy fails and is re-run: one copy is predicted at 3600/h x 1 ms = 0.001, so the
  // budget leaves room for 12 copies, plus the two already out when it runs out (2 slots)
  const tr = transport(providers(2, () => ({ priceCpuHour: 3600, failEvery: 2, slots: 1, delayMs: 1 })), owner)
  const m = manifest({ inputs: { range: { from: 0, to: 29 } }, budget: { total: 0.012 } })
  const s = await new JobRunner({ jobId: 'c3'.repeat(32), manifest: m, holder: owner, transport: tr, code: new Uint8Array([1]), store, stepCommitMs: 50, stragglerFactor: 0 }).run()
  tr.close()
  store.store.close()
  assert.ok(s.failures.some(f => /budget\.total/.test(f.reason)), JSON.stringify(s.failures))
  assert.ok(s.predictedSpent <= 0.012 + 0.002 + 1e-9, `spent ${s.predictedSpent} over ${s.copies} copies`)
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })

test.run()
