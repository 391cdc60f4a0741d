// The store's transactions: a savepoint inside a transaction is undone alone; work registered with
// afterCommit follows the outermost transaction's fate (runs on its commit, is undone with its
// rollback or with the savepoint it was registered in), and a failed savepoint never masks its error.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { openStore } from '../../../src/store/db.js'

function fresh () {
  const s = openStore(':memory:')
  s.db.exec('CREATE TABLE t (v INTEGER)')
  const rows = (): number[] => (s.db.prepare('SELECT v FROM t ORDER BY v').all() as Array<{ v: number }>).map(r => r.v)
  const add = (v: number): void => { s.db.prepare('INSERT INTO t (v) VALUES (?)').run(v) }
  return { s, rows, add }
}

test('outside a transaction afterCommit runs at once; inside, only once the outer one commits', () => {
  const { s, add } = fresh()
  const log: string[] = []
  s.afterCommit(() => log.push('now'))
  assert.equal(log, ['now'])
  s.transaction(() => {
    add(1)
    s.afterCommit(() => log.push(`commit, open: ${String(s.inTransaction())}`), () => log.push('undone'))
    s.transaction(() => { s.afterCommit(() => log.push('inner commit')) })
    assert.equal(log, ['now'])
    assert.ok(s.inTransaction())
  })
  assert.equal(log, ['now', 'commit, open: false', 'inner commit'])
  assert.not.ok(s.inTransaction())
})

test('an outer rollback undoes the registered work, newest first, and runs no commit callback', () => {
  const { s, rows, add } = fresh()
  const log: string[] = []
  assert.throws(() => s.transaction(() => {
    add(1)
    s.afterCommit(() => log.push('c1'), () => log.push('r1'))
    s.transaction(() => { add(2); s.afterCommit(() => log.push('c2'), () => log.push('r2')) })
    throw new Error('outer fails')
  }), /outer fails/)
  assert.equal(log, ['r2', 'r1'])
  assert.equal(rows(), [])
})

test('a savepoint that throws is undone alone with its callbacks; the outer commits the rest', () => {
  const { s, rows, add } = fresh()
  const log: string[] = []
  s.transaction(() => {
    add(1)
    s.afterCommit(() => log.push('c1'), () => log.push('r1'))
    assert.throws(() => s.transaction(() => {
      add(2)
      s.afterCommit(() => log.push('c2'), () => log.push('r2'))
      throw new Error('inner fails')
    }), /inner fails/)
    assert.equal(log, ['r2'])
  })
  assert.equal(log, ['r2', 'c1'])
  assert.equal(rows(), [1])
})

test('a savepoint whose error ended the whole transaction raises that error, not a rollback error', () => {
  const { s } = fresh()
  // ROLLBACK inside the savepoint ends the outer transaction too: nothing is left to go back to
  assert.throws(() => s.transaction(() => s.transaction(() => { s.db.exec('ROLLBACK'); throw new Error('the original') })), /the original/)
  assert.not.ok(s.inTransaction())
  // the store is usable after it
  s.transaction(() => { s.db.exec('INSERT INTO t (v) VALUES (7)') })
})

test('a commit callback that throws is raised after the others ran; the rows stay committed', () => {
  const { s, rows, add } = fresh()
  const log: string[] = []
  assert.throws(() => s.transaction(() => {
    add(5)
    s.afterCommit(() => { throw new Error('callback fails') })
    s.afterCommit(() => log.push('second ran'))
  }), /callback fails/)
  assert.equal(log, ['second ran'])
  assert.equal(rows(), [5])
})

test('a savepoint error that ended the whole transaction: writes the outer fn makes after catching it do not stay (review s12 L3)', () => {
  const s = openStore(':memory:')
  // ON CONFLICT ROLLBACK: a duplicate key ends the whole transaction (as SQLITE_FULL or IOERR would)
  s.db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY ON CONFLICT ROLLBACK, v TEXT)')
  let undone = false
  assert.throws(() => s.transaction(() => {
    s.db.prepare('INSERT INTO t VALUES (1, ?)').run('before')
    s.afterCommit(() => {}, () => { undone = true })
    try {
      s.transaction(() => { s.db.prepare('INSERT INTO t VALUES (1, ?)').run('duplicate') })
    } catch {}
    // the caller goes on (runner-payments catches the payer's error inside the step)
    s.db.prepare('INSERT INTO t VALUES (2, ?)').run('after')
  }), /UNIQUE|constraint/i)
  assert.equal(s.db.prepare('SELECT * FROM t').all(), [], 'nothing stayed (before: the write after the failure autocommitted)')
  assert.ok(undone, 'the rollback callbacks ran, and match the store')
  assert.not.ok(s.inTransaction())
  s.transaction(() => { s.db.prepare('INSERT INTO t VALUES (3, ?)').run('next') })
  assert.is((s.db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n, 1, 'the store works after it')
})

test.run()
