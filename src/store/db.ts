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
  /** Runs `fn` in one transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on throw). */
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
    if (depth > 0) return fn() // nested: part of the outer transaction
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
