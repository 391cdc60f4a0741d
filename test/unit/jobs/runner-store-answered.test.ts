// persistStep writes a copy's answer and its settling in one statement when the job machine settled
// it in the same step (copyAnswered; the step's such copies together: copiesAnswered): the rows it leaves are those the two statements leave, in
// every case (billed before or not, billed now or not, a duplicate, a revoke, two settles).
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { JobStore } from '../../../src/jobs/store.js'
import { persistStep, type CopyRow } from '../../../src/jobs/runner-store.js'
import type { CopyOutcome, JobEvent } from '../../../src/core/scheduler/index.js'
import { countStatements } from '../../helpers/statement-count.js'

function fresh (): { s: JobStore, store: ReturnType<typeof openStore> } {
  const store = openStore(':memory:')
  const s = new JobStore(store)
  s.createJob({ jobId: 'j', owner: new Uint8Array([1]), manifest: '{}', manifestHash: new Uint8Array(32), createdAt: 1, nonce: new Uint8Array(16), signature: new Uint8Array(64), status: 'running', taskCount: 8, updatedAt: 1 })
  for (let i = 0; i < 8; i++) s.copyStarted('j', { index: i, attempt: 1, provider: 'p', leaseId: 'l', reason: 'initial', startedAt: 1 })
  return { s, store }
}

const copies = (s: JobStore): unknown[] => s.copies('j').map(c => JSON.stringify(c))
const settled = (index: number, outcome: CopyOutcome, billed: boolean, revoked?: boolean): JobEvent => ({ type: 'copy-settled', index, attempt: 1, provider: 'p', outcome, billed, ...(revoked === true ? { revoked } : {}) })

/** What persistStep wrote before copyAnswered: every row, then every event, one statement each. */
function oneByOne (s: JobStore, rows: readonly CopyRow[], events: readonly JobEvent[]): void {
  s.transaction(() => {
    for (const r of rows) s.copyResult('j', r.index, r.attempt, { outcome: r.outcome, hash: r.hash, error: r.error, endedAt: r.endedAt, receipt: r.receipt })
    for (const e of events) if (e.type === 'copy-settled') { if (e.revoked === true) s.revokeCopy('j', e.index, e.attempt); else s.copySettled('j', e.index, e.attempt, e.outcome, e.billed) }
  })
}

test('an answer and its settling in one step: the same rows as statement by statement, one statement fewer per copy', () => {
  const rows: CopyRow[] = [
    { index: 0, attempt: 1, outcome: 'agreed', hash: 'h0', endedAt: 5, receipt: new Uint8Array([1]) }, // settled billed
    { index: 1, attempt: 1, outcome: 'pending', hash: 'h1', endedAt: 5 }, // settled wrong, not billed
    { index: 2, attempt: 1, outcome: 'failed', error: 'TASK_TRAP: x', endedAt: 6 }, // settled failed
    { index: 3, attempt: 1, outcome: 'agreed', hash: 'h3', endedAt: 6, receipt: new Uint8Array([3]) }, // billed before: a late settle does not un-bill
    { index: 4, attempt: 1, outcome: 'agreed', hash: 'h4', endedAt: 7 }, // settled, then revoked in the same step
    { index: 5, attempt: 1, outcome: 'agreed', hash: 'h5', endedAt: 7 }, // a duplicate answer in the same step
    { index: 5, attempt: 1, outcome: 'duplicate', endedAt: 8 },
    { index: 6, attempt: 1, outcome: 'agreed', hash: 'h6', endedAt: 8 } // not settled in this step
  ]
  const events: JobEvent[] = [
    settled(0, 'agreed', true), settled(1, 'wrong', false), settled(2, 'failed', false), settled(3, 'wrong', false),
    settled(4, 'agreed', true), settled(4, 'wrong', false, true), settled(5, 'agreed', true), settled(7, 'lost', false)
  ]
  const a = fresh()
  const b = fresh()
  for (const x of [a, b]) x.s.copySettled('j', 3, 1, 'agreed', true)
  oneByOne(a.s, rows, events)
  const counted = countStatements(b.store)
  const s2 = new JobStore(b.store) // (statements prepared after countStatements are counted)
  counted.reset()
  persistStep(s2, 'j', 10, [], events, rows, () => undefined)
  // 8 rows + 8 events = 16 statements one by one; copies 0-3 paired (one statement for the four:
  // copiesAnswered), 4 (revoked) and 5 (duplicate) not
  assert.is(counted.runs, 9)
  assert.equal(copies(b.s), copies(a.s))
  const c = b.s.copies('j')
  assert.equal(c.slice(0, 4).map(x => [x.outcome, x.billed]), [['agreed', true], ['wrong', false], ['failed', false], ['agreed', true]])
})

test.run()
