// The durable side of settlement, in the node's store: receipts waiting for a batch, and the
// outbox of batches on their way to the chain. A batch moves built → sent(txHash) → confirmed
// (or `conflict` if the chain holds another root for its id). Cutting a batch and marking its
// receipts happen in one transaction, and a signed transaction is written down before it is
// broadcast, so after a crash the bridge knows exactly what may already be on chain.
import type { Store } from '../store/db.js'
import { buildSettlementBatch, type BatchReceipt, type Payout, type SettlementBatch } from '../core/settlement/index.js'
import type { Address, Hex } from './config.js'

export type OutboxState = 'built' | 'sent' | 'confirmed' | 'conflict'

export interface OutboxEntry {
  batchId: Hex
  jobId: Hex // hex of the job id bytes
  chainJobId: Hex
  root: Hex
  receiptCount: number
  payouts: Payout[]
  total: bigint
  state: OutboxState
  txHash?: Hex
  rawTx?: Hex
  nonce?: number
  attempts: number
  lastError?: string
  createdAt: number
  updatedAt: number
  blockNumber?: number
  gasUsed?: bigint
  /** After confirmation: what the contract paid and withheld (unstaked providers). */
  paid?: Array<{ provider: Address, amount: bigint }>
  withheld?: Array<{ provider: Address, amount: bigint }>
}

export const OUTBOX_MIGRATIONS = [
  `CREATE TABLE chain_receipts (
     receipt_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, payout_address TEXT NOT NULL, amount TEXT NOT NULL,
     receipt BLOB NOT NULL, received_at REAL NOT NULL, batch_id TEXT);
   CREATE INDEX chain_receipts_pending ON chain_receipts (job_id, batch_id, received_at);
   CREATE TABLE chain_outbox (
     batch_id TEXT PRIMARY KEY, job_id TEXT NOT NULL, chain_job_id TEXT NOT NULL, root TEXT NOT NULL,
     receipt_count INTEGER NOT NULL, payouts TEXT NOT NULL, total TEXT NOT NULL, state TEXT NOT NULL,
     tx_hash TEXT, raw_tx TEXT, nonce INTEGER, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
     created_at REAL NOT NULL, updated_at REAL NOT NULL, block_number INTEGER, gas_used TEXT, result TEXT);
   CREATE INDEX chain_outbox_state ON chain_outbox (state, created_at);
   CREATE TABLE chain_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`
]

interface OutboxRow {
  batch_id: Hex, job_id: Hex, chain_job_id: Hex, root: Hex, receipt_count: number, payouts: string, total: string, state: OutboxState,
  tx_hash: Hex | null, raw_tx: Hex | null, nonce: number | null, attempts: number, last_error: string | null,
  created_at: number, updated_at: number, block_number: number | null, gas_used: string | null, result: string | null
}

export class Outbox {
  constructor (private readonly store: Store) {
    store.migrate('chain', OUTBOX_MIGRATIONS)
  }

