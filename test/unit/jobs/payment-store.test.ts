// The payment store's read paths the dispatch loop leans on: escrow rows served from memory stay
// exact across every write and a rolled-back transaction; a payment's key check and seq come from
// memory that follows the store (rollbacks, restarts), not a statement per copy; a copy with no stderr does not sum the job's logs again.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'
import { PaymentStore, PAID_JOBS_MAX, PAID_IDLE_LOOKUPS, type EscrowRow } from '../../../src/jobs/payment-store.js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TaskLogStore } from '../../../src/jobs/task-logs.js'
import { countStatements } from '../../helpers/statement-count.js'

const escrow = (jobId: string): EscrowRow => ({
  jobId, chainJobId: `0x${'11'.repeat(32)}`, chainId: 31337, contract: `0x${'22'.repeat(20)}`, payer: `0x${'33'.repeat(20)}`, deposited: 0n, allowTopUp: false, kind: 'grid'
})

test('escrow rows read through memory follow every write, and a rolled-back write is not seen', () => {
  const s = new PaymentStore(openStore(':memory:'))
  assert.is(s.escrow('j'), undefined)
  s.putEscrow(escrow('j'))
  assert.is(s.escrow('j')?.deposited, 0n)
  s.setDeposited('j', 500n)
  assert.is(s.escrow('j')?.deposited, 500n)
  s.setReserve('j', 7n)
  assert.is(s.escrow('j')?.reserve, 7n)
  s.putEscrow({ ...escrow('j'), allowTopUp: true })
  assert.is(s.escrow('j')?.allowTopUp, true)
  s.setClosed('j', 1234)
  assert.is(s.escrow('j')?.closedAt, 1234)
  s.setRefunded('j', '0xabc', 9n)
  assert.is(s.escrow('j')?.refunded, 9n)
  // a caller changing its copy changes nothing stored
  const copy = s.escrow('j')!
  copy.deposited = 1n
  assert.is(s.escrow('j')?.deposited, 500n)
  // written, read inside the transaction, rolled back: the old row again
  assert.throws(() => s.transaction(() => {
    s.setDeposited('j', 900n)
    assert.is(s.escrow('j')?.deposited, 900n)
    throw new Error('abort')
  }), /abort/)
  assert.is(s.escrow('j')?.deposited, 500n)
  assert.is(s.escrows()[0].deposited, 500n)
})

test('a payment is one statement once the job\'s keys are read (once); "paid already?" costs none; seq in order; a repeat is ignored and takes no seq', () => {
  const store = openStore(':memory:')
  const s = new PaymentStore(store)
  // statements run, counted at the prepared statements
  const counted = countStatements(store)
  for (let i = 0; i < 5; i++) { assert.not.ok(s.hasPayment('j', `${i}:1`)); assert.ok(s.addPayment('j', row(`${i}:1`, i))) }
  assert.is(counted.runs, 6, 'the job\'s keys read once, then one statement per payment')
  assert.ok(s.hasPayment('j', '2:1'))
  assert.not.ok(s.addPayment('j', row('2:1', 9)), 'a repeat is not recorded')
  assert.is(counted.runs, 6, 'a repeat runs no statement')
  assert.ok(s.addPayment('k', row('0:1', 0)))
  assert.ok(s.addPayment('j', row('5:1', 5)))
  assert.equal(s.payments('j').map(p => [p.receiptKey, p.seq, p.at]), [['0:1', 1, 0], ['1:1', 2, 1], ['2:1', 3, 2], ['3:1', 4, 3], ['4:1', 5, 4], ['5:1', 6, 5]])
  assert.equal(s.payments('k').map(p => p.seq), [1])
  // another PaymentStore over the same store (connection) sees the same keys
  const s2 = new PaymentStore(store)
  assert.ok(s2.hasPayment('j', '5:1'))
  assert.ok(s2.addPayment('j', row('6:1', 6)))
  assert.ok(s.hasPayment('j', '6:1'))
  assert.is(s.payments('j').at(-1)?.seq, 7)
})

const row = (key: string, at: number): Parameters<PaymentStore['addPayment']>[1] => ({ receiptKey: key, provider: 'p', payout: `0x${'44'.repeat(20)}`, billed: 1n, payable: 1n, refused: 0n, limit: 'receipt', at })

