// The submitter is killed (SIGKILL) mid-job and restarted: the job resumes and finishes,
// no task is lost, no task is accepted or billed twice.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { openStore } from '../../src/store/db.js'
import { JobService, JobStore } from '../../src/jobs/index.js'
import { expected, key, providers, transport } from './jobs-helpers.js'

const dir = mkdtempSync(join(tmpdir(), 'dbc-jobs-restart-'))
const storePath = join(dir, 'node.db')
const dec = new TextDecoder()

test('a submitter killed mid-job resumes without losing or double-billing a task', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', '--no-warnings=ExperimentalWarning', 'test/integration/fixtures/jobs-submitter.ts', storePath, 'submit'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', d => { out += String(d) })
  child.stderr.on('data', d => { out += String(d) })
  const exited = new Promise(resolve => child.on('close', resolve))
  // Wait until a good part of the job is accepted, then kill -9.
  let doneBefore = 0
  for (let i = 0; i < 600 && doneBefore < 250; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    try {
      const db = new DatabaseSync(storePath, { readOnly: true })
      doneBefore = Number((db.prepare("SELECT COUNT(*) AS n FROM job_tasks WHERE status = 'done'").get() as { n: number }).n)
      db.close()
    } catch { /* not created yet */ }
  }
  child.kill('SIGKILL')
  await exited
  assert.ok(doneBefore >= 250 && doneBefore < 1000, `killed mid-job (done ${doneBefore}); child output: ${out}`)
  assert.not.match(out, /DONE/)

  const owner = key(1)
  const store = new JobStore(openStore(storePath))
  const jobId = store.listJobs()[0].jobId
  const before = store.accounting(jobId)
  const tr = transport(providers(8, () => ({ slots: 2 })), owner)
  const svc = new JobService({ store, transport: tr, identity: owner })
  const resumed = await svc.resumeAll()
  assert.is(resumed.length, 1)
  const summary = await resumed[0].done
  tr.close()
  assert.is(summary.status, 'finished')
  const results = store.results(jobId)
  assert.is(results.length, 1000, 'no task lost')
  for (const r of results) assert.is(dec.decode(r.output), expected(r.index), `task ${r.index}`)
  const acc = store.accounting(jobId)
  assert.ok(acc.done >= before.done)
  // the default checks: a task bills its one copy, or the two agreeing copies of a spot check
  assert.ok(acc.billed >= 1000 && acc.billed < 2000, `${acc.billed} billed copies`)
  const perTask = store.store.db.prepare(`SELECT c.idx, SUM(c.billed) AS b, COUNT(DISTINCT CASE WHEN c.billed = 1 THEN c.provider END) AS p,
    SUM(c.billed = 1 AND c.hash <> t.accepted_hash) AS off FROM job_copies c JOIN job_tasks t ON t.job_id = c.job_id AND t.idx = c.idx
    WHERE c.job_id = ? GROUP BY c.idx HAVING b < 1 OR b > 2 OR b <> p OR off > 0`).all(jobId)
  assert.equal(perTask, [], 'no task billed twice by one provider, billed for a wrong copy, or not at all')
  assert.ok((acc.byOutcome.lost ?? 0) > 0 || before.done === 1000, 'copies out at the kill are recorded as lost')
  assert.is(svc.status(jobId).status, 'finished')
  store.store.close()
})

test.after(() => { rmSync(dir, { recursive: true, force: true }) })
test.run()
