// Counts the SQLite statements a store runs (run/get/all of every statement prepared after the
// call): tests that pin how many statements a write path costs.
import type { openStore } from '../../src/store/db.js'

export function countStatements (store: ReturnType<typeof openStore>): { readonly runs: number, reset: () => void } {
  let runs = 0
  const prepare = store.db.prepare.bind(store.db)
  store.db.prepare = ((sql: string) => {
    const st = prepare(sql) as unknown as Record<'run' | 'get' | 'all', (...a: unknown[]) => unknown>
    for (const m of ['run', 'get', 'all'] as const) { const f = st[m].bind(st); st[m] = (...a) => { runs++; return f(...a) } }
    return st
  }) as typeof store.db.prepare
  return { get runs () { return runs }, reset: () => { runs = 0 } }
}
