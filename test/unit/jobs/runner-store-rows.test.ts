// persistStep writes a step's copies ahead (run commands), its answers settled in the step and its
// acceptances in multi-row statements (JobStore.copiesStarted, copiesAnswered, acceptTasks): the rows they leave are those one statement per copy or
// task leaves (a replay ignored, a task named twice keeps its first row, a reopen between two
// acceptances of a task in one step keeps the second), in fewer statements.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { JobStore, ROWS_PER_STATEMENT } from '../../../src/jobs/store.js'
import { persistStep, type CopyRow } from '../../../src/jobs/runner-store.js'
import type { CopyOutcome, JobCommand, JobEvent } from '../../../src/core/scheduler/index.js'
import { countStatements } from '../../helpers/statement-count.js'

function fresh (): { s: JobStore, store: ReturnType<typeof openStore> } {
  const store = openStore(':memory:')
  const s = new JobStore(store)
  s.createJob({ jobId: 'j', owner: new Uint8Array([1]), manifest: '{}', manifestHash: new Uint8Array(32), createdAt: 1, nonce: new Uint8Array(16), signature: new Uint8Array(64), status: 'running', taskCount: 100, updatedAt: 1 })
  return { s, store }
}

const run = (index: number, attempt: number, provider = `p${index % 3}`): JobCommand => ({ type: 'run', index, attempt, leaseId: `l${index % 2}`, provider, reason: index % 5 === 0 ? 'redundant' : 'initial' })
const accepted = (index: number, attempt: number, hash = `h${index}`): JobEvent => ({ type: 'accepted', index, attempt, hash, provider: 'p' })
const dump = (s: JobStore): unknown => ({ copies: s.copies('j'), results: s.results('j'), failures: s.failures('j') })

test('copies ahead: the same rows as copyStarted one by one, past one statement\'s rows, a replay ignored', () => {
  const n = ROWS_PER_STATEMENT * 2 + 5
  const cmds = Array.from({ length: n }, (_, i) => run(i, 1))
  const a = fresh()
  const b = fresh()
  // a row already there (a replayed step) keeps what it holds in both
  for (const x of [a, b]) x.s.copyStarted('j', { index: 3, attempt: 1, provider: 'old', leaseId: 'old', reason: 'retry', startedAt: 0 })
  a.s.transaction(() => { for (const c of cmds) if (c.type === 'run') a.s.copyStarted('j', { index: c.index, attempt: c.attempt, provider: c.provider, leaseId: c.leaseId, reason: c.reason, startedAt: 7 }) })
  const counted = countStatements(b.store)
  const s2 = new JobStore(b.store) // (statements prepared after countStatements are counted)
  counted.reset()
  persistStep(s2, 'j', 7, cmds, [], [], () => undefined)
  assert.is(counted.runs, 3) // 69 rows: 32 + 32 + 5
  assert.equal(dump(b.s), dump(a.s))
  assert.is(b.s.copies('j').length, n)
  assert.is(b.s.copies('j', 3)[0].provider, 'old')
})