  getMeta (key: string): string | undefined {
    return (this.store.db.prepare('SELECT value FROM chain_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  setMeta (key: string, value: string): void {
    this.store.db.prepare('INSERT OR REPLACE INTO chain_meta (key, value) VALUES (?, ?)').run(key, value)
  }

  /** Stores verified receipts; returns how many were new (a receipt id is kept once). */
  addReceipts (jobIdHex: Hex, receipts: BatchReceipt[], now: number): number {
    const put = this.store.db.prepare('INSERT OR IGNORE INTO chain_receipts (receipt_id, job_id, payout_address, amount, receipt, received_at) VALUES (?, ?, ?, ?, ?, ?)')
    return this.store.transaction(() => {
      let added = 0
      for (const r of receipts) {
        const res = put.run(hex(r.receiptId), jobIdHex, r.payoutAddress.toLowerCase(), r.amount.toString(), r.receiptBytes, now)
        added += Number(res.changes)
      }
      return added
    })
  }

  /** Per job: how many receipts wait for a batch, and since when. */
  pendingByJob (): Array<{ jobId: Hex, count: number, oldestAt: number }> {
    return this.store.db.prepare('SELECT job_id AS jobId, COUNT(*) AS count, MIN(received_at) AS oldestAt FROM chain_receipts WHERE batch_id IS NULL GROUP BY job_id').all() as Array<{ jobId: Hex, count: number, oldestAt: number }>
  }

  /** Cuts a batch from up to `take` pending receipts of the job (oldest first) and queues it. */
  cutBatch (jobIdHex: Hex, take: number, now: number): SettlementBatch | undefined {
    return this.store.transaction(() => {
      const rows = this.store.db.prepare('SELECT receipt_id, payout_address, amount, receipt FROM chain_receipts WHERE job_id = ? AND batch_id IS NULL ORDER BY received_at, receipt_id LIMIT ?').all(jobIdHex, take) as Array<{ receipt_id: string, payout_address: Address, amount: string, receipt: Uint8Array }>
      if (rows.length === 0) return undefined
      const batch = buildSettlementBatch(unhex(jobIdHex), rows.map(r => ({ receiptId: unhex(r.receipt_id), receiptBytes: new Uint8Array(r.receipt), payoutAddress: r.payout_address, amount: BigInt(r.amount) })), now)
      const existing = this.get(batch.batchId)
      if (existing === undefined) {
        this.store.db.prepare('INSERT INTO chain_outbox (batch_id, job_id, chain_job_id, root, receipt_count, payouts, total, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(batch.batchId, jobIdHex, batch.chainJobId, batch.root, batch.receiptCount, payoutsJson(batch.payouts), batch.total.toString(), 'built', now, now)
      }
      const mark = this.store.db.prepare('UPDATE chain_receipts SET batch_id = ? WHERE receipt_id = ?')
      for (const r of rows) mark.run(batch.batchId, r.receipt_id)
      return batch
    })
  }

  get (batchId: string): OutboxEntry | undefined {
    const row = this.store.db.prepare('SELECT * FROM chain_outbox WHERE batch_id = ?').get(batchId) as OutboxRow | undefined
    return row === undefined ? undefined : fromRow(row)
  }

  /** Batches not confirmed yet, oldest first (optionally of one job). */
  unsettled (jobIdHex?: Hex): OutboxEntry[] {
    const rows = jobIdHex === undefined
      ? this.store.db.prepare("SELECT * FROM chain_outbox WHERE state IN ('built', 'sent') ORDER BY created_at, batch_id").all()
      : this.store.db.prepare("SELECT * FROM chain_outbox WHERE state IN ('built', 'sent') AND job_id = ? ORDER BY created_at, batch_id").all(jobIdHex)
    return (rows as unknown as OutboxRow[]).map(fromRow)
  }

  all (jobIdHex?: Hex): OutboxEntry[] {
    const rows = jobIdHex === undefined
      ? this.store.db.prepare('SELECT * FROM chain_outbox ORDER BY created_at, batch_id').all()
      : this.store.db.prepare('SELECT * FROM chain_outbox WHERE job_id = ? ORDER BY created_at, batch_id').all(jobIdHex)
    return (rows as unknown as OutboxRow[]).map(fromRow)
  }

  counts (): Record<OutboxState, number> {
    const out: Record<OutboxState, number> = { built: 0, sent: 0, confirmed: 0, conflict: 0 }
    for (const r of this.store.db.prepare('SELECT state, COUNT(*) AS n FROM chain_outbox GROUP BY state').all() as Array<{ state: OutboxState, n: number }>) out[r.state] = r.n
    return out
  }

  pendingReceiptCount (): number {
    return (this.store.db.prepare('SELECT COUNT(*) AS n FROM chain_receipts WHERE batch_id IS NULL').get() as { n: number }).n
  }

  /** Written before the broadcast: after a crash the same signed tx is re-broadcast. */
  markSent (batchId: Hex, txHash: Hex, rawTx: Hex, nonce: number, now: number): void {
    this.store.db.prepare("UPDATE chain_outbox SET state = 'sent', tx_hash = ?, raw_tx = ?, nonce = ?, attempts = attempts + 1, last_error = NULL, updated_at = ? WHERE batch_id = ?").run(txHash, rawTx, nonce, now, batchId)
  }

  /** Back to `built`: the signed tx can not land (nonce taken, reverted); sign again later. */
  markBuilt (batchId: Hex, error: string, now: number): void {
    this.store.db.prepare("UPDATE chain_outbox SET state = 'built', tx_hash = NULL, raw_tx = NULL, nonce = NULL, last_error = ?, updated_at = ? WHERE batch_id = ?").run(error, now, batchId)
  }

  markError (batchId: Hex, error: string, now: number): void {
    this.store.db.prepare('UPDATE chain_outbox SET last_error = ?, updated_at = ? WHERE batch_id = ?').run(error, now, batchId)
  }

  markConfirmed (batchId: Hex, info: { txHash?: Hex, blockNumber?: number, gasUsed?: bigint, paid?: OutboxEntry['paid'], withheld?: OutboxEntry['withheld'] }, now: number): void {
    const result = JSON.stringify({ paid: (info.paid ?? []).map(p => [p.provider, p.amount.toString()]), withheld: (info.withheld ?? []).map(p => [p.provider, p.amount.toString()]) })
    this.store.db.prepare("UPDATE chain_outbox SET state = 'confirmed', tx_hash = COALESCE(?, tx_hash), raw_tx = NULL, block_number = ?, gas_used = ?, result = ?, last_error = NULL, updated_at = ? WHERE batch_id = ?")
      .run(info.txHash ?? null, info.blockNumber ?? null, info.gasUsed?.toString() ?? null, result, now, batchId)
  }

  markConflict (batchId: Hex, onChainRoot: Hex, now: number): void {
    this.store.db.prepare("UPDATE chain_outbox SET state = 'conflict', last_error = ?, updated_at = ? WHERE batch_id = ?").run(`the chain holds root ${onChainRoot} for this batch id`, now, batchId)
  }
}

function fromRow (r: OutboxRow): OutboxEntry {
  const result = r.result === null ? undefined : JSON.parse(r.result) as { paid: Array<[Address, string]>, withheld: Array<[Address, string]> }
  return {
    batchId: r.batch_id,
    jobId: r.job_id,
    chainJobId: r.chain_job_id,
    root: r.root,
    receiptCount: r.receipt_count,
    payouts: (JSON.parse(r.payouts) as Array<[Address, string]>).map(([provider, amount]) => ({ provider, amount: BigInt(amount) })),
    total: BigInt(r.total),
    state: r.state,
    txHash: r.tx_hash ?? undefined,
    rawTx: r.raw_tx ?? undefined,
    nonce: r.nonce ?? undefined,
    attempts: r.attempts,
    lastError: r.last_error ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    blockNumber: r.block_number ?? undefined,
    gasUsed: r.gas_used === null ? undefined : BigInt(r.gas_used),
    paid: result?.paid.map(([provider, amount]) => ({ provider, amount: BigInt(amount) })),
    withheld: result?.withheld.map(([provider, amount]) => ({ provider, amount: BigInt(amount) }))
  }
}

function payoutsJson (p: Payout[]): string {
  return JSON.stringify(p.map(x => [x.provider, x.amount.toString()]))
}

export function hex (b: Uint8Array): Hex {
  return `0x${Buffer.from(b).toString('hex')}`
}

export function unhex (h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h.startsWith('0x') ? h.slice(2) : h, 'hex'))
}