test('payments held in memory follow the store: a rolled-back transaction or savepoint takes its keys and seqs back; a reopened store reads them from disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pay-store-'))
  try {
    const path = join(dir, 'node.db')
    let store = openStore(path)
    let s = new PaymentStore(store)
    assert.ok(s.addPayment('j', row('0:1', 0)))
    // written inside a transaction that is undone: not paid, and its seq is given again
    assert.throws(() => s.transaction(() => {
      assert.ok(s.addPayment('j', row('1:1', 1)))
      assert.ok(s.hasPayment('j', '1:1'))
      throw new Error('abort')
    }), /abort/)
    assert.not.ok(s.hasPayment('j', '1:1'))
    // a savepoint undone inside a transaction that commits: only the savepoint's payment goes
    s.transaction(() => {
      assert.ok(s.addPayment('j', row('2:1', 2)))
      assert.throws(() => s.transaction(() => { assert.ok(s.addPayment('j', row('3:1', 3))); throw new Error('inner') }), /inner/)
      assert.not.ok(s.hasPayment('j', '3:1'))
      assert.ok(s.hasPayment('j', '2:1'))
      // the keys were dropped and read again inside the transaction: that read is undone with it too
      assert.ok(s.addPayment('j', row('4:1', 4)))
    })
    assert.equal(s.payments('j').map(p => [p.receiptKey, p.seq]), [['0:1', 1], ['2:1', 2], ['4:1', 3]])
    // the keys read inside a transaction that is then undone are not kept
    assert.throws(() => s.transaction(() => { s.addPayment('k', row('0:1', 0)); throw new Error('abort') }), /abort/)
    assert.not.ok(s.hasPayment('k', '0:1'))
    store.close()
    // a restart: the store is the truth
    store = openStore(path)
    s = new PaymentStore(store)
    assert.ok(s.hasPayment('j', '4:1'))
    assert.not.ok(s.hasPayment('j', '3:1'))
    assert.not.ok(s.addPayment('j', row('2:1', 9)))
    assert.ok(s.addPayment('j', row('3:1', 5)))
    assert.equal(s.payments('j').map(p => [p.receiptKey, p.seq]), [['0:1', 1], ['2:1', 2], ['4:1', 3], ['3:1', 4]])
    store.close()
  } finally { rmSync(dir, { recursive: true, force: true }) }
})

test('only PAID_JOBS_MAX jobs\' keys are held; while all are in use another job is answered by single-row statements, not a whole-job read (review18 F5); an idle one gives way', () => {
  const store = openStore(':memory:')
  const s = new PaymentStore(store)
  for (let j = 0; j < PAID_JOBS_MAX + 3; j++) assert.ok(s.addPayment(`j${j}`, row('0:1', 0)))
  const counted = countStatements(store)
  const s2 = new PaymentStore(store) // (its statements are counted; the held keys are shared)
  counted.reset()
  for (let j = 0; j < PAID_JOBS_MAX; j++) assert.ok(s2.hasPayment(`j${j}`, '0:1'))
  assert.is(counted.runs, 0, 'the first PAID_JOBS_MAX jobs are held')
  // nine jobs paying at once: the ninth's lookups are one indexed statement each, never a reload of a held job
  for (let round = 0; round < 3; round++) {
    for (let j = 0; j < PAID_JOBS_MAX + 1; j++) assert.ok(s2.hasPayment(`j${j}`, '0:1'))
    assert.not.ok(s2.hasPayment(`j${PAID_JOBS_MAX}`, 'nope'))
  }
  assert.is(counted.runs, 6, 'two single-row lookups a round for the ninth job, none for the eight held')
  for (let j = 0; j < PAID_JOBS_MAX + 3; j++) { assert.ok(s.addPayment(`j${j}`, row('1:1', 1))); assert.not.ok(s.addPayment(`j${j}`, row('1:1', 1))); assert.equal(s.payments(`j${j}`).map(p => p.seq), [1, 2]) }
  // the held jobs end (no lookups for PAID_IDLE_LOOKUPS): the job in use is held from then on
  for (let i = 0; i < PAID_IDLE_LOOKUPS; i++) s2.hasPayment(`j${PAID_JOBS_MAX + 2}`, '0:1')
  counted.reset()
  assert.ok(s2.hasPayment(`j${PAID_JOBS_MAX + 2}`, '1:1'))
  assert.is(counted.runs, 0, 'held now')
  assert.ok(s2.addPayment(`j${PAID_JOBS_MAX + 2}`, row('2:1', 2)))
  assert.equal(s.payments(`j${PAID_JOBS_MAX + 2}`).map(p => p.seq), [1, 2, 3])
})

test('task logs: copies without stderr do not sum the job\'s stored logs again; the job budget still holds', () => {
  const store = openStore(':memory:')
  const logs = new TaskLogStore(store, { perCopy: 100, perJob: 150, afterBudget: 10 })
  let sums = 0
  const prepare = store.db.prepare.bind(store.db)
  store.db.prepare = ((sql: string) => {
    const st = prepare(sql)
    if (!sql.includes('SUM(LENGTH(stderr))')) return st
    const get = st.get.bind(st)
    st.get = ((...a: Parameters<typeof get>) => { sums++; return get(...a) }) as typeof st.get
    return st
  }) as typeof store.db.prepare
  for (let i = 0; i < 20; i++) assert.is(logs.record('j', i, 1, 'p', undefined, 0, i), false)
  assert.is(sums, 1, 'the job\'s bytes are summed once')
  assert.ok(logs.record('j', 20, 1, 'p', new Uint8Array(100).fill(65), 100, 20))
  assert.ok(logs.record('j', 21, 1, 'p', new Uint8Array(100).fill(66), 100, 21))
  // past the 150-byte budget a copy keeps only its 10-byte tail
  assert.ok(logs.record('j', 22, 1, 'p', new Uint8Array(100).fill(67), 100, 22))
  assert.is(logs.get('j', 22, 1)?.stderr.length, 10)
  assert.is(sums, 1)
})

test.run()
