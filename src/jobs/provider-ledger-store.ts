// The provider's payment ledger on disk: per escrow what this provider delivered and the latest
// voucher it holds, so a provider that restarts still knows which payer is behind (an in-memory
// ledger gave every payer a fresh credit after a restart). Written on each kept voucher and on a
// finished task (at once when the payer is behind by half the credit, else within a second);
// read once when the payment gate starts (src/jobs/payment-gate.ts).
import type { StatementSync } from 'node:sqlite'
import { dbc } from '../wire/gen/wire.js'
import type { Store } from '../store/db.js'
import type { LedgerPersistence, PersistedLedger } from './payment-gate.js'

const MIGRATIONS = [
  `CREATE TABLE provider_ledger (
     chain_job_id TEXT PRIMARY KEY, payer TEXT NOT NULL, delivered TEXT NOT NULL, signed TEXT NOT NULL,
     tasks INTEGER NOT NULL, max_behind TEXT NOT NULL, voucher BLOB, at REAL NOT NULL)`,
  // the job's id as its submitter names it (`dbc earnings` shows it beside the chain job id)
  'ALTER TABLE provider_ledger ADD COLUMN job_id TEXT'
]

export class ProviderLedgerStore implements LedgerPersistence {
  private readonly statements = new Map<string, StatementSync>()

  constructor (private readonly store: Store, private readonly now: () => number = Date.now) {
    store.migrate('provider-ledger', MIGRATIONS)
  }

  private stmt (sql: string): StatementSync {
    let st = this.statements.get(sql)
    if (st === undefined) { st = this.store.db.prepare(sql); this.statements.set(sql, st) }
    return st
  }

  /** The most recently written entries, newest first (at most `limit`). */
  load (limit: number): Array<{ chainJobId: string } & PersistedLedger> {
    const rows = this.stmt('SELECT * FROM provider_ledger ORDER BY at DESC LIMIT ?').all(limit) as Array<Record<string, unknown>>
    return rows.map(r => ({
      chainJobId: String(r.chain_job_id),
      payer: String(r.payer),
      delivered: BigInt(String(r.delivered)),
      signed: BigInt(String(r.signed)),
      tasks: Number(r.tasks),
      maxBehind: BigInt(String(r.max_behind)),
      ...(r.voucher instanceof Uint8Array ? { voucher: dbc.task.v1.Voucher.decode(r.voucher) } : {}),
      ...(typeof r.job_id === 'string' ? { jobId: r.job_id } : {})
    }))
  }

  save (chainJobId: string, e: PersistedLedger): void {
    const voucher = e.voucher == null ? null : dbc.task.v1.Voucher.encode(e.voucher).finish()
    this.stmt(`INSERT INTO provider_ledger (chain_job_id, payer, delivered, signed, tasks, max_behind, voucher, at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (chain_job_id) DO UPDATE SET payer = excluded.payer, delivered = excluded.delivered, signed = excluded.signed, tasks = excluded.tasks,
      max_behind = excluded.max_behind, voucher = excluded.voucher, at = excluded.at, job_id = COALESCE(excluded.job_id, job_id)`)
      .run(chainJobId, e.payer, e.delivered.toString(), e.signed.toString(), e.tasks, e.maxBehind.toString(), voucher, this.now(), e.jobId ?? null)
  }

  remove (chainJobId: string): void {
    this.stmt('DELETE FROM provider_ledger WHERE chain_job_id = ?').run(chainJobId)
  }
}
