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
  close: () => void
}

export function openStore (path: string): Store {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path)
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;')
  db.exec('CREATE TABLE IF NOT EXISTS migrations (component TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (component, step))')
  let depth = 0
  const transaction = <T>(fn: () => T): T => {
    if (depth > 0) {
      // nested: a savepoint, so an outer transaction that catches the throw commits none of this one's writes
      const name = `sp${depth}`
      db.exec(`SAVEPOINT ${name}`)
      depth++
      try {
        const out = fn()
        db.exec(`RELEASE ${name}`)
        return out
      } catch (err) {
        // (an error that ended the whole transaction left no savepoint to go back to: the original error goes on)
        if (db.isTransaction) { db.exec(`ROLLBACK TO ${name}`); db.exec(`RELEASE ${name}`) }
        throw err
      } finally {
        depth--
      }
    }
    db.exec('BEGIN IMMEDIATE')
    depth++
    try {
      const out = fn()
      db.exec('COMMIT')
      return out
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    } finally {
      depth--
    }
  }
  return {
    db,
    path,
    transaction,
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
