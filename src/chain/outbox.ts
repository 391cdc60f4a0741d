// The durable side of redeeming, in the node's store: the outbox of redeem transactions on their
// way to the chain. A row moves built → sent(txHash, raw tx) → confirmed, or → dropped when its
// tx can never land (nonce taken, reverted): the vouchers it carried are simply redeemed by a
// later row, since the contract pays `cumulative - redeemed` and a replay pays nothing. The
// signed tx is written down before it is broadcast, so after a kill -9 the bridge re-broadcasts
// that very tx (after reading `redeemed()`) instead of signing a second one.
import type { Store } from '../store/db.js'
import type { Address, Hex } from './config.js'

export type RedeemState = 'sent' | 'confirmed' | 'dropped'

/** One voucher a redeem tx carries: enough to tell later whether the chain took it. */
export interface RedeemItem { chainJobId: Hex, provider: Address, cumulative: bigint }

export interface RedeemEntry {
  id: number
  items: RedeemItem[]
  state: RedeemState
  txHash: Hex
  rawTx?: Hex
  nonce: number
  attempts: number
  lastError?: string
  createdAt: number
  updatedAt: number
  blockNumber?: number
  gasUsed?: bigint
  /** After confirmation: what each Redeemed event of this tx paid. */
  paid?: Array<{ chainJobId: Hex, amount: bigint, cumulative: bigint }>
}

export const CHAIN_MIGRATIONS = [
  // v1 (settleBatch outbox): kept so existing stores replay their history of steps.
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
   CREATE TABLE chain_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // v2: the v1 contract's batches mean nothing to the voucher contract. Vouchers a provider
  // accepted (latest per job), vouchers a payer signed (latest per job and provider), and the
  // redeem outbox. Amounts are decimal strings (uint256 does not fit an INTEGER).
  `DROP TABLE chain_receipts;
   DROP TABLE chain_outbox;
   CREATE TABLE chain_vouchers (
     chain_job_id TEXT NOT NULL, provider TEXT NOT NULL, payer TEXT NOT NULL, cumulative TEXT NOT NULL,
     receipts_root TEXT NOT NULL, receipt_count INTEGER NOT NULL, signature TEXT NOT NULL,
     chain_id INTEGER NOT NULL, contract TEXT NOT NULL, received_at REAL NOT NULL, updated_at REAL NOT NULL,
     last_error TEXT, PRIMARY KEY (chain_job_id, provider));
   CREATE TABLE chain_vouchers_issued (
     chain_job_id TEXT NOT NULL, provider TEXT NOT NULL, payer TEXT NOT NULL, cumulative TEXT NOT NULL,
     receipts_root TEXT NOT NULL, receipt_count INTEGER NOT NULL, signature TEXT NOT NULL,
     chain_id INTEGER NOT NULL, contract TEXT NOT NULL, signed_at REAL NOT NULL,
     PRIMARY KEY (chain_job_id, provider));
   CREATE TABLE chain_redeems (
     id INTEGER PRIMARY KEY AUTOINCREMENT, items TEXT NOT NULL, state TEXT NOT NULL, tx_hash TEXT NOT NULL,
     raw_tx TEXT, nonce INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 1, last_error TEXT,
     created_at REAL NOT NULL, updated_at REAL NOT NULL, block_number INTEGER, gas_used TEXT, result TEXT);
   CREATE INDEX chain_redeems_state ON chain_redeems (state, id);`
]

interface RedeemRow {
  id: number, items: string, state: RedeemState, tx_hash: Hex, raw_tx: Hex | null, nonce: number, attempts: number,
  last_error: string | null, created_at: number, updated_at: number, block_number: number | null, gas_used: string | null, result: string | null
}

export class Outbox {
  constructor (private readonly store: Store) {
    store.migrate('chain', CHAIN_MIGRATIONS)
  }

