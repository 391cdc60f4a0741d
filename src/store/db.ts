// The node's embedded database (node:sqlite, WAL, fully synchronous commits) for durable
// state: jobs, tasks, receipts, the settlement outbox. Each subsystem owns its tables and
// brings them up to date with `migrate(component, steps)`; applied steps are recorded.
import { DatabaseSync } from 'node:sqlite'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

export interface Store {
  readonly db: DatabaseSync
  readonly path: string
  /** Applies the steps of `component` not applied yet, in order, each in a transaction. */
  migrate: (component: string, steps: string[]) => void
  /**
   * Runs `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on throw). Called inside
   * another, it is a savepoint of the outer one: a throw undoes its own writes only (and goes on
   * to the caller), its writes commit with the outer transaction.
   */
  transaction: <T>(fn: () => T) => T
  /** Whether a transaction (or a savepoint inside one) is open now, by this store's own count. */
  inTransaction: () => boolean
  /**
   * Work that must follow the outermost transaction's fate: `onCommit` runs once it commits (at once
   * when no transaction is open), `onRollback` when the writes made so far are undone (the outer
   * transaction, or the savepoint it was registered in, rolled back). In-memory state that mirrors
   * rows written inside a transaction is kept true this way, and effects (a chain call) wait for
   * the commit. Commit callbacks run in order, rollback callbacks newest first; an error thrown by
   * one is raised once all have run (the transaction's outcome stands).
   */
  afterCommit: (onCommit: () => void, onRollback?: () => void) => void
  close: () => void
}

export function openStore (path: string): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path)
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;')
  db.exec('CREATE TABLE IF NOT EXISTS migrations (component TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (component, step))')
  // one level per open transaction or savepoint: what to run when it commits or is undone
  const levels: Array<{ commits: Array<() => void>, rollbacks: Array<() => void> }> = []
  /** The error that ended the whole transaction inside a savepoint (the outer one then fails with it). */
  let dead: unknown
  const runAll = (fns: Array<() => void>): void => {
    let first: unknown
    let failed = false
    for (const fn of fns) {
      try { fn() } catch (err) { if (!failed) { first = err; failed = true } }
    }
    if (failed) throw first
  }
  const transaction = <T>(fn: () => T): T => {
    if (levels.length > 0) {
      // nested: a savepoint, so an outer transaction that catches the throw commits none of this one's writes
      const name = `sp${levels.length}`
      db.exec(`SAVEPOINT ${name}`)
      const level = { commits: [] as Array<() => void>, rollbacks: [] as Array<() => void> }
      levels.push(level)
      let out: T
      try {
        out = fn()
        db.exec(`RELEASE ${name}`)
      } catch (err) {
        levels.pop()
        // an error that ended the whole transaction left no savepoint to go back to (isTransaction
        // false; a Node 22 without that property tries, and is told so): the original error goes on
        if ((db as { isTransaction?: boolean }).isTransaction !== false) {
          try { db.exec(`ROLLBACK TO ${name}`); db.exec(`RELEASE ${name}`) } catch {}
        } else if (dead === undefined) {
          // the outer fn may catch this and write on: those writes must not autocommit (review s12
          // L3); a fresh transaction takes them, and the outer one rolls it back and fails with this error
          dead = err
          try { db.exec('BEGIN IMMEDIATE') } catch {}
        }
        try { runAll(level.rollbacks.reverse()) } catch {}
        throw err
      }
      levels.pop()
      // released: its work now follows the enclosing level's fate
      levels[levels.length - 1].commits.push(...level.commits)
      levels[levels.length - 1].rollbacks.push(...level.rollbacks)
      return out
    }
    db.exec('BEGIN IMMEDIATE')
    const level = { commits: [] as Array<() => void>, rollbacks: [] as Array<() => void> }
    levels.push(level)
    dead = undefined
    let out: T
    try {
      out = fn()
      // an inner error ended the transaction and fn went on: nothing of it may commit
      if (dead !== undefined) throw dead
      db.exec('COMMIT')
    } catch (err) {
      levels.pop()
      try { db.exec('ROLLBACK') } catch {}
      try { runAll(level.rollbacks.reverse()) } catch {}
      throw err
    }
    levels.pop()
    runAll(level.commits)
    return out
  }
  return {
    db,
    path,
    transaction,
    inTransaction: () => levels.length > 0,
    afterCommit (onCommit, onRollback) {
      const level = levels[levels.length - 1]
      if (level === undefined) { onCommit(); return }
      level.commits.push(onCommit)
      if (onRollback !== undefined) level.rollbacks.push(onRollback)
    },
    migrate (component, steps) {
      const row = db.prepare('SELECT MAX(step) AS s FROM migrations WHERE component = ?').get(component) as { s: number | null } | undefined
      const done = row?.s ?? -1
      for (let i = done + 1; i < steps.length; i++) {
        transaction(() => {
          db.exec(steps[i])
          db.prepare('INSERT INTO migrations (component, step) VALUES (?, ?)').run(component, i)
        })
      }
    },
    close () { db.close() }
  }
}