test('acceptances: first row wins, a reopen or failure in between keeps the events\' order', () => {
  const outputs = new Map<string, Uint8Array>([['1:1', new Uint8Array([1])], ['1:2', new Uint8Array([2])], ['2:1', new Uint8Array([3])], ['4:1', new Uint8Array([4])]])
  const events: JobEvent[] = [
    accepted(0, 1), accepted(0, 2, 'other'), // named twice in the step: the first stays
    accepted(1, 1), { type: 'task-reopened', index: 1, reason: 'caught' }, accepted(1, 2, 'second'), // reopened in between: the second stays
    accepted(2, 1), { type: 'task-failed', index: 3, reason: 'x' }, accepted(3, 1), // failed before its acceptance: failed stays
    accepted(4, 1), accepted(5, 1) // 5 accepted before this step: kept
  ]
  const a = fresh()
  const b = fresh()
  for (const x of [a, b]) x.s.acceptTask('j', 5, 'before', 9, new Uint8Array([9]))
  const out = (i: number, at: number): Uint8Array | undefined => outputs.get(`${i}:${at}`)
  a.s.transaction(() => {
    for (const e of events) {
      if (e.type === 'accepted') a.s.acceptTask('j', e.index, e.hash, e.attempt, out(e.index, e.attempt) ?? new Uint8Array())
      else if (e.type === 'task-reopened') a.s.reopenTask('j', e.index)
      else if (e.type === 'task-failed') a.s.failTask('j', e.index, e.reason)
    }
  })
  const counted = countStatements(b.store)
  const s2 = new JobStore(b.store)
  counted.reset()
  persistStep(s2, 'j', 7, [], events, [], out)
  // 3 multi-row INSERTs (before the reopen, before the failure, the rest) + the reopen + the failure
  assert.is(counted.runs, 5)
  assert.equal(dump(b.s), dump(a.s))
  assert.equal(b.s.results('j').map(r => [r.index, r.hash, r.attempt]), [[0, 'h0', 1], [1, 'second', 2], [2, 'h2', 1], [4, 'h4', 1], [5, 'before', 9]])
  assert.equal(b.s.failures('j'), [{ index: 3, reason: 'x' }])
})

test('answers settled in their step: the same rows as copyAnswered one by one, past one statement\'s rows', () => {
  const n = ROWS_PER_STATEMENT + 9
  const rows: CopyRow[] = Array.from({ length: n }, (_, i) => ({ index: i, attempt: 1, outcome: i % 7 === 3 ? 'failed' : 'agreed', ...(i % 7 === 3 ? { error: `e${i}` } : { hash: `h${i}` }), endedAt: 10 + i, ...(i % 2 === 0 ? { receipt: new Uint8Array([i, 1]) } : {}) }))
  const settles: JobEvent[] = rows.map(r => ({ type: 'copy-settled', index: r.index, attempt: 1, provider: 'p', outcome: r.index % 5 === 1 ? 'wrong' : r.outcome as CopyOutcome, billed: r.outcome === 'agreed' && r.index % 5 !== 1 }))
  const a = fresh()
  const b = fresh()
  for (const x of [a, b]) {
    for (let i = 0; i < n; i++) x.s.copyStarted('j', { index: i, attempt: 1, provider: 'p', leaseId: 'l', reason: 'initial', startedAt: 1 })
    x.s.copySettled('j', 4, 1, 'agreed', true) // billed before: stays billed, keeps the result's outcome
    x.s.copyResult('j', 6, 1, { outcome: 'pending', endedAt: 2, receipt: new Uint8Array([9]) }) // a receipt already there stays
  }
  a.s.transaction(() => { for (const r of rows) a.s.copyAnswered('j', r.index, r.attempt, { outcome: r.outcome as CopyOutcome, hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt }, settles[r.index] as Extract<JobEvent, { type: 'copy-settled' }>) })
  const counted = countStatements(b.store)
  const s2 = new JobStore(b.store)
  counted.reset()
  persistStep(s2, 'j', 7, [], settles, rows, () => undefined)
  assert.is(counted.runs, 2) // 41 copies: 32 + 9
  assert.equal(dump(b.s), dump(a.s))
  assert.equal(b.s.copies('j', 6)[0].receipt, new Uint8Array([9]))
  assert.equal([b.s.copies('j', 4)[0].billed, b.s.copies('j', 1)[0].billed, b.s.copies('j', 1)[0].outcome], [true, false, 'wrong'])
})

test('a step\'s many copies and acceptances: one statement each per ROWS_PER_STATEMENT rows', () => {
  const { s, store } = fresh()
  const counted = countStatements(store)
  const s2 = new JobStore(store)
  counted.reset()
  persistStep(s2, 'j', 1, Array.from({ length: 16 }, (_, i) => run(i, 1)), Array.from({ length: 16 }, (_, i) => accepted(50 + i, 1)), [], () => new Uint8Array([7]))
  assert.is(counted.runs, 2) // was 32
  assert.is(s.copies('j').length, 16)
  assert.is(s.results('j').length, 16)
})

test.run()