  getMeta (key: string): string | undefined {
    return (this.store.db.prepare('SELECT value FROM chain_meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
  }

  setMeta (key: string, value: string): void {
    this.store.db.prepare('INSERT OR REPLACE INTO chain_meta (key, value) VALUES (?, ?)').run(key, value)
  }

  /** Write-ahead: the signed redeem tx, recorded before it is broadcast. */
  recordSent (items: RedeemItem[], tx: { hash: Hex, raw: Hex, nonce: number }, now: number): number {
    const res = this.store.db.prepare("INSERT INTO chain_redeems (items, state, tx_hash, raw_tx, nonce, created_at, updated_at) VALUES (?, 'sent', ?, ?, ?, ?, ?)")
      .run(itemsJson(items), tx.hash, tx.raw, tx.nonce, now, now)
    return Number(res.lastInsertRowid)
  }

  get (id: number): RedeemEntry | undefined {
    const row = this.store.db.prepare('SELECT * FROM chain_redeems WHERE id = ?').get(id) as RedeemRow | undefined
    return row === undefined ? undefined : fromRow(row)
  }

  /** Redeem txs that may still land, oldest first. */
  inFlight (): RedeemEntry[] {
    return (this.store.db.prepare("SELECT * FROM chain_redeems WHERE state = 'sent' ORDER BY id").all() as unknown as RedeemRow[]).map(fromRow)
  }

  /** The latest `limit` rows, newest first (optionally only those carrying a job). */
  recent (limit = 50, chainJobId?: Hex): RedeemEntry[] {
    const rows = chainJobId === undefined
      ? this.store.db.prepare('SELECT * FROM chain_redeems ORDER BY id DESC LIMIT ?').all(limit)
      : this.store.db.prepare("SELECT * FROM chain_redeems WHERE items LIKE '%' || ? || '%' ORDER BY id DESC LIMIT ?").all(chainJobId.toLowerCase(), limit)
    return (rows as unknown as RedeemRow[]).map(fromRow)
  }

  counts (): Record<RedeemState, number> {
    const out: Record<RedeemState, number> = { sent: 0, confirmed: 0, dropped: 0 }
    for (const r of this.store.db.prepare('SELECT state, COUNT(*) AS n FROM chain_redeems GROUP BY state').all() as Array<{ state: RedeemState, n: number }>) out[r.state] = r.n
    return out
  }

  markAttempt (id: number, now: number): void {
    this.store.db.prepare('UPDATE chain_redeems SET attempts = attempts + 1, updated_at = ? WHERE id = ?').run(now, id)
  }

  markError (id: number, error: string, now: number): void {
    this.store.db.prepare('UPDATE chain_redeems SET last_error = ?, updated_at = ? WHERE id = ?').run(error, now, id)
  }

  markConfirmed (id: number, info: { blockNumber?: number, gasUsed?: bigint, paid?: RedeemEntry['paid'] }, now: number): void {
    const result = JSON.stringify((info.paid ?? []).map(p => [p.chainJobId, p.amount.toString(), p.cumulative.toString()]))
    this.store.db.prepare("UPDATE chain_redeems SET state = 'confirmed', raw_tx = NULL, block_number = ?, gas_used = ?, result = ?, last_error = NULL, updated_at = ? WHERE id = ?")
      .run(info.blockNumber ?? null, info.gasUsed?.toString() ?? null, result, now, id)
  }

  /** The tx can never land (its nonce went to another tx, or it reverted): forget it. */
  markDropped (id: number, why: string, now: number): void {
    this.store.db.prepare("UPDATE chain_redeems SET state = 'dropped', raw_tx = NULL, last_error = ?, updated_at = ? WHERE id = ?").run(why, now, id)
  }
}

function itemsJson (items: RedeemItem[]): string {
  return JSON.stringify(items.map(i => [i.chainJobId.toLowerCase(), i.provider.toLowerCase(), i.cumulative.toString()]))
}

function fromRow (r: RedeemRow): RedeemEntry {
  const paid = r.result === null ? undefined : (JSON.parse(r.result) as Array<[Hex, string, string]>).map(([chainJobId, amount, cumulative]) => ({ chainJobId, amount: BigInt(amount), cumulative: BigInt(cumulative) }))
  return {
    id: r.id,
    items: (JSON.parse(r.items) as Array<[Hex, Address, string]>).map(([chainJobId, provider, cumulative]) => ({ chainJobId, provider, cumulative: BigInt(cumulative) })),
    state: r.state,
    txHash: r.tx_hash,
    rawTx: r.raw_tx ?? undefined,
    nonce: r.nonce,
    attempts: r.attempts,
    lastError: r.last_error ?? undefined,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    blockNumber: r.block_number ?? undefined,
    gasUsed: r.gas_used === null ? undefined : BigInt(r.gas_used),
    paid
  }
}

export function hex (b: Uint8Array): Hex {
  return `0x${Buffer.from(b).toString('hex')}`
}

export function unhex (h: string): Uint8Array {
  return new Uint8Array(Buffer.from(h.startsWith('0x') ? h.slice(2) : h, 'hex'))
}
